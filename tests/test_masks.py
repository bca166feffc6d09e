"""Automatic product masks on realistic synthetic photos (drawn here, never committed):
a top-down coffee cup on a wooden table, a rocket against a cloudy sky, a pagoda above
a lake that reflects it. Each photo has a known true mask, so the mask is measured:
IoU, recall of thin parts (the spoon's handle), and how ragged its outline is."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from pipelines import InputError
from pipelines.masks import auto_mask


# ------------------------------------------------------------------ drawing photos
def _finish(rgb: np.ndarray, rng: np.random.Generator, *, noise: float = 4.0) -> np.ndarray:
    """Camera look: a slight lens blur, sensor noise, then a JPEG round trip."""
    img = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 0.8)
    img += rng.normal(0, noise, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 82])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


def _smooth_noise(shape, rng, sigma: float) -> np.ndarray:
    """Zero-mean, unit-ish low-frequency noise (for grain warps, clouds, ripples)."""
    field = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), sigma)
    return field / (field.std() + 1e-6)


def _paint(rgb, mask, colour, shade=None):
    """Fill ``mask`` with ``colour`` times a per-pixel ``shade`` (soft lighting)."""
    colour = np.asarray(colour, np.float32)
    value = colour[None, :] * (shade[mask][:, None] if shade is not None else 1.0)
    rgb[mask] = np.clip(value, 0, 255)


def coffee_cup_photo(size: int = 512, seed: int = 0):
    """A cup of coffee on a saucer with a thin long-handled spoon, shot from above on a
    wood-grain table with a soft shadow. Returns (rgb, truth, handle) masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    # Wood: warped rings along x, fine fibres, plank seams, warm brown tones.
    warp = _smooth_noise((size, size), rng, size / 16) * 9
    grain = np.sin((xx * 0.11 + warp + 0.015 * yy) * 1.3)
    fibres = _smooth_noise((size, size), rng, 1.2) * 0.35
    tone = 0.5 + 0.22 * grain + 0.08 * fibres
    tone -= 0.25 * (np.abs(((xx + 40) % (size / 3)) - 1) < 1.5)  # plank seams
    wood = np.stack([150 + 70 * tone, 95 + 50 * tone, 55 + 30 * tone], axis=-1)
    rgb = wood.copy()
    cx, cy, s = size * 0.5, size * 0.47, size / 512
    r = np.hypot(xx - cx, yy - cy)
    # Soft shadow of the saucer, offset down-right, darkening the table.
    shadow = cv2.GaussianBlur((np.hypot(xx - cx - 14 * s, yy - cy - 16 * s) < 150 * s)
                              .astype(np.float32), (0, 0), 12 * s)
    rgb *= (1 - 0.45 * shadow)[..., None]
    light = 1.0 - 0.12 * (xx + yy) / (2 * size)  # light from the top-left
    saucer = r < 150 * s
    _paint(rgb, saucer, (236, 234, 228), light * (1 - 0.08 * (np.abs(r - 132 * s) < 6 * s)))
    cup = r < 88 * s
    _paint(rgb, cup, (242, 240, 236), light * (1 - 0.12 * (r / (88 * s)) ** 4))
    coffee = r < 70 * s
    crema = 0.75 + 0.25 * np.exp(-((xx - cx + 20 * s) ** 2 + (yy - cy + 18 * s) ** 2)
                                 / (2 * (22 * s) ** 2))
    _paint(rgb, coffee, (120, 72, 40), crema)
    cup_handle = (np.abs(yy - cy) < 11 * s) & (xx > cx + 84 * s) & (xx < cx + 118 * s)
    _paint(rgb, cup_handle, (238, 236, 232), light)
    # Spoon: bowl on the saucer, a thin handle running far out over the table.
    spoon_bowl = (((xx - cx + 50 * s) / (22 * s)) ** 2 + ((yy - cy - 112 * s) / (13 * s)) ** 2) < 1
    t = np.clip(((xx - (cx - 30 * s)) * 0.94 + (yy - (cy + 112 * s)) * 0.34) / (200 * s), 0, 1)
    px, py = cx - 30 * s + t * 200 * s * 0.94, cy + 112 * s + t * 200 * s * 0.34
    handle = (np.hypot(xx - px, yy - py) < (3.2 + 1.6 * t) * s) & ~spoon_bowl
    metal = 0.8 + 0.2 * np.sin(xx * 0.09 + yy * 0.04)
    _paint(rgb, spoon_bowl | handle, (178, 180, 186), metal)
    truth = saucer | cup | cup_handle | spoon_bowl | handle
    handle_only = handle & ~saucer
    return _finish(rgb, rng), truth, handle_only


