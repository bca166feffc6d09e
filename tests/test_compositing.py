"""Keep weights, generation masks and the paste-back that keeps the product exact."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import draw_cutout, draw_photo
from pipelines import InputError, composite, generation_mask, keep_weights, place
from pipelines import product_from_arrays
from pipelines.compositing import canny_control_image


@pytest.fixture
def cutout():
    rgba = draw_cutout(64, 64)
    return product_from_arrays(rgba[..., :3], rgba[..., 3], mask_source="alpha")


@pytest.fixture
def photo():
    rgb, truth = draw_photo(64, 64)
    return product_from_arrays(rgb, truth, mask_source="auto")


def test_composite_is_bit_identical_on_the_product_for_any_generated_image(cutout, photo):
    rng = np.random.default_rng(0)
    for product in (cutout, photo):
        for mode in ("inpaint", "outpaint"):
            placed = place(product, "4:5", size=128, area=0.1)
            weights = keep_weights(placed, mode)
            generated = rng.integers(0, 256, placed.rgb.shape, dtype=np.uint8)
            out = composite(generated, placed, weights)
            assert np.array_equal(out[placed.mask], placed.rgb[placed.mask])
            far = weights == 0
            assert np.array_equal(out[far], generated[far])


def test_inpaint_feathers_only_outside_the_product(photo):
    placed = place(photo, "keep")
    weights = keep_weights(placed, "inpaint", feather=3)
    assert (weights[placed.mask] == 1).all()
    ring = (weights > 0) & (weights < 1)
    assert ring.any() and not (ring & placed.mask).any()
    assert np.array_equal(generation_mask(weights), weights < 1)
    hard = keep_weights(placed, "inpaint", feather=0)
    assert np.array_equal(hard == 1, placed.mask)


def test_outpaint_keeps_the_whole_photo_and_generates_the_new_area(photo):
    placed = place(photo, "9:16", size=128, area=0.2)
    weights = keep_weights(placed, "outpaint", feather=0)
    assert np.array_equal(weights == 1, placed.image_area)
    assert generation_mask(weights).sum() == (~placed.image_area).sum()


def test_outpaint_of_a_cutout_generates_its_transparent_pixels(cutout):
    placed = place(cutout, "keep")
    weights = keep_weights(placed, "outpaint")
    assert generation_mask(weights)[placed.alpha == 0].all()


def test_outpaint_without_new_canvas_area_fails_clearly(photo):
    with pytest.raises(InputError, match="no new canvas area"):
        keep_weights(place(photo, "keep"), "outpaint")


def test_bad_mode_and_feather_fail_clearly(photo):
    placed = place(photo, "keep")
    with pytest.raises(InputError, match="unknown mode 'repaint'"):
        keep_weights(placed, "repaint")
    with pytest.raises(InputError, match="feather must be"):
        keep_weights(placed, "inpaint", feather=-1)


def test_canny_control_image_holds_only_the_product_outline(photo):
    placed = place(photo, "1:1", size=128)
    control = canny_control_image(placed)
    assert control.shape == placed.rgb.shape and control.dtype == np.uint8
    edges = control[..., 0] > 0
    assert edges.any()
    x0, y0, x1, y1 = placed.box
    outside = np.ones_like(edges)
    outside[max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = False
    assert not edges[outside].any()
