"""Product masks without a learned model: border-seeded saliency refined by GrabCut.

Product photos are usually shot on a plain backdrop, so the image border tells what the
background looks like. Pixels far (in Lab colour) from every border colour are likely the
product; GrabCut then refines that seed into a clean silhouette, and morphology removes
specks and fills holes. The same GrabCut step, seeded with a known product mask, measures
how far a generated image grew the object ("object expansion", see ``checks``).
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError

#: Masks are computed on a copy whose long side is at most this many pixels.
WORK_SIZE = 320


def auto_mask(rgb: np.ndarray, *, iterations: int = 4) -> np.ndarray:
    """Return a boolean product mask (True = product) for an RGB uint8 image.

    Raises InputError when no product can be told apart from the background, so that
    the caller can ask for an explicit mask instead of rendering over the product.
    """
    small, scale = _downscale(rgb)
    h, w = small.shape[:2]
    distance = _border_colour_distance(small)
    seed = distance > max(_otsu(distance), 12.0)
    if not seed.any():
        raise InputError(
            "automatic mask found no product: the image looks like plain background; "
            "pass a mask file or an RGBA image with transparency"
        )
    init = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    init[seed] = cv2.GC_PR_FGD
    core = cv2.erode(seed.astype(np.uint8), _ellipse(max(3, min(h, w) // 40)))
    init[core > 0] = cv2.GC_FGD
    band = max(1, min(h, w) // 50)
    init[:band, :] = init[-band:, :] = cv2.GC_BGD
    init[:, :band] = init[:, -band:] = cv2.GC_BGD
    foreground = grabcut(small, init, iterations=iterations)
    mask = clean_mask(foreground)
    return _upscale_mask(mask, rgb.shape[:2]) if scale != 1.0 else mask


def grabcut(rgb: np.ndarray, init: np.ndarray, *, iterations: int = 4) -> np.ndarray:
    """Run OpenCV GrabCut from a label map (cv2.GC_* values); True where foreground."""
    labels = init.copy()
    if not np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).any() or not np.isin(
        labels, (cv2.GC_BGD, cv2.GC_PR_BGD)
    ).any():
        return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation is random: keep masks reproducible
    cv2.grabCut(bgr, labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Open away specks, close small gaps, keep the large components, fill holes."""
    m = mask.astype(np.uint8)
    k = max(3, min(m.shape) // 100 * 2 + 1)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, _ellipse(k))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _ellipse(k))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= 0.1 * areas.max())
    m = np.isin(labels, keep).astype(np.uint8)
    return fill_holes(m.astype(bool))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the image border."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return mask | holes


def _border_colour_distance(rgb: np.ndarray) -> np.ndarray:
    """Lab distance of every pixel to the nearest of a few border colour clusters."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    band = max(1, min(rgb.shape[:2]) // 50)
    border = np.concatenate(
        [lab[:band].reshape(-1, 3), lab[-band:].reshape(-1, 3),
         lab[:, :band].reshape(-1, 3), lab[:, -band:].reshape(-1, 3)]
    )
    k = min(4, len(border))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(border, k, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    d = np.linalg.norm(lab[:, :, None, :] - centres[None, None, :, :], axis=-1).min(axis=-1)
    return cv2.GaussianBlur(d, (0, 0), 1.0)


def _otsu(values: np.ndarray) -> float:
    v = np.clip(values, 0, 255).astype(np.uint8)
    threshold, _ = cv2.threshold(v, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(threshold)


def _downscale(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIZE / max(h, w))
    if scale == 1.0:
        return rgb, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def _upscale_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return m >= 0.5


def _ellipse(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
