"""The backdrop engine draws what the prompt names: recognisable surfaces, a floor in
perspective, a podium, shadows and reflections, the light's side and colour, and a
top-down camera for flat lays — and leaves the product's pixels alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines import CreativeRenderer, place, product_from_arrays
from pipelines.engines.backdrop import (
    BackdropEngine,
    SETTING_WORDS,
    SURFACE_WORDS,
    parse_style,
    silhouette_is_top_down,
)

ENGINE = BackdropEngine()
SIZE = 512


def render(prompt: str, mask: np.ndarray | None = None, image: np.ndarray | None = None,
           seed: int = 1) -> np.ndarray:
    """One image of the engine; no product when ``mask`` is None (all generated)."""
    if mask is None:
        mask = np.ones((SIZE, SIZE), bool)
    if image is None:
        image = np.zeros(mask.shape + (3,), np.uint8)
    return ENGINE(image, mask, prompt, seeds=[seed])[0]


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def dark_lines(g: np.ndarray) -> np.ndarray:
    """Pixels well darker than their neighbourhood (light falloff and vignette left out)."""
    return (g < cv2.GaussianBlur(g, (0, 0), 8) - 20).astype(np.uint8)


def standing_product(width: int = 120, height: int = 180, stripes: bool = False):
    """A bottle-like product with a flat base, placed on a square canvas."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:] = (40, 90, 170)
    if stripes:
        rgb[(np.arange(height) // 12) % 2 == 0] = (250, 245, 235)
    alpha = np.zeros((height, width), np.uint8)
    alpha[10:height - 2, 8:width - 8] = 255
    product = product_from_arrays(rgb, alpha, mask_source="alpha")
    return place(product, "1:1", size=SIZE, area=0.12)


def round_product(diameter: int = 150):
    yy, xx = np.mgrid[:diameter + 20, :diameter + 20]
    r = diameter / 2
    inside = (xx - r - 10) ** 2 + (yy - r - 10) ** 2 <= r ** 2
    rgb = np.zeros(inside.shape + (3,), np.uint8)
    rgb[:] = (200, 180, 60)
    product = product_from_arrays(rgb, inside.astype(np.uint8) * 255, mask_source="alpha")
    return place(product, "1:1", size=SIZE, area=0.12)


def to_generate(placed) -> np.ndarray:
    return ~placed.mask


def horizon_step(image: np.ndarray, kept: np.ndarray) -> float:
    """The largest jump between the mean brightness of a band of rows and the band just
    below, in the columns clear of the product and its shadow."""
    xs = np.nonzero(kept.any(axis=0))[0]
    clear = np.ones(kept.shape[1], bool)
    clear[max(0, xs.min() - 60):xs.max() + 60] = False
    rows = grey(image)[:, clear].mean(axis=1)
    band = SIZE // 25  # mean of a band above against the band below: seams do not count
    rows = np.convolve(rows, np.ones(band) / band, mode="valid")
    return float(np.abs(rows[band:] - rows[:-band]).max())


def period(profile: np.ndarray) -> int:
    """The repeat length of a 1-D profile: the first autocorrelation peak (within a
    quarter of its length) that repeats at twice the lag; 0 when there is none."""
    p = profile - profile.mean()
    ac = np.correlate(p, p, mode="full")[len(p) - 1:]
    ac = ac / max(ac[0], 1e-6)
    for lag in range(2, len(ac) // 4):
        if ac[lag] > ac[lag - 1] and ac[lag] >= ac[lag + 1] and ac[lag] > 0.3:
            return lag if ac[2 * lag - 1:2 * lag + 2].max() > 0.2 else 0
    return 0


# --- what the prompt says -----------------------------------------------------------

def test_parse_style_maps_synonyms_and_names_everything():
    assert parse_style("a mug on an oak table")["surface"] == "wood"
    assert parse_style("a mug on a walnut desk")["surface"] == "wood"
    beach = parse_style("sunglasses on the beach")
    assert (beach["surface"], beach["setting"]) == ("sand", "beach")
    picnic = parse_style("a bottle on a picnic blanket in a park")
    assert (picnic["surface"], picnic["setting"]) == ("gingham", "foliage")
    assert parse_style("a candle on mossy rock in a forest")["surface"] == "moss"
    assert parse_style("on bathroom tiles")["surface"] == "tiles"
    pod = parse_style("a perfume on a white marble plinth, beige background")
    assert (pod["podium"], pod["podium_surface"], pod["surface"]) == ("block", "marble", "plain")
    assert pod["podium_colour"] == (244, 243, 240)
    assert parse_style("on a podium")["podium"] == "cylinder"
    assert parse_style("on marble")["glossy"] and not parse_style("on linen")["glossy"]
    assert parse_style("on a glossy black acrylic surface")["reflection"] > 0
    assert parse_style("on honed marble")["reflection"] == 0
    lights = {p: parse_style(p)["light"] for p in (
        "on oak, light from the left", "on oak, light from the right", "on oak, backlit",
        "on oak, top light", "on oak, window light", "on oak")}
    assert list(lights.values()) == ["left", "right", "back", "top", "left", "front"]
    assert parse_style("on sand, golden hour")["temperature"] > 0
    assert parse_style("on sand, blue hour")["temperature"] < 0
    assert parse_style("on sand, overcast")["temperature"] < 0
    assert parse_style("on concrete, dramatic")["contrast"] > 1
    for prompt in ("flat lay on linen", "a watch, top-down, on paper", "shot from above",
                   "bird's-eye view on sand", "overhead shot of a bag on wood"):
        assert parse_style(prompt)["camera"] == "top-down", prompt
    assert parse_style("on oak, light from above")["camera"] == "auto"
    assert parse_style("on oak, eye-level")["camera"] == "eye-level"


def test_the_old_scene_vocabulary_still_names_a_scene():
    old = ("marble wood oak walnut table concrete stone beach desert forest moss garden snow "
           "mountain sunset night neon velvet linen silk kitchen bathroom studio minimal "
           "pastel playful luxury water").split()
    plain = parse_style("on it")
    for word in old:
        assert word in SURFACE_WORDS or word in SETTING_WORDS, word
        style = parse_style(f"on {word}")
        assert (style["surface"], style["setting"], style["wall"], style["floor"]) != (
            plain["surface"], plain["setting"], plain["wall"], plain["floor"]), word


# --- surfaces -----------------------------------------------------------------------------

def signature(image: np.ndarray) -> np.ndarray:
    """Texture statistics of a straight-on surface: contrast, fine detail, orientation,
    saturation, thin dark lines, periodicity, chips."""
    g = grey(image)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1)
    fine = g - cv2.GaussianBlur(g, (0, 0), 1.5)
    dark = dark_lines(g)
    thin = dark.sum() - cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).sum()
    sat = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32)
    return np.array([g.std(), fine.std(), np.log((gx ** 2).mean() / (gy ** 2).mean() + 1e-3),
                     sat.std() / 10, 100 * thin / dark.size, period(g.mean(axis=0)) / 10,
                     chips(image) / 20])


