"""Read the copy of a creative back with OCR, to prove it came out as written.

Rendering can go wrong silently: a missing glyph, text clipped by a box, copy that a
scrim did not save. ``read_back`` reads each laid-out text box with PP-OCR (the ONNX
models bundled with ``rapidocr-onnxruntime``, offline) and compares it with what was
meant to be there.

Only the boxes are read, never the whole image (a full 512-px image costs 2.4-3.4 s, a
box some 50 ms): each box is cropped with a margin, small crops are upscaled to a text
height the recogniser reads well, and text detection runs at the crop's own resolution
(RapidOCR's default upscales every input to a 736-px short side).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PIL import Image

from .errors import InputError

#: Margin around a box before reading it, as a fraction of its height (the detector
#: needs background around the text: with 0.15, a one-line headline lost its spaces).
CROP_MARGIN = 0.4
#: Crops shorter than this are upscaled to it (the detector splits small text badly).
MIN_CROP_HEIGHT = 128
#: Scales a text box is read at, in turn, until it reads back as expected.
READ_SCALES = (1.0, 0.5)
#: The detector's input is at most this many pixels on its long side.
DETECT_MAX_SIDE = 960


class OcrUnavailableError(RuntimeError):
    """The OCR engine is not installed."""


_engine = None
_engine_lock = threading.Lock()
_run_lock = threading.Lock()


def _get_engine():
    """The process' one RapidOCR engine, created on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError:
                raise OcrUnavailableError(
                    "OCR needs rapidocr-onnxruntime: pip install rapidocr-onnxruntime") from None
            _engine = RapidOCR(det_limit_type="max", det_limit_side_len=DETECT_MAX_SIDE)
        return _engine


def read_text(image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> tuple[str, float]:
    """The text in ``box`` (x0, y0, x1, y1; the whole image when None) of an HxWx3 uint8
    RGB image, lines top to bottom and pieces of a line left to right joined by single
    spaces, and the mean recognition confidence (0.0 when nothing was read)."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise InputError("image must be an HxWx3 uint8 RGB array")
    return _read(image, box, None)


def _read(image: np.ndarray, box, limit: int | None, scale: float = 1.0) -> tuple[str, float]:
    """``read_text`` with the crop margin at most ``limit`` pixels (None: no limit), the
    crop resized by ``scale`` (never below ``MIN_CROP_HEIGHT``)."""
    crop = _crop(image, box, limit)
    if scale != 1.0:
        height = max(MIN_CROP_HEIGHT, round(crop.shape[0] * scale))
        size = (round(crop.shape[1] * height / crop.shape[0]), height)
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))
    engine = _get_engine()
    with _run_lock:  # one ONNX session pair, shared: one reader at a time
        result, _ = engine(np.ascontiguousarray(crop[..., ::-1]), use_cls=False)
    if not result:
        return "", 0.0
    pieces = [(np.asarray(points, np.float64), text, float(score)) for points, text, score in result]
    text = " ".join(" ".join(t for _, t, _ in line) for line in _lines(pieces))
    return " ".join(text.split()), float(np.mean([score for _, _, score in pieces]))


def read_back(image: np.ndarray, layout_boxes: dict, expected: dict[str, str]) -> dict:
    """Read each expected element (``"headline"``, ``"cta"``, ...) in its box and say
    whether all of them read back exactly: same characters, case included, after
    collapsing runs of whitespace (a two-line headline reads as one line). An element
    that does not read back is read again at the other scales of ``READ_SCALES`` (the
    recogniser sometimes drops the space between two words of large type); the last
    reading is reported.

    Returns ``{"ocr_match": bool, "read": {name: text}, "confidence": {name: float}}``.
    """
    missing = sorted(set(expected) - set(layout_boxes))
    if missing:
        raise InputError(f"no layout box for {', '.join(missing)} (boxes: "
                         f"{', '.join(sorted(layout_boxes)) or 'none'})")
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise InputError("image must be an HxWx3 uint8 RGB array")
    read, confidence = {}, {}
    for name, text in expected.items():
        if not isinstance(text, str):
            raise InputError(f"expected text of {name!r} must be a string, got {type(text).__name__}")
        box = tuple(layout_boxes[name])
        others = [tuple(b) for k, b in layout_boxes.items() if k != name]
        # The margin must not reach a neighbouring element (its text would be read too).
        limit = min((_separation(box, other) - 1 for other in others), default=None)
        wanted = " ".join(text.split())
        for scale in READ_SCALES:  # a second look at another scale, only when needed
            read[name], confidence[name] = _read(image, box, limit, scale)
            if read[name] == wanted:
                break
    match = all(read[name] == " ".join(text.split()) for name, text in expected.items())
    return {"ocr_match": match, "read": read,
            "confidence": {k: round(v, 4) for k, v in confidence.items()}}


def _separation(a, b) -> int:
    """The gap between two boxes along the axis where they are apart (0 if they overlap)."""
    return max(0, max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3]))


def _crop(image: np.ndarray, box, limit: int | None) -> np.ndarray:
    """The box plus a margin (at most ``limit``), clipped to the image, upscaled when
    short, and framed by a border of its median edge colour: the detector misreads text
    that runs close to the edge of its input."""
    height, width = image.shape[:2]
    if box is None:
        box = (0, 0, width, height)
    if len(box) != 4 or not all(isinstance(v, (int, np.integer)) for v in box):
        raise InputError(f"box must be four integers (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise InputError(f"box {box!r} is empty or outside the {width}x{height} image")
    frame = round(CROP_MARGIN * (y1 - y0))
    margin = frame if limit is None else max(0, min(frame, limit))
    x0, y0 = max(0, x0 - margin), max(0, y0 - margin)
    x1, y1 = min(width, x1 + margin), min(height, y1 + margin)
    crop = image[y0:y1, x0:x1]
    edge = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    colour = [int(v) for v in np.median(edge, axis=0)]
    crop = cv2.copyMakeBorder(crop, frame, frame, frame, frame, cv2.BORDER_CONSTANT, value=colour)
    if crop.shape[0] < MIN_CROP_HEIGHT:
        scale = MIN_CROP_HEIGHT / crop.shape[0]
        size = (round(crop.shape[1] * scale), MIN_CROP_HEIGHT)
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))
    return crop


def _lines(pieces: list[tuple[np.ndarray, str, float]]) -> list[list[tuple]]:
    """Pieces grouped into lines (vertical centres within half a piece height), each
    line sorted left to right, lines top to bottom."""
    pieces = sorted(pieces, key=lambda p: p[0][:, 1].mean())
    lines: list[list[tuple]] = []
    for piece in pieces:
        centre = piece[0][:, 1].mean()
        half = (piece[0][:, 1].max() - piece[0][:, 1].min()) / 2
        if lines and abs(np.mean([p[0][:, 1].mean() for p in lines[-1]]) - centre) < half:
            lines[-1].append(piece)
        else:
            lines.append([piece])
    return [sorted(line, key=lambda p: p[0][:, 0].min()) for line in lines]
