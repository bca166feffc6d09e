"""The pictures of the mask step: a cut-out preview and the brush editor's value.

The preview shows the product exactly as it will be kept — its own pixels, untinted —
on a checkerboard where it will be regenerated, with a green outline along the mask's
edge. The editor shows the photo as its background and the mask as one paintable,
half-transparent green layer: paint to add to the product, erase to take away.
"""

from __future__ import annotations

import numpy as np

from ..errors import StudioError

#: The mask layer's colour (RGBA): green, half transparent so the photo shows through.
MASK_RGBA = (0, 200, 0, 128)
_OUTLINE = (0, 220, 0)
_CHECKER = (12, (236, 198))  # square side in px, the two greys


def cutout_preview(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The kept pixels as they are, a checkerboard elsewhere, a green outline on the edge."""
    height, width = mask.shape
    side, (light, dark) = _CHECKER
    yy, xx = np.mgrid[:height, :width]
    board = np.where(((yy // side + xx // side) % 2 == 0), light, dark).astype(np.uint8)
    out = np.where(mask[..., None], rgb[..., :3], board[..., None]).astype(np.uint8)
    out[outline(mask)] = _OUTLINE
    return out


def outline(mask: np.ndarray, width: int | None = None) -> np.ndarray:
    """The band of background pixels within ``width`` px of the mask (outside it, so the
    kept pixels stay visible as they are)."""
    width = width or max(1, round(max(mask.shape) / 200))
    grown = mask.copy()
    for _ in range(width):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= grown[:, :-1]
        step[:, :-1] |= grown[:, 1:]
        grown = step
    return grown & ~mask


def editor_value(rgb: np.ndarray, mask: np.ndarray) -> dict:
    """The ImageEditor's value: the photo as background, the mask as its one layer."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask] = MASK_RGBA
    composite = rgb[..., :3].copy()
    alpha = MASK_RGBA[3] / 255
    composite[mask] = (composite[mask] * (1 - alpha)
                       + np.array(MASK_RGBA[:3]) * alpha).astype(np.uint8)
    return {"background": rgb[..., :3], "layers": [layer], "composite": composite}


def mask_from_editor(value: dict | None) -> np.ndarray:
    """The brushed mask (True = product): wherever the mask layer is painted."""
    layers = (value or {}).get("layers") or []
    if not layers or layers[0] is None:
        raise StudioError("paint the mask first (load a product, then brush its layer)")
    layer = np.asarray(layers[0])
    if layer.ndim == 3 and layer.shape[2] == 4:
        return layer[..., 3] > 0
    grey = layer[..., :3].mean(axis=2) if layer.ndim == 3 else layer
    return grey >= 128