def chips(image: np.ndarray) -> int:
    """Small blobs of another hue or lightness than the surface around them (Lab)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    far = np.abs(lab - cv2.blur(lab, (41, 41)))
    other = (np.linalg.norm(far[..., 1:], axis=2) > 20) | (far[..., 0] > 90)
    count, _, stats, _ = cv2.connectedComponentsWithStats(other.astype(np.uint8), 8)
    return int(((stats[1:, cv2.CC_STAT_AREA] >= 4) & (stats[1:, cv2.CC_STAT_AREA] < 600)).sum())


SURFACE_PROMPTS = ["plain", "marble", "wood", "concrete", "linen", "sand", "terrazzo",
                   "paper", "picnic blanket", "mossy rock", "tiles"]


@pytest.fixture(scope="module")
def surfaces():
    return {word: render(f"flat lay on {word}") for word in SURFACE_PROMPTS}


def test_every_surface_has_its_own_texture_signature(surfaces):
    signatures = {word: signature(image) for word, image in surfaces.items()}
    words = list(signatures)
    for i, a in enumerate(words):
        for b in words[i + 1:]:
            assert np.abs(signatures[a] - signatures[b]).max() > 0.3, (a, b)


def test_marble_has_thin_high_contrast_veins(surfaces):
    dark = dark_lines(grey(surfaces["marble"]))
    assert 0.003 < dark.mean() < 0.2
    opened = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    assert opened.sum() < 0.3 * dark.sum()  # lines, not blotches
    assert signature(surfaces["plain"])[4] < 0.05


def test_wood_has_strong_oriented_stripes(surfaces):
    g = grey(surfaces["wood"])
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    assert (gx ** 2).mean() > 3 * (gy ** 2).mean()
    for other in ("concrete", "sand", "terrazzo", "marble"):
        o = grey(surfaces[other])
        ox, oy = cv2.Sobel(o, cv2.CV_32F, 1, 0), cv2.Sobel(o, cv2.CV_32F, 0, 1)
        assert (ox ** 2).mean() < 2 * (oy ** 2).mean(), other


def test_terrazzo_is_full_of_small_chips_of_distinct_colours(surfaces):
    assert chips(surfaces["terrazzo"]) > 60
    for other in ("plain", "concrete", "linen", "paper", "sand"):
        assert chips(surfaces[other]) < 10, other
    hues = cv2.cvtColor(surfaces["terrazzo"], cv2.COLOR_RGB2HSV)
    saturated = hues[..., 1] > 60
    assert len(np.unique(hues[..., 0][saturated] // 20)) >= 2


def test_picnic_blanket_is_a_periodic_check(surfaces):
    g = grey(surfaces["picnic blanket"])
    across, down = period(g.mean(axis=0)), period(g.mean(axis=1))
    assert across > 0 and abs(across - down) <= 2
    p = g.mean(axis=0) - g.mean(axis=0).mean()
    ac = np.correlate(p, p, "full")[len(p) - 1:]
    assert ac[across] / ac[0] > 0.5
    assert period(grey(surfaces["concrete"]).mean(axis=0)) == 0


def test_the_floor_is_in_perspective():
    image = render("on tiles")
    g = grey(image)
    rows = g.mean(axis=1)
    horizon = int(np.argmax(np.abs(np.diff(rows[SIZE // 5:-SIZE // 20])))) + SIZE // 5
    far_rows = range(horizon + 8, horizon + 20)
    near_rows = range(SIZE - 30, SIZE - 6)
    centre = slice(SIZE // 4, 3 * SIZE // 4)
    far = np.median([period(g[r, centre]) for r in far_rows])
    near = np.median([period(g[r, centre]) for r in near_rows])
    assert 0 < far < 0.7 * near


# --- staging: podium, reflection, shadows, light --------------------------------------------

def test_a_podium_stands_under_the_product():
    placed = standing_product()
    mask = to_generate(placed)
    ys, xs = np.nonzero(placed.mask)
    base, x0, x1 = ys.max(), xs.min(), xs.max()

    def side_edges(image):
        g = grey(image)[base + 4:min(SIZE, base + 40)]
        edges = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)).mean(axis=0)
        left, right = edges[:x0 - 2], edges[x1 + 3:]
        return left.max() / np.median(edges), right.max() / np.median(edges)

    with_podium = render("on a grey podium", mask, placed.rgb)
    without = render("on grey", mask, placed.rgb)
    assert min(side_edges(with_podium)) > 4
    assert max(side_edges(without)) < 3


def _reflection_correlation(prompt: str) -> float:
    placed = standing_product(stripes=True)
    image = render(prompt, to_generate(placed), placed.rgb)
    ys, xs = np.nonzero(placed.mask)
    base, x0, x1 = ys.max(), xs.min(), xs.max()
    depth = 48
    below = grey(image)[base + 1:base + 1 + depth, x0:x1 + 1].mean(axis=1)
    flipped = grey(placed.rgb)[base - np.arange(1, depth + 1), x0:x1 + 1].mean(axis=1)
    rows = np.arange(depth)
    below = below - np.polyval(np.polyfit(rows, below, 2), rows)  # shadows are smooth
    return float(np.corrcoef(below, flipped)[0, 1])


def test_glossy_surfaces_reflect_the_product_and_linen_does_not():
    assert _reflection_correlation("on a white marble table") > 0.7
    assert _reflection_correlation("on a glossy white acrylic surface") > 0.7
    assert _reflection_correlation("on white linen") < 0.3


def test_light_from_the_left_or_right_moves_highlight_and_shadow():
    placed = standing_product()
    mask = to_generate(placed)
    ys, xs = np.nonzero(placed.mask)
    base, cx, half = ys.max(), int(xs.mean()), (xs.max() - xs.min()) // 2
    left = grey(render("on grey concrete, light from the left", mask, placed.rgb))
    right = grey(render("on grey concrete, light from the right", mask, placed.rgb))
    third = SIZE // 3
    assert left[:, :third].mean() > left[:, -third:].mean() + 10
    assert right[:, -third:].mean() > right[:, :third].mean() + 10
    # The cast shadow lies on the side away from the light, just beside the base.
    band = slice(base - 30, base)
    beside_right = slice(cx + half + 4, cx + half + 40)
    beside_left = slice(cx - half - 40, cx - half - 4)
    left_lit = left[band, beside_right].mean() / left[band, beside_left].mean()
    right_lit = right[band, beside_right].mean() / right[band, beside_left].mean()
    assert left_lit < right_lit


def test_warm_and_cool_light_shift_the_colour_temperature():
    warmth = lambda image: float((image[..., 0].astype(int) - image[..., 2]).mean())
    warm, cool = render("on concrete, warm light"), render("on concrete, cool light")
    neutral = render("on concrete")
    assert warmth(warm) > warmth(neutral) + 8 > warmth(cool) + 16
    assert warmth(render("on sand at sunset")) > warmth(render("on sand, blue hour")) + 20


def test_moody_light_adds_contrast_and_vignette():
    calm, moody = grey(render("on concrete")), grey(render("on concrete, dramatic"))
    corner = lambda g: np.concatenate([g[:40, :40].ravel(), g[-40:, -40:].ravel()]).mean()
    assert corner(moody) / moody.mean() < corner(calm) / calm.mean() - 0.1


# --- camera -------------------------------------------------------------------------------

def test_flat_lay_has_no_horizon_and_the_default_has_one():
    placed = standing_product()
    mask = to_generate(placed)
    eye = render("on an oak table", mask, placed.rgb)
    flat = render("flat lay on an oak table", mask, placed.rgb)
    assert horizon_step(eye, placed.mask) > 25
    assert horizon_step(flat, placed.mask) < min(12, 0.3 * horizon_step(eye, placed.mask))


def test_a_round_silhouette_without_a_base_is_seen_from_above():
    round_placed, standing = round_product(), standing_product()
    assert silhouette_is_top_down(round_placed.mask)
    assert not silhouette_is_top_down(standing.mask)
    assert not silhouette_is_top_down(np.ones((64, 64), bool))
    assert ENGINE.scene("on oak", to_generate(round_placed))["camera"] == "top-down"
    assert ENGINE.scene("on oak, eye-level", to_generate(round_placed))["camera"] == "eye-level"
    assert ENGINE.scene("on oak", to_generate(standing))["camera"] == "eye-level"
    image = render("on an oak table", to_generate(round_placed), round_placed.rgb)
    assert horizon_step(image, round_placed.mask) < 12


# --- contract -----------------------------------------------------------------------------

@pytest.mark.parametrize("prompt", ["on a white marble podium, light from the left",
                                    "flat lay on linen with a plinth",
                                    "at night on a glossy black acrylic surface, backlit",
                                    "on sand at the beach at sunset, window light"])
def test_renders_are_deterministic_and_keep_the_product_exact(prompt):
    placed = standing_product(stripes=True)
    renderer = CreativeRenderer(ENGINE)
    a = renderer(placed, prompt, seeds=[5])[0].image
    b = renderer(placed, prompt, seeds=[5])[0].image
    c = renderer(placed, prompt, seeds=[6])[0].image
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[placed.mask], placed.rgb[placed.mask])
    assert ENGINE.describe() == {"engine": "backdrop", "model_id": None}


def test_a_mask_that_does_not_fit_the_canvas_is_an_error():
    with pytest.raises(ValueError, match="does not match the canvas"):
        ENGINE(np.zeros((32, 32, 3), np.uint8), np.ones((16, 16), bool), "on oak", seeds=[1])
