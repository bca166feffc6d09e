"""Product masks without a learned model: border-seeded saliency refined by GrabCut.

The frame's edges tell what the background looks like (a backdrop, a wooden table, sky
and a lake). Each side's colours are clustered; a pixel is likely product when it is far
(in Lab) from the colours of at least three sides, so one side that holds product-like
colours (a reflection along the bottom, a cropped product) does not hide the product.
GrabCut refines that seed, and may not grow into the border's own colours; small 3-px
morphology keeps thin parts (a spoon's handle), components that touch the frame give way
to a product that does not, and holes are filled. The same GrabCut step, seeded with a known product mask, measures
how far a generated image grew the object ("object expansion", see ``checks``).
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError

#: Masks are computed on a copy whose long side is at most this many pixels.
WORK_SIZE = 320
#: Colour clusters fitted to each side of the frame (table grain, sky gradient, clouds).
SIDE_CLUSTERS = 12
#: Pixels whose border contrast is under this share of the seed threshold are background.
BACKGROUND_SHARE = 0.4


def auto_mask(rgb: np.ndarray, *, iterations: int = 4) -> np.ndarray:
    """Return a boolean product mask (True = product) for an RGB uint8 image.

    Raises InputError when no product can be told apart from the background, so that
    the caller can ask for an explicit mask instead of rendering over the product.
    """
    small, scale = _downscale(rgb)
    h, w = small.shape[:2]
    contrast = _border_contrast(small)
    threshold = max(_otsu(contrast), 12.0)
    seed = contrast > threshold
    if not seed.any():
        raise InputError(
            "automatic mask found no product: the image looks like plain background; "
            "pass a mask file or an RGBA image with transparency"
        )
    init = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    init[seed] = cv2.GC_PR_FGD
    core = cv2.erode(seed.astype(np.uint8), _ellipse(max(3, min(h, w) // 40)))
    init[core > 0] = cv2.GC_FGD
    # The colours of the border itself (sky, table, lake) are never product: GrabCut may
    # not grow into them, which is what took sky, lake and a rim of table before.
    init[contrast < BACKGROUND_SHARE * threshold] = cv2.GC_BGD
    band = _band(small.shape)
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
    """Remove specks, close small gaps, keep the product's components, fill holes.

    The kernels are 3 px at the working size so that thin parts (a spoon's handle, an
    antenna) survive. Components under a tenth of the largest are specks; a component
    that touches the frame is dropped when one that does not is at least as large: it is
    background that stands out (a reflection in a lake below, a shadow at the edge),
    while a product cropped by the frame is then the only large component and is kept.
    """
    m = mask.astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, _ellipse(3))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _ellipse(3))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.1 * areas.max())
    h, w = mask.shape
    edge = _band(mask.shape) + 1  # auto_mask keeps this band background
    x, y = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    touches = (x <= edge) | (y <= edge) | (x + stats[1:, cv2.CC_STAT_WIDTH] >= w - edge) | (
        y + stats[1:, cv2.CC_STAT_HEIGHT] >= h - edge)
    inside = keep[~touches[keep]]
    if len(inside) and areas[inside].max() >= areas[keep[touches[keep]]].max(initial=0):
        keep = inside
    m = np.isin(labels, 1 + keep)
    return fill_holes(m)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the image border."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return mask | holes


def _border_contrast(rgb: np.ndarray) -> np.ndarray:
    """How unlike the frame's edges each pixel is: the Lab distance to the nearest of a
    few colour clusters of each side's band, the second smallest of the four sides.

    One side may hold the product's colours (a reflection in a lake along the bottom, a
    product cropped by an edge), so it alone does not make a pixel background; a colour
    that two sides share (sky left and right, table all round) does.
    """
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    band = _band(rgb.shape)
    sides = [lab[:band], lab[-band:], lab[:, :band], lab[:, -band:]]
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    distances = []
    for side in sides:
        pixels = np.ascontiguousarray(side.reshape(-1, 3))
        k = min(SIDE_CLUSTERS, len(pixels))
        cv2.setRNGSeed(0)
        _, _, centres = cv2.kmeans(pixels, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
        d = np.full(lab.shape[:2], np.inf, np.float32)
        for centre in centres:
            d = np.minimum(d, np.linalg.norm(lab - centre, axis=-1))
        distances.append(d)
    second = np.sort(np.stack(distances), axis=0)[1]
    return cv2.GaussianBlur(second, (0, 0), 1.0)


def _band(shape) -> int:
    """Width of the frame's edge band: the background sample, and never product."""
    return max(2, min(shape[:2]) // 50)


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
