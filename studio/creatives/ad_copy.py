"""Ad copy on a creative: laid out in the brand's style, then read back with OCR.

The layout itself (safe zones, contrast, scrim) is ``pipelines.overlay``; this module
brings the brand kit to it (the bundled example kit when none is given, banned words
refused) and turns the OCR read-back of the finished image into the manifest's ``copy``.
"""

from __future__ import annotations

import time

import numpy as np

from pipelines import PlacedProduct
from pipelines.ocr import read_back
from pipelines.overlay import CopyLayout, compose_copy

from ..inputs.brand import BrandKit
from ..prompts.copy import AdCopy


def lay_out_copy(image: np.ndarray, placed: PlacedProduct, copy: AdCopy,
                 brand: BrandKit | None) -> CopyLayout:
    """The headline and CTA of ``copy`` laid out on ``image`` in the brand's style, off
    the product; an error names a banned word, or says the copy does not fit."""
    brand = brand or BrandKit.default()
    for text in (copy.headline, copy.cta):
        brand.check_copy(text)
    return compose_copy(image, placed.mask, format=placed.format, style=brand.text_style(),
                        headline=copy.headline or None, cta=copy.cta or None)


def copy_manifest(creative_id: str, image: np.ndarray, layout: CopyLayout, copy: AdCopy,
                  brand: BrandKit | None) -> dict:
    """The manifest's ``copy``: what was written, what OCR reads on the finished
    ``image`` and whether it reads back exactly, the layout, and the files of the
    background and of the copy layer."""
    expected = {name: text for name, text in (("headline", copy.headline), ("cta", copy.cta))
                if text}
    started = time.perf_counter()
    readback = read_back(image, layout.boxes, expected)
    return {"headline": copy.headline, "cta": copy.cta,
            "brand": (brand or BrandKit.default()).name,
            "ocr_match": readback["ocr_match"], "read": readback["read"],
            "confidence": readback["confidence"],
            "ocr_s": round(time.perf_counter() - started, 4),
            "background": f"{creative_id}.background.png", "layer": f"{creative_id}.copy.png",
            "layout": layout.as_dict()}
