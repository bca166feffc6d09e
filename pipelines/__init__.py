"""Image and diffusion work: products, masks, placement, render engines, compositing.

A library: it never imports ``studio``, ``reward`` or ``bandit``.
"""

from .checks import expansion_score, seam_score
from .compositing import MODES, composite, generation_mask, keep_weights
from .creative import Creative, CreativeRenderer
from .errors import InputError
from .placement import (FORMATS, KEEP, PlacedProduct, canvas_size, check_size, format_names,
                        max_side, place)
from .product import Product, load_mask, load_product, product_from_arrays, read_image

__all__ = [
    "FORMATS", "KEEP", "MODES", "Creative", "CreativeRenderer", "InputError",
    "PlacedProduct", "Product", "canvas_size", "check_size", "composite", "expansion_score",
    "format_names", "generation_mask", "keep_weights", "load_mask", "load_product", "max_side",
    "place", "product_from_arrays", "read_image", "seam_score",
]
