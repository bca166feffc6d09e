"""Quality checks on a finished creative: object expansion and seams.

*Object expansion* (Eshratifar et al., 2024): inpainting models tend to grow the object's
outline into the background — an extra strap, a second bottle neck, a shadow that looks
like part of the product. After the product is pasted back, that growth stays visible
outside the mask. We detect foreground in the finished image with GrabCut seeded by the
product mask and report the foreground area outside the (slightly dilated) mask and
connected to it, as a fraction of the product area. 0 means no expansion.

*Seam score*: how much sharper the image is on the boundary of the generated region than
inside the generated background (ratio of mean Sobel gradient magnitudes). About 1 means
the boundary blends in; high values mean a visible edge there. In inpaint mode the
boundary follows the product outline, so the product's own contrast is part of the score:
compare it between creatives of the same product, not across products.
"""

from __future__ import annotations

import cv2
import numpy as np

from .masks import grabcut

#: The checks run on a copy whose long side is at most this many pixels.
CHECK_SIZE = 128


def expansion_score(image: np.ndarray, product_mask: np.ndarray, *, tolerance: int = 2) -> float:
    """Foreground grown outside the product, as a fraction of the product area."""
    small, mask = _shrink(image, product_mask)
    h, w = mask.shape
    labels = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    labels[mask] = cv2.GC_FGD
    band = max(1, min(h, w) // 50)
    border = np.zeros((h, w), bool)
    border[:band], border[-band:], border[:, :band], border[:, -band:] = True, True, True, True
    labels[border & ~mask] = cv2.GC_BGD
    foreground = grabcut(small, labels, iterations=2)
    near = cv2.dilate(mask.astype(np.uint8), _disk(tolerance)) > 0
    grown = (foreground & ~near).astype(np.uint8)
    count, components = cv2.connectedComponents(grown, connectivity=8)
    if count <= 1:
        return 0.0
    touching = cv2.dilate(near.astype(np.uint8), _disk(1)) > 0
    attached = np.unique(components[touching & (grown > 0)])
    area = np.isin(components, attached[attached > 0]).sum()
    return float(area / max(1, mask.sum()))


def seam_score(image: np.ndarray, generated_region: np.ndarray) -> float:
    """Mean gradient on the boundary of the generated region over the mean gradient
    inside it (excluding the boundary band)."""
    small, region = _shrink(image, generated_region)
    if region.all() or not region.any():
        return 1.0
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy)
    r = region.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    boundary = (cv2.dilate(r, kernel) > 0) & ~(cv2.erode(r, kernel) > 0)
    inside = region & ~boundary
    if not inside.any():
        return 1.0
    return float(magnitude[boundary].mean() / max(magnitude[inside].mean(), 1.0))


def _shrink(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    scale = min(1.0, CHECK_SIZE / max(h, w))
    if scale == 1.0:
        return image, mask
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return small, small_mask


def _disk(radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
