"""What to keep, what to generate, and pasting the product back last.

Diffusion never preserves the product by itself: every pixel passes through the VAE and
the mask is binarised on the 8-pixel latent grid. So the studio decides a *keep weight*
per pixel (1 = the placed layer, 0 = generated), lets the engine generate wherever the
weight is below 1, and composites afterwards. Inside the product mask the result is the
placed layer, bit for bit; softening (feathering) happens only outside the product.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError
from .placement import KEEP, PlacedProduct

MODES = ("inpaint", "outpaint")


def keep_weights(placed: PlacedProduct, mode: str, *, feather: int | None = None) -> np.ndarray:
    """Per-pixel weight of the placed layer in the final creative (float32, 0..1).

    ``inpaint`` keeps only the product: a cut-out keeps its own soft alpha edge, a
    product with a binary mask gets an outward ramp of ``feather`` px (default 2) of its
    original pixels to hide the cut line. ``outpaint`` keeps all of the source image's
    content and generates the new canvas area, with an inward ramp of ``feather`` px
    (default 1.5 % of the long side) at the old image border. The weight is exactly 1 on
    the product mask in both modes.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if feather is not None and feather < 0:
        raise InputError(f"feather must be >= 0 pixels, got {feather}")
    mask = placed.mask
    if mode == "inpaint" or placed.mask_source == "alpha":
        if placed.mask_source == "alpha":
            weights = placed.alpha.astype(np.float32) / 255.0
        else:
            weights = _outward_ramp(mask, 2 if feather is None else feather)
    else:
        if placed.image_area.all():
            raise InputError(
                f"outpaint with format {placed.format!r} leaves no new canvas area to "
                "generate; choose another format, or use inpaint"
                if placed.format == KEEP else
                "outpaint leaves no new canvas area: the photo covers the whole canvas; "
                "lower --area or use inpaint"
            )
        ramp = round(0.015 * max(placed.size)) if feather is None else feather
        weights = _inward_ramp(placed.image_area, ramp)
    weights[mask] = 1.0
    return weights


def generation_mask(weights: np.ndarray) -> np.ndarray:
    """Where the engine must generate: everywhere the placed layer is not fully kept."""
    return weights < 1.0


def composite(generated: np.ndarray, placed: PlacedProduct, weights: np.ndarray) -> np.ndarray:
    """Blend the generated image under the placed layer; the product mask is copied
    exactly, so the product region is bit-identical to the placed layer."""
    if generated.shape != placed.rgb.shape:
        raise ValueError(f"generated image {generated.shape} != canvas {placed.rgb.shape}")
    w = weights[..., None]
    out = np.rint(generated.astype(np.float32) * (1 - w) + placed.rgb.astype(np.float32) * w)
    out = out.astype(np.uint8)
    mask = placed.mask
    out[mask] = placed.rgb[mask]
    return out


def canny_control_image(placed: PlacedProduct, low: int = 100, high: int = 200) -> np.ndarray:
    """Canny edges of the placed product only (HxWx3 uint8), to hold its contours
    through a ControlNet (Czapp et al.)."""
    grey = cv2.cvtColor(placed.rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey, low, high)
    outline = cv2.Canny(placed.mask.astype(np.uint8) * 255, 100, 200)
    near_product = cv2.dilate(placed.mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    edges = np.where(near_product, np.maximum(edges, outline), 0).astype(np.uint8)
    return np.repeat(edges[..., None], 3, axis=2)


def _outward_ramp(mask: np.ndarray, width: int) -> np.ndarray:
    """1 on the mask, falling linearly to 0 at ``width`` px outside it."""
    if width == 0:
        return mask.astype(np.float32)
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(1.0 - distance / (width + 1), 0.0, 1.0).astype(np.float32)


def _inward_ramp(area: np.ndarray, width: int) -> np.ndarray:
    """1 deep inside ``area``, falling linearly to 0 over its last ``width`` px; border
    pixels of the canvas do not count as an edge."""
    if width == 0:
        return area.astype(np.float32)
    padded = np.pad(area.astype(np.uint8), 1, mode="edge")
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(distance / (width + 1), 0.0, 1.0).astype(np.float32) * area
