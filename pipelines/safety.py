"""An NSFW detector for creatives: NudeNet's bundled ONNX model run through onnxruntime.

The ``nudenet`` 3.4 wheel carries its detector (``320n.onnx``, a 12 MB YOLOv8n with 18
body-part labels) and runs offline. Its Python package is not imported: it requires
``opencv-python-headless``, which writes the same ``cv2/`` folder as the project's
``opencv-python``, so it is installed with ``pip install --no-deps`` and only its model
file is used (found through the import system's spec, which does not run the package).
The pre- and post-processing below are those of ``nudenet.NudeDetector.detect`` for an
image file: pad bottom/right to a square, resize to 320 px, scale to [0, 1], BGR channel
order (what nudenet feeds the model for a file), non-maximum suppression of boxes whose
best class scores at least 0.2.

One onnxruntime session per process, made on first use under a lock; ``run`` on it is
thread-safe.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from .engines.base import EngineUnavailableError

#: The model's 18 labels, in the order of its outputs (nudenet 3.4).
LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED",
    "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE",
    "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
#: The labels that make a creative sexual content under the ad platforms' adult-content
#: rules (Meta, Google): exposed genitals, anus, buttocks and female breasts. Faces, feet,
#: armpits, bellies and male chests (swimwear, sportswear, fitness ads) and every
#: *_COVERED label are ordinary in ads and do not count.
SEXUAL_LABELS = ("FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
                 "MALE_GENITALIA_EXPOSED", "BUTTOCKS_EXPOSED", "ANUS_EXPOSED")
INPUT_SIZE = 320
#: nudenet's floors: a box is a detection when its best class scores this much …
MIN_SCORE = 0.2
#: … and survives non-maximum suppression at this overlap.
NMS_IOU = 0.45
INSTALL_HINT = ('pip install --no-deps "nudenet>=3.4" (without its dependencies: its '
                "opencv-python-headless would shadow opencv-python)")


class NsfwUnavailableError(EngineUnavailableError):
    """The detector's model is not installed (the faces report it as they report an
    engine that cannot run: one line, nothing rendered is published)."""


def model_path() -> Path:
    """The bundled ``320n.onnx`` of the installed nudenet package (not imported)."""
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        raise NsfwUnavailableError(f"the NSFW detector needs nudenet: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "320n.onnx"
    if not path.is_file():
        raise NsfwUnavailableError(f"nudenet has no {path.name} at {path.parent}: {INSTALL_HINT}")
    return path


class NsfwDetector:
    """NudeNet's detector. ``detect`` lists what it finds; ``assess`` / ``nsfw_score``
    give the highest score of a sexual label (``SEXUAL_LABELS``) over every candidate box,
    so a clean image scores near 0 rather than exactly 0 (a threshold orders images)."""

    _session = None
    _lock = threading.Lock()

    @classmethod
    def session(cls):
        """The process's onnxruntime session (made on first use)."""
        with cls._lock:
            if cls._session is None:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1  # one image at a time; batch workers share cores
                options.log_severity_level = 3
                cls._session = onnxruntime.InferenceSession(
                    str(model_path()), options, providers=["CPUExecutionProvider"])
        return cls._session

    def raw(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The model's candidate boxes (``N x 22``: centre x, y, width, height in model
        pixels, then the 18 class scores) and the model-to-image scale."""
        import cv2

        image = _check_image(image)
        h, w = image.shape[:2]
        side = max(h, w)
        square = np.zeros((side, side, 3), np.uint8)
        square[:h, :w] = image[..., ::-1]  # RGB -> BGR, as nudenet feeds a file
        blob = cv2.resize(square, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        blob = (blob.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        session = self.session()
        output = session.run(None, {session.get_inputs()[0].name: blob})[0]
        return output[0].T, side / INPUT_SIZE

    def detect(self, image: np.ndarray) -> list[dict]:
        """Detections in an RGB uint8 image: ``{"label", "score", "box": [x, y, w, h]}``
        in image pixels, as nudenet reports them (score >= 0.2, after NMS)."""
        rows, scale = self.raw(image)
        return _detections(rows, scale, *image.shape[:2])

    def assess(self, image: np.ndarray) -> dict:
        """``{"score", "label", "detections"}``: the highest score of a sexual label over
        every candidate box (with its label) and the detections of ``detect``."""
        rows, scale = self.raw(image)
        columns = [4 + LABELS.index(label) for label in SEXUAL_LABELS]
        sexual = rows[:, columns]
        row, column = np.unravel_index(int(sexual.argmax()), sexual.shape)
        return {"score": round(float(sexual[row, column]), 6), "label": SEXUAL_LABELS[column],
                "detections": _detections(rows, scale, *image.shape[:2])}

    def nsfw_score(self, image: np.ndarray) -> float:
        """The highest score of a sexual label (``SEXUAL_LABELS``) in the image, 0..1."""
        return self.assess(image)["score"]


def _detections(rows: np.ndarray, scale: float, h: int, w: int) -> list[dict]:
    """nudenet's post-processing: boxes whose best class scores >= ``MIN_SCORE``, in image
    pixels, clipped to the image, after non-maximum suppression."""
    import cv2

    classes = rows[:, 4:]
    best = classes.max(axis=1)
    keep = np.flatnonzero(best >= MIN_SCORE)
    boxes, scores, ids = [], [], []
    for i in keep:
        cx, cy, bw, bh = rows[i, :4] * scale
        x, y = min(max(cx - bw / 2, 0.0), w), min(max(cy - bh / 2, 0.0), h)
        boxes.append([float(x), float(y), float(min(bw, w - x)), float(min(bh, h - y))])
        scores.append(float(best[i]))
        ids.append(int(classes[i].argmax()))
    chosen = cv2.dnn.NMSBoxes(boxes, scores, 0.25, NMS_IOU) if boxes else []
    return [{"label": LABELS[ids[i]], "score": round(scores[i], 4),
             "box": [int(v) for v in boxes[i]]} for i in np.asarray(chosen).reshape(-1)]


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"the NSFW detector takes an RGB uint8 image (H x W x 3), got "
                         f"{image.dtype} {image.shape}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"the NSFW detector got an empty image {image.shape}")
    return image