def _sky(h, w, rng, *, clouds: float = 1.0) -> np.ndarray:
    yy = np.mgrid[:h, :w][0].astype(np.float32) / h
    top, horizon = np.array([52, 110, 190], np.float32), np.array([178, 206, 232], np.float32)
    sky = top + (horizon - top) * yy[..., None]
    cloud = _smooth_noise((h, w), rng, w / 18)
    cloud = np.clip(cloud - 0.6, 0, None) * clouds * (1 - yy)
    cloud = np.clip(cloud / (cloud.max() + 1e-6), 0, 1)[..., None]
    return sky * (1 - 0.85 * cloud) + np.array([245, 246, 248], np.float32) * 0.85 * cloud


def rocket_photo(width: int = 384, height: int = 768, seed: int = 1):
    """A tall thin rocket against a sky gradient with clouds, on a strip of ground."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    rgb = _sky(height, width, rng)
    ground = yy > height * 0.9
    rgb[ground] = (np.array([88, 96, 70]) * (0.85 + 0.15 * _smooth_noise((height, width), rng, 3)
                                              [ground][:, None] * 0.5))
    cx, half = width * 0.5, width * 0.06
    top, bottom = height * 0.1, height * 0.9
    body = (np.abs(xx - cx) < half) & (yy > top + half * 3.2) & (yy < bottom)
    nose = (yy >= top) & (yy <= top + half * 3.2) & (np.abs(xx - cx) < half * (yy - top) / (half * 3.2))
    fins = (yy > bottom - half * 3) & (yy < bottom) & (np.abs(xx - cx) < half + (yy - (bottom - half * 3)) * 0.8)
    shade = 0.55 + 0.45 * np.cos(np.clip((xx - cx + half * 0.4) / (half * 1.6), -1.5, 1.5))
    rocket = body | nose | fins
    _paint(rgb, body, (236, 236, 238), shade)
    _paint(rgb, body & (np.abs(yy - height * 0.45) < 10), (40, 40, 46), shade)
    _paint(rgb, nose, (200, 40, 36), shade)
    _paint(rgb, fins & ~body, (170, 36, 32), shade)
    return _finish(rgb, rng), rocket


def pagoda_photo(width: int = 512, height: int = 640, seed: int = 2):
    """A pagoda of stacked roofs against the sky, on a shore above a lake that reflects
    it (the reflection is not the product)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    rgb = _sky(height, width, rng, clouds=0.7)
    shore = height * 0.62
    cx = width * 0.5
    pagoda = np.zeros((height, width), bool)
    tiers, tier_h = 5, (shore - height * 0.12) / 5.4
    layer = np.zeros((height, width, 3), np.float32)
    for i in range(tiers):
        base = shore - i * tier_h
        wall_half = width * (0.12 - 0.015 * i)
        wall = (np.abs(xx - cx) < wall_half) & (yy > base - tier_h * 0.55) & (yy <= base)
        roof_half = wall_half * 1.7
        roof_top, roof_bottom = base - tier_h, base - tier_h * 0.55
        frac = np.clip((yy - roof_top) / (roof_bottom - roof_top), 0, 1)
        roof = (yy >= roof_top) & (yy <= roof_bottom) & (np.abs(xx - cx) < wall_half * 0.5 + frac * (roof_half - wall_half * 0.5))
        layer[wall] = (150, 48, 38)
        layer[roof] = (62, 58, 60)
        pagoda |= wall | roof
    spire = (np.abs(xx - cx) < 4) & (yy > height * 0.06) & (yy < shore - tiers * tier_h + 2)
    layer[spire] = (70, 64, 50)
    pagoda |= spire
    light = (0.8 + 0.2 * np.clip((cx - xx) / width + 0.5, 0, 1))[..., None]
    rgb[pagoda] = (layer * light)[pagoda]
    # Shore: a thin strip of land from edge to edge; then the lake.
    land = (yy > shore) & (yy < shore + 10)
    rgb[land] = (96, 104, 72)
    lake = yy >= shore + 10
    mirror_y = np.clip(2 * (shore + 10) - yy + rng.normal(0, 1.5, yy.shape)
                       + 3 * np.sin(yy * 0.35 + xx * 0.02), 0, height - 1).astype(np.int32)
    ripple_x = np.clip(xx + 2.5 * np.sin(yy * 0.5), 0, width - 1).astype(np.int32)
    reflection = rgb[mirror_y, ripple_x] * np.array([0.62, 0.7, 0.78], np.float32)
    water = np.array([40, 70, 96], np.float32)
    rgb[lake] = (0.7 * reflection + 0.3 * water)[lake]
    return _finish(rgb, rng), pagoda


