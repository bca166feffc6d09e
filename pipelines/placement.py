"""Ad formats and product placement (Czapp et al., RecSys'24).

A product photo is rarely framed for the placement it will be shown in. Placement
re-centres and scales the product into the canvas of an ad format so that the product
covers a chosen fraction of the canvas at a chosen anchor. The result — the placed
product layer and its mask — is fixed from here on: every creative rendered from it must
reproduce its product pixels exactly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .errors import InputError
from .product import MASK_THRESHOLD, Product

#: Aspect ratios (width / height) of the supported ad formats.
FORMATS: dict[str, float] = {"1:1": 1.0, "4:5": 4 / 5, "9:16": 9 / 16, "1.91:1": 1.91}
#: The input canvas unchanged (no re-centring, no resampling).
KEEP = "keep"
#: Default long side of a format's canvas, in pixels (SD-1.5's native resolution).
DEFAULT_LONG_SIDE = 512
#: Largest canvas side accepted by default, in pixels; ``STUDIO_MAX_SIZE`` (an environment
#: variable, a positive multiple of 8) moves it. Larger canvases cost time and memory
#: quadratically (4096 px ran for minutes at 1.3 GB with the procedural engine).
MAX_SIDE = 2048
MAX_SIDE_ENV = "STUDIO_MAX_SIZE"
#: Named anchors: where the centre of the product's bounding box goes, as (x, y) fractions.
ANCHORS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "bottom": (0.5, 0.62),
    "top": (0.5, 0.38),
    "left": (0.38, 0.5),
    "right": (0.62, 0.5),
}


@dataclass(frozen=True, eq=False)
class PlacedProduct:
    """A product placed on an ad canvas.

    ``rgb`` is the canvas with the (resampled) source image where it lands and zeros
    elsewhere; ``alpha`` its product alpha on the canvas; ``image_area`` where the source
    image puts content on the canvas (the area outpainting keeps; for cut-outs, only their
    non-transparent pixels). ``box`` is the product's
    bounding box on the canvas (x0, y0, x1, y1) and ``scale`` the resampling factor.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    image_area: np.ndarray
    box: tuple[int, int, int, int]
    scale: float
    format: str
    mask_source: str

    @property
    def mask(self) -> np.ndarray:
        """The product region that must stay bit-identical (bool)."""
        return self.alpha >= MASK_THRESHOLD

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        return self.rgb.shape[1], self.rgb.shape[0]


def canvas_size(fmt: str, size: str | int | None = None) -> tuple[int, int]:
    """Canvas (width, height) for a format name and an optional size.

    ``size`` is either the long side (``768``) or an exact ``WxH``; both sides must be
    multiples of 8 (the latent grid of Stable Diffusion). With an exact size the format's
    aspect ratio must match it within 2 %.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of: {', '.join(format_names())}")
    aspect = FORMATS[fmt]
    if size is None or isinstance(size, int) or re.fullmatch(r"\s*\d+\s*", size):
        long_side = DEFAULT_LONG_SIDE if size is None else int(size)
        _check_multiple_of_8(long_side, "long side")
        if aspect >= 1:
            return long_side, _round8(long_side / aspect)
        return _round8(long_side * aspect), long_side
    width, height = parse_size(size)
    if abs(width / height / aspect - 1) > 0.02:
        raise InputError(
            f"size {width}x{height} (aspect {width / height:.3f}) does not match format {fmt} "
            f"(aspect {aspect:.3f}); give a long side only, or a matching WxH"
        )
    return width, height


def parse_size(size: str | int) -> tuple[int, int]:
    """Parse ``WxH`` into (width, height), both positive multiples of 8."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(size))
    if not match:
        raise InputError(f"size {size!r} is not WxH (for example 512x640) or a long side")
    width, height = int(match[1]), int(match[2])
    _check_multiple_of_8(width, "width")
    _check_multiple_of_8(height, "height")
    return width, height


def max_side() -> int:
    """The largest canvas side accepted: ``STUDIO_MAX_SIZE`` when set, else ``MAX_SIDE``."""
    value = os.environ.get(MAX_SIDE_ENV, "").strip()
    if not value:
        return MAX_SIDE
    if not re.fullmatch(r"\d+", value) or int(value) <= 0 or int(value) % 8:
        raise InputError(f"{MAX_SIDE_ENV}={value!r} is not a positive multiple of 8")
    return int(value)


def check_size(size: str | int | None, formats=None) -> None:
    """Validate ``size`` (a long side or ``WxH``) for every format in ``formats`` (default:
    every ad format) without placing anything: fast, for faces to call before heavy work."""
    if size is None or (isinstance(size, str) and not size.strip()):
        return
    for fmt in formats or FORMATS:
        if fmt != KEEP:
            canvas_size(fmt, size)


def format_names() -> list[str]:
    return [KEEP, *FORMATS]


