"""Object expansion and seam scores, and re-seeding over --max-expansion."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines import CreativeRenderer, InputError, expansion_score, place, product_from_arrays
from pipelines import seam_score
from pipelines.creative import RESEED_STRIDE

RED = (200, 30, 30)


def _square_product(size: int = 128):
    rgb = np.zeros((size, size, 3), np.uint8)
    alpha = np.zeros((size, size), np.uint8)
    lo, hi = size * 3 // 8, size * 5 // 8
    rgb[lo:hi, lo:hi] = RED
    alpha[lo:hi, lo:hi] = 255
    return product_from_arrays(rgb, alpha, mask_source="alpha")


def _background(shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.empty(shape, np.uint8)
    image[...] = (90, 140, 200)
    return np.clip(image + rng.normal(0, 4, shape), 0, 255).astype(np.uint8)


def _grow(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Paint a product-coloured growth attached to the right side of the product."""
    ys, xs = np.nonzero(mask)
    height = ys.max() - ys.min()
    out = image.copy()
    out[ys.min() + height // 4: ys.max() - height // 4, xs.max() + 1: xs.max() + 1 + height // 2] = RED
    return out


class ScriptedEngine:
    """A test double of the Engine interface: a plain background, with an object
    growth next to the product for the seeds in ``grow``; it records its calls."""

    name = "scripted"
    default_steps = 1
    default_guidance = 0.0

    def __init__(self, mask: np.ndarray, grow: set[int]):
        self.mask, self.grow, self.calls = mask, grow, []

    def __call__(self, image, mask, prompt, *, seeds, **kwargs):
        self.calls.append(list(seeds))
        images = [_background(image.shape, s) for s in seeds]
        return [_grow(im, self.mask) if s in self.grow else im for s, im in zip(seeds, images)]

    def describe(self):
        return {"engine": self.name}


def test_expansion_score_sees_growth_attached_to_the_product():
    placed = place(_square_product(), "keep")
    clean = _background(placed.rgb.shape, 0)
    clean[placed.mask] = placed.rgb[placed.mask]
    grown = _grow(clean, placed.mask)
    assert expansion_score(clean, placed.mask) < 0.02
    painted = (grown != clean).any(axis=-1).sum() / placed.mask.sum()
    assert painted > 0.2
    # The score counts the growth minus a 2 px tolerance band around the product.
    assert expansion_score(grown, placed.mask) == pytest.approx(painted, abs=0.05)


def test_expansion_score_ignores_a_detached_object():
    placed = place(_square_product(), "keep")
    image = _background(placed.rgb.shape, 0)
    image[placed.mask] = placed.rgb[placed.mask]
    image[5:20, 5:20] = RED  # same colour, far from the product
    assert expansion_score(image, placed.mask) < 0.02


def test_seam_score_is_high_for_a_hard_step_and_near_one_for_a_smooth_join():
    rng = np.random.default_rng(0)
    region = np.zeros((128, 128), bool)
    region[:, 64:] = True
    smooth = np.clip(120 + rng.normal(0, 6, (128, 128, 3)), 0, 255).astype(np.uint8)
    step = smooth.copy()
    step[:, 64:] = np.clip(step[:, 64:].astype(int) + 90, 0, 255)
    assert seam_score(smooth, region) == pytest.approx(1.0, abs=0.35)
    assert seam_score(step, region) > 3.0


def test_over_the_limit_creatives_are_re_seeded_until_they_pass():
    placed = place(_square_product(), "keep")
    engine = ScriptedEngine(placed.mask, grow={1, 1 + RESEED_STRIDE})
    creatives = CreativeRenderer(engine, max_expansion=0.05, max_attempts=3)(
        placed, "a scene", seeds=[1, 2])
    assert engine.calls == [[1, 2], [1 + RESEED_STRIDE], [1 + 2 * RESEED_STRIDE]]
    first, second = creatives
    assert first.passed and first.seed == 1 + 2 * RESEED_STRIDE and first.requested_seed == 1
    assert [a["seed"] for a in first.attempts] == [1, 1 + RESEED_STRIDE, 1 + 2 * RESEED_STRIDE]
    assert first.attempts[0]["expansion"] > 0.05 and first.scores["expansion"] <= 0.05
    assert second.passed and second.seed == 2 and len(second.attempts) == 1
    for creative in creatives:
        assert np.array_equal(creative.image[placed.mask], placed.rgb[placed.mask])


def test_when_every_attempt_fails_the_best_is_kept_and_flagged():
    placed = place(_square_product(), "keep")
    engine = ScriptedEngine(placed.mask, grow={5, 5 + RESEED_STRIDE})
    creative = CreativeRenderer(engine, max_expansion=0.05, max_attempts=2)(
        placed, "a scene", seeds=[5])[0]
    assert not creative.passed
    assert len(creative.attempts) == 2 and creative.requested_seed == 5
    assert creative.scores["expansion"] == min(a["expansion"] for a in creative.attempts)


def test_without_a_limit_nothing_is_re_seeded():
    placed = place(_square_product(), "keep")
    engine = ScriptedEngine(placed.mask, grow={1})
    creative = CreativeRenderer(engine)(placed, "a scene", seeds=[1])[0]
    assert engine.calls == [[1]] and creative.passed and creative.scores["expansion"] > 0.05


@pytest.mark.parametrize("kwargs,pattern", [
    ({"max_expansion": -0.1}, "max expansion must be >= 0"),
    ({"max_attempts": 0}, "max attempts must be >= 1"),
])
def test_bad_check_settings_fail_clearly(kwargs, pattern):
    placed = place(_square_product(), "keep")
    with pytest.raises(InputError, match=pattern):
        CreativeRenderer(ScriptedEngine(placed.mask, set()), **kwargs)


def test_empty_prompt_and_no_seeds_fail_clearly():
    placed = place(_square_product(), "keep")
    renderer = CreativeRenderer(ScriptedEngine(placed.mask, set()))
    with pytest.raises(InputError, match="prompt is empty"):
        renderer(placed, "  ", seeds=[1])
    with pytest.raises(InputError, match="at least one seed"):
        renderer(placed, "a scene", seeds=[])