# ------------------------------------------------------------------ measuring masks
def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / max(1, (mask | truth).sum()))


def raggedness(mask: np.ndarray) -> float:
    """Outline length over the convex hull's: ~1 for a smooth round outline."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    biggest = max(contours, key=cv2.contourArea)
    return cv2.arcLength(biggest, True) / cv2.arcLength(cv2.convexHull(biggest), True)


def rim_error(mask: np.ndarray, truth: np.ndarray, width: int = 12) -> float:
    """Share of wrong pixels in a band ``width`` px either side of the true outline: a
    jagged rim of table (or a bite out of the saucer) shows here, whatever IoU says."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    t = truth.astype(np.uint8)
    band = (cv2.dilate(t, kernel) - cv2.erode(t, kernel)) > 0
    return float((mask != truth)[band].mean())


# ------------------------------------------------------------------------- tests
def test_coffee_cup_from_above_keeps_the_spoon_handle_and_no_table():
    rgb, truth, handle = coffee_cup_photo()
    mask = auto_mask(rgb)
    assert iou(mask, truth) > 0.96, iou(mask, truth)
    assert (mask & handle).sum() / handle.sum() > 0.85  # the thin handle over the wood
    assert rim_error(mask, truth) < 0.08, rim_error(mask, truth)
    assert raggedness(mask) < raggedness(truth) * 1.05


def test_rocket_against_the_sky_takes_no_sky_or_ground():
    rgb, truth = rocket_photo()
    mask = auto_mask(rgb)
    assert iou(mask, truth) > 0.93, iou(mask, truth)
    assert not mask[int(rgb.shape[0] * 0.92):].any()  # the ground strip
    assert rim_error(mask, truth) < 0.1, rim_error(mask, truth)


def test_pagoda_above_a_lake_takes_neither_the_lake_nor_its_reflection():
    rgb, truth = pagoda_photo()
    mask = auto_mask(rgb)
    assert iou(mask, truth) > 0.9, iou(mask, truth)
    shore = int(rgb.shape[0] * 0.62) + 2
    assert mask[shore:].sum() < 0.01 * truth.sum()  # land, lake and reflection are not product
    assert (mask & truth)[: shore].sum() > 0.9 * truth.sum()  # the dark roofs are


@pytest.mark.parametrize("photo", [coffee_cup_photo, rocket_photo, pagoda_photo])
def test_automatic_masks_are_deterministic_and_fast_at_1024_px(photo):
    rgb = photo()[0]
    scale = 1024 / max(rgb.shape[:2])
    big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    before = big.copy()
    started = time.perf_counter()
    first = auto_mask(big)
    elapsed = time.perf_counter() - started
    assert np.array_equal(first, auto_mask(big))
    assert np.array_equal(big, before)  # the photo is not modified
    assert first.shape == big.shape[:2] and first.dtype == bool
    assert elapsed < 1.5, elapsed  # ~1 s budget, with room for a loaded test machine


@pytest.mark.parametrize("image,pattern", [
    (np.full((64, 64, 3), 200, np.uint8), "no product"),
])
def test_plain_backgrounds_are_refused(image, pattern):
    with pytest.raises(InputError, match=pattern):
        auto_mask(image)