def place(product: Product, fmt: str = "1:1", *, size: str | int | None = None,
          area: float = 0.3, anchor: str | tuple[float, float] = "center",
          margin: float = 0.06) -> PlacedProduct:
    """Re-centre and scale ``product`` into the canvas of ``fmt``.

    ``area`` is the fraction of the canvas the product's bounding box should cover;
    ``anchor`` a named anchor or (x, y) fractions for the box centre; ``margin`` the
    minimum gap to the canvas edge, as a fraction of each side. With ``fmt="keep"`` the
    input canvas is used unchanged (``size`` must then be omitted).
    """
    if fmt == KEEP:
        if size is not None:
            raise InputError("format 'keep' uses the input canvas; it cannot take a size")
        covered = np.ones(product.alpha.shape, bool)
        return PlacedProduct(product.rgb.copy(), product.alpha.copy(),
                             _content(covered, product.alpha, product.mask_source),
                             product.bbox, 1.0, KEEP, product.mask_source)
    if not 0.01 <= area <= 0.95:
        raise InputError(f"area must be between 0.01 and 0.95 of the canvas, got {area}")
    if not 0 <= margin < 0.5:
        raise InputError(f"margin must be in [0, 0.5), got {margin}")
    ax, ay = _anchor(anchor)
    width, height = canvas_size(fmt, size)

    x0, y0, x1, y1 = product.bbox
    bw, bh = x1 - x0, y1 - y0
    scale = np.sqrt(area * width * height / (bw * bh))
    scale = min(scale, (1 - 2 * margin) * width / bw, (1 - 2 * margin) * height / bh)

    src_h, src_w = product.alpha.shape
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    rgb, alpha = _resample(product, (new_w, new_h))
    # Where the box lands: centre at the anchor, then clamped inside the margins.
    box_w, box_h = bw * new_w / src_w, bh * new_h / src_h
    cx = np.clip(ax * width, margin * width + box_w / 2, (1 - margin) * width - box_w / 2)
    cy = np.clip(ay * height, margin * height + box_h / 2, (1 - margin) * height - box_h / 2)
    off_x = round(cx - (x0 + bw / 2) * new_w / src_w)
    off_y = round(cy - (y0 + bh / 2) * new_h / src_h)

    canvas_rgb = np.zeros((height, width, 3), np.uint8)
    canvas_alpha = np.zeros((height, width), np.uint8)
    covered = np.zeros((height, width), bool)
    dst, src = _overlap((off_x, off_y), (new_w, new_h), (width, height))
    canvas_rgb[dst] = rgb[src]
    canvas_alpha[dst] = alpha[src]
    covered[dst] = True
    placed_mask = canvas_alpha >= MASK_THRESHOLD
    if not placed_mask.any():
        raise InputError("the product is too small to survive placement; raise --area")
    ys, xs = np.nonzero(placed_mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return PlacedProduct(canvas_rgb, canvas_alpha,
                         _content(covered, canvas_alpha, product.mask_source),
                         box, float(new_w / src_w), fmt, product.mask_source)


def _content(covered: np.ndarray, alpha: np.ndarray, mask_source: str) -> np.ndarray:
    """Canvas pixels that carry source content: a cut-out's transparent pixels do not."""
    return covered & (alpha > 0) if mask_source == "alpha" else covered


def _resample(product: Product, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize the product; cut-outs go through Pillow's premultiplied RGBA resize so
    that colour hidden under transparent pixels does not bleed into the edges."""
    if size == product.size:
        return product.rgb.copy(), product.alpha.copy()
    if product.mask_source == "alpha":
        rgba = Image.fromarray(np.dstack([product.rgb, product.alpha]), "RGBA")
        out = np.asarray(rgba.resize(size, Image.Resampling.LANCZOS))
        return np.ascontiguousarray(out[..., :3]), np.ascontiguousarray(out[..., 3])
    shrinking = size[0] < product.size[0]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    rgb = cv2.resize(product.rgb, size, interpolation=interp)
    alpha = cv2.resize(product.alpha, size, interpolation=cv2.INTER_LINEAR)
    return rgb, np.where(alpha >= MASK_THRESHOLD, 255, 0).astype(np.uint8)


def _overlap(offset: tuple[int, int], src_size: tuple[int, int], dst_size: tuple[int, int]):
    """Slices of the destination canvas and the source image that overlap."""
    (ox, oy), (sw, sh), (dw, dh) = offset, src_size, dst_size
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(dw, ox + sw), min(dh, oy + sh)
    dst = (slice(y0, y1), slice(x0, x1))
    src = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
    return dst, src


def _anchor(anchor: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(anchor, str):
        if anchor not in ANCHORS:
            raise InputError(f"unknown anchor {anchor!r}; choose one of: {', '.join(ANCHORS)}")
        return ANCHORS[anchor]
    ax, ay = anchor
    if not (0 <= ax <= 1 and 0 <= ay <= 1):
        raise InputError(f"anchor fractions must lie in [0, 1], got {anchor}")
    return float(ax), float(ay)


def _round8(value: float) -> int:
    return max(8, int(np.floor(value / 8 + 0.5)) * 8)


def _check_multiple_of_8(value: int, what: str) -> None:
    if value <= 0 or value % 8:
        raise InputError(f"{what} {value} is not a positive multiple of 8")
    limit = max_side()
    if value > limit:
        raise InputError(f"{what} {value} is over the {limit} px limit; use a smaller size "
                         f"(or raise the limit with {MAX_SIDE_ENV})")
