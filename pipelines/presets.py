"""Platform export presets: the exact pixel sizes ad placements take.

A preset names a format and an exact size (``feed-4:5`` = 1080×1350). Diffusion works on a
latent grid of 8 pixels, and 1350 or 628 are not multiples of 8, so a preset renders on the
smallest canvas of multiples of 8 that holds it (1080×1352) and is then cropped to the exact
size — a few pixels taken from the edge farther from the product, so the product is never
cut and never resampled a second time (its pixels stay the placed ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .creative import Creative
from .errors import InputError
from .placement import PlacedProduct


@dataclass(frozen=True)
class Preset:
    """One placement size: ``format`` is the ad format it is rendered in."""

    name: str
    format: str
    width: int
    height: int
    label: str

    @property
    def render_size(self) -> tuple[int, int]:
        """(width, height) of the canvas it is rendered on: each side rounded up to 8."""
        return _up8(self.width), _up8(self.height)

    @property
    def size_option(self) -> str:
        """The render canvas as a ``WxH`` size option for :func:`pipelines.place`."""
        width, height = self.render_size
        return f"{width}x{height}"

    def describe(self) -> dict:
        return {"name": self.name, "width": self.width, "height": self.height,
                "format": self.format, "label": self.label}


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("feed-1:1", "1:1", 1080, 1080, "Instagram / Facebook feed, square"),
    Preset("feed-4:5", "4:5", 1080, 1350, "Instagram / Facebook feed, portrait"),
    Preset("story-9:16", "9:16", 1080, 1920, "Stories, Reels, TikTok, Shorts"),
    Preset("link-1.91:1", "1.91:1", 1200, 628, "Facebook / LinkedIn link ad, Google display"),
    Preset("marketplace-1000", "1:1", 1000, 1000, "Marketplace square (Etsy, eBay; zoom "
           "from 1000 px)"),
    Preset("marketplace-2000", "1:1", 2000, 2000, "Marketplace square, large (Amazon, "
           "Shopify zoom)"),
)}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an InputError lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of: "
                         f"{', '.join(PRESETS)} (`studio presets` lists their sizes)") from None


def crop_to_preset(creative: Creative, placed: PlacedProduct,
                   preset: Preset) -> tuple[Creative, PlacedProduct]:
    """Crop a rendered creative (and its placed product) to the preset's exact size.

    The rows (columns) removed come from the side farther from the product's box, so
    the product is never touched.
    """
    height, width = creative.image.shape[:2]
    if (width, height) != preset.render_size:
        raise InputError(f"a {preset.name} creative is rendered at {preset.size_option}, "
                         f"got {width}x{height}")
    x0, y0, x1, y1 = placed.box
    dx, dy = width - preset.width, height - preset.height
    left = dx if x0 >= width - x1 else 0  # more room on the left: take the columns there
    top = dy if y0 >= height - y1 else 0
    if x0 < left or x1 > left + preset.width or y0 < top or y1 > top + preset.height:
        raise InputError(f"the product reaches the edge of the {preset.name} canvas; "
                         "lower the area")
    rows, cols = slice(top, top + preset.height), slice(left, left + preset.width)
    cropped = replace(placed, rgb=placed.rgb[rows, cols], alpha=placed.alpha[rows, cols],
                      image_area=placed.image_area[rows, cols],
                      box=(x0 - left, y0 - top, x1 - left, y1 - top))
    return replace(creative, image=creative.image[rows, cols],
                   kept=creative.kept[rows, cols]), cropped


def _up8(value: int) -> int:
    return int(math.ceil(value / 8) * 8)
