"""Features of a creative for the CTR model, measured from its pixels and its prompt.

Image features are computed on a copy whose long side is ``WORK_SIZE`` pixels, so they
do not depend on the render resolution, and they are deterministic. Names and ranges:

=====================  =======  ====================================================
name                   range    meaning
=====================  =======  ====================================================
brightness             0..1     mean HSV value of the background
contrast               0..1     standard deviation of the luminance (whole image) × 2
saturation             0..1     mean HSV saturation of the background
colourfulness          0..1     Hasler–Süsstrunk colourfulness of the background / 150
warmth                 -1..1    mean (R − B) / 255 of the background
hue_cos, hue_sin       -1..1    saturation-weighted mean hue direction of the background
edge_density           0..1     share of Canny edge pixels in the background
clutter                0..1     mean gradient magnitude of the background / 128
product_area           0..1     share of the canvas covered by the product mask
product_x, product_y   0..1     centre of the product mask (fraction of width/height)
aspect                 0..∞     canvas width / height
=====================  =======  ====================================================

Text features are MiniLM sentence embeddings of the prompt (384 dimensions, unit
length). ``FeatureCache`` memoises both by content hash, so a creative scored again
costs a dictionary look-up.
"""

from __future__ import annotations

import hashlib
import threading

import cv2
import numpy as np

from .errors import RewardError

IMAGE_FEATURES = ("brightness", "contrast", "saturation", "colourfulness", "warmth", "hue_cos",
                  "hue_sin", "edge_density", "clutter", "product_area", "product_x",
                  "product_y", "aspect")
WORK_SIZE = 128


def image_features(image: np.ndarray, product_mask: np.ndarray) -> np.ndarray:
    """The image features of one creative, in the order of ``IMAGE_FEATURES``."""
    image, product_mask = _check(image, product_mask)
    h, w = product_mask.shape
    scale = min(1.0, WORK_SIZE / max(h, w))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(product_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    background = ~mask
    if not background.any():
        background = np.ones_like(mask)

    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV_FULL).astype(np.float32) / 255.0
    rgb = small.astype(np.float32)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    bg_hsv, bg_rgb = hsv[background], rgb[background]

    rg = bg_rgb[:, 0] - bg_rgb[:, 1]
    yb = 0.5 * (bg_rgb[:, 0] + bg_rgb[:, 1]) - bg_rgb[:, 2]
    colourfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    angle = bg_hsv[:, 0] * 2 * np.pi
    weight = bg_hsv[:, 1]
    total = weight.sum()
    hue_cos = float((weight * np.cos(angle)).sum() / total) if total > 1e-6 else 0.0
    hue_sin = float((weight * np.sin(angle)).sum() / total) if total > 1e-6 else 0.0
    edges = cv2.Canny(grey, 80, 160) > 0
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    gradient = np.hypot(gx, gy)
    ys, xs = np.nonzero(product_mask)
    values = {
        "brightness": float(bg_hsv[:, 2].mean()),
        "contrast": float(min(1.0, grey.std() / 255.0 * 2)),
        "saturation": float(bg_hsv[:, 1].mean()),
        "colourfulness": float(min(1.0, colourfulness / 150.0)),
        "warmth": float((bg_rgb[:, 0] - bg_rgb[:, 2]).mean() / 255.0),
        "hue_cos": hue_cos,
        "hue_sin": hue_sin,
        "edge_density": float(edges[background].mean()),
        "clutter": float(min(1.0, gradient[background].mean() / 128.0)),
        "product_area": float(product_mask.mean()),
        "product_x": float(xs.mean() / w),
        "product_y": float(ys.mean() / h),
        "aspect": float(w / h),
    }
    return np.array([values[name] for name in IMAGE_FEATURES], dtype=np.float64)


def _check(image, product_mask) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    mask = np.asarray(product_mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise RewardError(f"image must be an HxWx3 uint8 array, got {image.shape} {image.dtype}")
    if min(image.shape[:2]) < 8:
        raise RewardError(f"image is too small ({image.shape[1]}x{image.shape[0]}); at least 8x8")
    if mask.shape != image.shape[:2]:
        raise RewardError(f"mask is {mask.shape[::-1]} but the image is {image.shape[1::-1]}")
    mask = mask > (127 if mask.dtype != bool else 0)
    if not mask.any():
        raise RewardError("the product mask is empty")
    if mask.all():
        raise RewardError("the product mask covers the whole image: no background to measure")
    return np.ascontiguousarray(image), mask


def text_features(texts) -> np.ndarray:
    """MiniLM embeddings (n, 384) of prompt texts."""
    from .embeddings import embed

    texts = list(texts)
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise RewardError("prompt texts must be non-empty strings")
    return embed(texts).astype(np.float64)


class FeatureCache:
    """Image and text features memoised by a hash of their content (thread-safe)."""

    def __init__(self, max_items: int = 100_000):
        self.max_items = max_items
        self._images: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def image(self, image: np.ndarray, product_mask: np.ndarray) -> np.ndarray:
        key = hashlib.sha1(np.ascontiguousarray(image).tobytes()
                           + np.ascontiguousarray(product_mask).tobytes()
                           + str(image.shape).encode()).hexdigest()
        with self._lock:
            if key in self._images:
                return self._images[key]
        features = image_features(image, product_mask)
        with self._lock:
            if len(self._images) >= self.max_items:
                self._images.pop(next(iter(self._images)))
            self._images[key] = features
        return features

    def images(self, images, masks) -> np.ndarray:
        return np.stack([self.image(i, m) for i, m in zip(images, masks)])

    @staticmethod
    def texts(texts) -> np.ndarray:
        return text_features(texts)  # the embedder caches per text itself
