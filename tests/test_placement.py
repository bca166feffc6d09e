"""Ad formats, canvas sizes and placement of the product."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import draw_cutout
from pipelines import FORMATS, InputError, canvas_size, place, product_from_arrays


@pytest.fixture
def product():
    rgba = draw_cutout(80, 64)
    return product_from_arrays(rgba[..., :3], rgba[..., 3], mask_source="alpha")


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("size", [None, 768, "640"])
def test_canvas_sizes_are_multiples_of_8_with_the_format_aspect(fmt, size):
    width, height = canvas_size(fmt, size)
    long_side = 512 if size is None else int(size)
    assert width % 8 == 0 and height % 8 == 0
    assert max(width, height) == long_side
    assert abs(width / height - FORMATS[fmt]) / FORMATS[fmt] < 0.05


def test_exact_size_must_match_the_format():
    assert canvas_size("4:5", "512x640") == (512, 640)
    with pytest.raises(InputError, match="does not match format 9:16"):
        canvas_size("9:16", "512x512")


@pytest.mark.parametrize("size,pattern", [
    ("500x512", "width 500 is not a positive multiple of 8"),
    ("512x500", "height 500 is not a positive multiple of 8"),
    ("514", "long side 514"),
    ("big", "is not WxH"),
    ("0x0", "not a positive multiple of 8"),
])
def test_bad_sizes_fail_clearly(size, pattern):
    with pytest.raises(InputError, match=pattern):
        canvas_size("1:1", size)


def test_unknown_format_fails_clearly(product):
    with pytest.raises(InputError, match="unknown format '3:2'; choose one of: keep, 1:1"):
        place(product, "3:2")


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("area", [0.15, 0.3])
def test_product_covers_the_requested_area_inside_the_margins(product, fmt, area):
    placed = place(product, fmt, size=256, area=area, margin=0.05)
    width, height = placed.size
    x0, y0, x1, y1 = placed.box
    covered = (x1 - x0) * (y1 - y0) / (width * height)
    too_big = (x1 - x0) > 0.9 * width or (y1 - y0) > 0.9 * height
    assert covered == pytest.approx(area, rel=0.15) or too_big
    assert x0 >= 0.05 * width - 1 and x1 <= 0.95 * width + 1
    assert y0 >= 0.05 * height - 1 and y1 <= 0.95 * height + 1
    assert placed.mask.sum() > 0.5 * product.mask.sum() * placed.scale ** 2


def test_anchor_moves_the_product(product):
    low = place(product, "9:16", size=256, anchor="bottom")
    high = place(product, "9:16", size=256, anchor="top")
    centre_low = (low.box[1] + low.box[3]) / 2
    centre_high = (high.box[1] + high.box[3]) / 2
    assert centre_low > centre_high + 20
    with pytest.raises(InputError, match="unknown anchor"):
        place(product, "1:1", anchor="middle")
    with pytest.raises(InputError, match="anchor fractions"):
        place(product, "1:1", anchor=(1.5, 0.5))


def test_keep_is_the_input_canvas_unchanged(product):
    placed = place(product, "keep")
    assert placed.size == product.size and placed.scale == 1.0
    assert np.array_equal(placed.rgb, product.rgb)
    assert np.array_equal(placed.alpha, product.alpha)
    with pytest.raises(InputError, match="cannot take a size"):
        place(product, "keep", size=512)


def test_bad_area_and_margin_fail_clearly(product):
    with pytest.raises(InputError, match="area must be between"):
        place(product, "1:1", area=1.2)
    with pytest.raises(InputError, match="margin must be"):
        place(product, "1:1", margin=0.6)
