"""Procedural textures of the backdrop engine: the surfaces products stand on and the
settings seen behind them.

A surface (``SURFACES``) is drawn flat, as seen straight from above: one-colour materials
return a shading map (1 = the colour; cheaper to warp, tinted by ``colourise``), the
multi-coloured ones float RGB 0..255. The backdrop engine shows it as is for a top-down shot and warps it onto a floor plane
in perspective otherwise. A setting (``SETTINGS``) is the wall or view above the
horizon, drawn in screen space. Feature sizes are fractions of ``unit`` (the canvas's
long side), so a 64-px test canvas and a 1080×1350 creative show the same pattern.
Everything is numpy and OpenCV on small noise grids: milliseconds, deterministic for a
given ``rng``.

Why this module is long: it is a catalogue of independent texture painters (one short
function per material or setting) sharing three noise helpers; splitting it would only
scatter the catalogue.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

Colour = tuple[int, int, int]
Shape = tuple[int, int]


def noise(shape: Shape, cells: tuple[float, float] | float, rng: np.random.Generator) -> np.ndarray:
    """Smooth value noise in about [-0.5, 0.5]: a random grid of ``cells`` (across the
    width, down the height; one number = square cells over the long side), upsampled."""
    h, w = shape
    if not isinstance(cells, tuple):
        cells = (cells * w / max(h, w), cells * h / max(h, w))
    gw, gh = max(2, round(cells[0])), max(2, round(cells[1]))
    grid = rng.random((gh, gw), dtype=np.float32) - 0.5
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def fbm(shape: Shape, cells: float, rng: np.random.Generator, octaves: int = 3) -> np.ndarray:
    """Fractal noise: ``octaves`` of value noise, each twice as fine and half as strong."""
    total = np.zeros(shape, np.float32)
    for octave in range(octaves):
        total += noise(shape, cells * 2 ** octave, rng) * 0.5 ** octave
    return total


def _grid(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    return (np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :])


def _tint(shade: np.ndarray, colour: Colour) -> np.ndarray:
    """A grey shading map (1 = the colour itself) times a colour: HxWx3 float32."""
    return shade[..., None] * np.asarray(colour, np.float32)


def _mix(a: np.ndarray, b: np.ndarray | Colour, t: np.ndarray) -> np.ndarray:
    b = np.asarray(b, np.float32)
    return a + (b - a) * t[..., None]


# --- surfaces ------------------------------------------------------------------------

def marble(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Cloudy stone crossed by long, thin, dark diagonal veins (each a level line of a
    turbulent ramp) with a soft halo, and fainter secondary veins across them."""
    y, x = _grid(shape)
    cells = max(shape) / unit
    turbulence = noise(shape, 2.5 * cells, rng) + 0.35 * noise(shape, 7 * cells, rng)
    angle = rng.uniform(0.5, 1.1)
    t = (x * np.cos(angle) + y * np.sin(angle)) / unit * 3.5 + 1.3 * turbulence
    line = np.abs(np.sin(np.pi * t))
    width = 0.008 + 0.04 * np.clip(noise(shape, 3 * cells, rng) + 0.5, 0, 1)
    fade = np.clip(0.7 + 1.6 * noise(shape, 2 * cells, rng), 0.15, 1)
    veins = fade * (np.exp(-line / width) + 0.25 * np.exp(-line / 0.3))
    angle2 = angle + rng.uniform(0.9, 1.4)
    t2 = (x * np.cos(angle2) + y * np.sin(angle2)) / unit * 5.0 + 1.6 * turbulence
    fine = np.exp(-np.abs(np.sin(np.pi * t2)) / 0.015)
    clouds = fbm(shape, 4 * cells, rng, 3)
    return 1 + 0.1 * clouds - 0.42 * veins - 0.2 * fine


def wood(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Planks running down the texture (into the scene once in perspective), each with
    its own tone and grain, dark seams between them and staggered end joints."""
    h, w = shape
    y, x = _grid(shape)
    plank_w, plank_l = unit / 7.5, unit * 0.9
    col = (x // plank_w).astype(np.int32)
    ncols = int(col.max()) + 1
    offsets = rng.uniform(0, plank_l, ncols).astype(np.float32)
    along = y + offsets[col]
    row = (along // plank_l).astype(np.int32)
    tones = rng.uniform(0.86, 1.12, (int(row.max()) + 1, ncols)).astype(np.float32)
    streaks = noise(shape, (w / unit * 90, h / unit * 3), rng)
    waves = noise(shape, (w / unit * 5, h / unit * 4), rng)
    phase = rng.uniform(0, 2 * np.pi, ncols).astype(np.float32)
    rings = np.sin(2 * np.pi * x / (plank_w / 9) + 14 * waves + phase[col])
    grain = np.exp(-np.abs(rings) / 0.25)  # thin dark late-wood lines
    shade = tones[row, col] * (1 + 0.12 * streaks - 0.12 * grain)
    seam = np.minimum(np.minimum(x % plank_w, plank_w - x % plank_w),
                      np.where(along % plank_l < 1.2, 0, 9))
    return shade * (1 - 0.5 * np.exp(-seam / max(0.6, unit / 1200)))


def concrete(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Mottled cement with fine aggregate and small dark pits."""
    cells = max(shape) / unit
    mottle = fbm(shape, 3 * cells, rng, 4)
    fine = noise(shape, 120 * cells, rng)
    pits = (rng.random(shape, dtype=np.float32) < 0.0015).astype(np.float32)
    pits = cv2.GaussianBlur(pits, (0, 0), max(0.6, unit / 900)) * 6
    return 1 + 0.24 * mottle + 0.06 * fine - 0.3 * np.minimum(pits, 1)


def linen(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Woven fabric: warp and weft threads with irregular (slubbed) thickness, and soft
    folds."""
    h, w = shape
    y, x = _grid(shape)
    period = max(2.6, unit / 300)
    slub_x = noise(shape, (w / period, h / unit * 40), rng)  # per thread, short slubs
    slub_y = noise(shape, (w / unit * 40, h / period), rng)
    warp = np.cos(2 * np.pi * x / period) * (0.7 + slub_x)
    weft = np.cos(2 * np.pi * y / period) * (0.7 + slub_y)
    folds = fbm(shape, 2.5 * max(shape) / unit, rng, 2)
    return 1 + 0.06 * (warp + weft) + 0.05 * (slub_x + slub_y) + 0.08 * folds


def velvet(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Soft pile fabric: broad folds with a strong sheen on their crests."""
    folds = fbm(shape, 3 * max(shape) / unit, rng, 2)
    sheen = np.exp(-np.abs(folds) / 0.12)
    return 0.85 + 0.35 * sheen + 0.03 * noise(shape, 200 * max(shape) / unit, rng)


def sand(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Grains (per-pixel speckle) on wind ripples: wavy crests across the texture."""
    h, w = shape
    y, x = _grid(shape)
    bend = noise(shape, (w / unit * 3, h / unit * 2), rng)
    period = unit / 24
    phase = (y + 40 * bend * unit / 100) / period + 0.3 * noise(shape, 8 * max(shape) / unit, rng)
    ripple = np.sin(2 * np.pi * phase) + 0.35 * np.sin(4 * np.pi * phase)
    grains = cv2.GaussianBlur(rng.standard_normal(shape, dtype=np.float32), (0, 0), 0.6)
    dunes = fbm(shape, 2 * max(shape) / unit, rng, 2)
    return 1 + 0.07 * ripple + 0.12 * grains + 0.08 * dunes


TERRAZZO_CHIPS: tuple[Colour, ...] = ((60, 62, 68), (176, 92, 66), (132, 150, 120),
                                      (214, 196, 160), (38, 38, 40), (196, 140, 120))


def terrazzo(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """A pale binder full of chips: small irregular polygons in a few distinct colours."""
    h, w = shape
    canvas = np.ascontiguousarray(np.broadcast_to(np.asarray(colour, np.uint8), (h, w, 3)))
    palette = [TERRAZZO_CHIPS[i] for i in rng.choice(len(TERRAZZO_CHIPS), 4, replace=False)]
    count = int(h * w / (unit / 28) ** 2)
    centres = rng.random((count, 2)) * (w, h)
    radii = unit * rng.uniform(0.004, 0.016, count) * rng.choice([1, 1, 1, 2], count)
    angles = np.sort(rng.uniform(0, 2 * np.pi, (count, 6)), axis=1)
    spread = radii[:, None] * rng.uniform(0.55, 1.0, (count, 6))
    points = centres[:, None, :] + spread[..., None] * np.stack([np.cos(angles),
                                                                 np.sin(angles)], -1)
    points = np.rint(points).astype(np.int32)
    which = rng.integers(0, len(palette), count)
    for k, chip in enumerate(palette):
        cv2.fillPoly(canvas, list(points[which == k]), tuple(int(c) for c in chip),
                     lineType=cv2.LINE_AA)
    speckle = 1 + 0.04 * noise(shape, 150 * max(shape) / unit, rng)
    return canvas.astype(np.float32) * speckle[..., None]


def paper(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Paper: a mottled sheet strewn with short, faint, curved fibres."""
    h, w = shape
    layer = np.zeros(shape, np.float32)
    count = int(h * w / (unit / 60) ** 2)
    start = rng.random((count, 2)) * (w, h)
    length = unit * rng.uniform(0.006, 0.03, count)
    angle = rng.uniform(0, np.pi, count)
    bend = rng.uniform(-0.6, 0.6, count)
    steps = np.linspace(0, 1, 4)[None, :]
    theta = angle[:, None] + bend[:, None] * steps
    xs = start[:, :1] + np.cumsum(np.cos(theta) * length[:, None] / 3, axis=1)
    ys = start[:, 1:] + np.cumsum(np.sin(theta) * length[:, None] / 3, axis=1)
    fibres = np.rint(np.stack([xs, ys], -1)).astype(np.int32)
    half = count // 2
    cv2.polylines(layer, list(fibres[:half]), False, 1.0, 1, cv2.LINE_AA)
    cv2.polylines(layer, list(fibres[half:]), False, -1.0, 1, cv2.LINE_AA)
    mottle = fbm(shape, 6 * max(shape) / unit, rng, 3)
    return 1 + 0.12 * layer + 0.06 * mottle + 0.02 * noise(shape, 300 * max(shape) / unit, rng)


def gingham(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """A picnic-blanket check: white, half-tone and full-colour squares of woven cloth."""
    y, x = _grid(shape)
    half = unit / 28
    stripes_x = ((x // half) % 2).astype(np.float32)
    stripes_y = ((y // half) % 2).astype(np.float32)
    amount = cv2.GaussianBlur(0.5 * (stripes_x + stripes_y), (0, 0), 0.7)
    cloth = _mix(np.full(shape + (3,), 246, np.float32), colour, amount)
    return cloth * linen(shape, colour, unit, rng)[..., None]


def stone(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator,
          moss: float = 0.0) -> np.ndarray:
    """Rough rock with dark cracks; ``moss`` (0..1) covers that share with fuzzy moss."""
    cells = max(shape) / unit
    ridges = 1 - 2 * np.abs(fbm(shape, 3 * cells, rng, 4))
    cracks = np.exp(-np.abs(noise(shape, 5 * cells, rng)) / 0.012)
    shade = 0.85 + 0.25 * ridges - 0.35 * cracks + 0.06 * noise(shape, 90 * cells, rng)
    rock = _tint(shade, colour)
    if moss <= 0:
        return rock
    patches = fbm(shape, 4 * cells, rng, 3)
    cover = np.clip((patches - np.quantile(patches[::7, ::7], 1 - moss)) * 12 + 0.5, 0, 1)
    fuzz = 0.8 + 0.35 * noise(shape, 160 * cells, rng) + 0.2 * noise(shape, 25 * cells, rng)
    green = _tint(fuzz, (88, 120, 52))
    return rock * (1 - cover[..., None]) + green * cover[..., None]


def mossy(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Moss-covered rock (forest floor)."""
    return stone(shape, colour, unit, rng, moss=0.6)


def tiles(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Square glazed tiles, each a slightly different tone, in light grout lines."""
    y, x = _grid(shape)
    size = unit / 6.5
    col, row = (x // size).astype(np.int32), (y // size).astype(np.int32)
    tones = rng.uniform(0.95, 1.05, (int(row.max()) + 1, int(col.max()) + 1)).astype(np.float32)
    gap = np.minimum(np.minimum(x % size, size - x % size), np.minimum(y % size, size - y % size))
    grout = np.exp(-gap / max(0.7, unit / 700))
    glaze = 1 + 0.03 * fbm(shape, 8 * max(shape) / unit, rng, 2)
    tile = _tint(tones[row, col] * glaze, colour)
    return _mix(tile, (226, 224, 218), np.clip(grout * 1.4, 0, 1))


def water(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Rippled water: waves across the texture and bright caustic lines."""
    h, w = shape
    y, _ = _grid(shape)
    bend = fbm(shape, 3 * max(shape) / unit, rng, 3)
    phase = y / (unit / 30) + 4 * bend
    wobble = 2 * noise(shape, (w / unit * 10, h / unit * 4), rng)
    caustics = np.exp(-np.abs(np.sin(np.pi * (phase + wobble))) / 0.06)
    return 1 + 0.08 * np.sin(2 * np.pi * phase) + 0.35 * caustics + 0.05 * bend


def plain(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """A seamless paper sweep: colour with only a faint mottle."""
    return 1 + 0.015 * fbm(shape, 3 * max(shape) / unit, rng, 2)


Painter = Callable[[Shape, Colour, float, np.random.Generator], np.ndarray]


def paint(surface: str, shape: Shape, colour: Colour, unit: float,
          rng: np.random.Generator) -> np.ndarray:
    """The surface as RGB (HxWx3 float32): a painter's shading map tinted by ``colour``,
    or its own colours for the multi-coloured ones (terrazzo, gingham, moss, tiles)."""
    return colourise(SURFACES[surface](shape, colour, unit, rng), colour)


def colourise(pattern: np.ndarray, colour: Colour) -> np.ndarray:
    """A surface painter's result as RGB: a 2-D shading map times ``colour``; RGB as is."""
    return _tint(pattern, colour) if pattern.ndim == 2 else pattern

SURFACES: dict[str, Painter] = {
    "plain": plain, "marble": marble, "wood": wood, "concrete": concrete, "linen": linen,
    "velvet": velvet, "sand": sand, "terrazzo": terrazzo, "paper": paper, "gingham": gingham,
    "stone": stone, "moss": mossy, "tiles": tiles, "water": water,
}


# --- settings (what is seen above the horizon) -----------------------------------------

def _sky(shape: Shape, colour: Colour, horizon_tint: Colour) -> np.ndarray:
    h, _ = shape
    t = (np.arange(h, dtype=np.float32)[:, None] / max(1, h - 1)) ** 1.5
    top = np.asarray(colour, np.float32) * 0.85
    return np.broadcast_to(top + (np.asarray(horizon_tint, np.float32) - top) * t[..., None],
                           shape + (3,)).copy()


def _ridge(shape: Shape, img: np.ndarray, height: float, colour: Colour, unit: float,
           rng: np.random.Generator, roughness: float) -> np.ndarray:
    """A far silhouette (dunes, hills) along the bottom of the view, ``height`` px tall."""
    h, w = shape
    curve = fbm((1, w), (w / unit * roughness, 1), rng, 3)[0]
    top = h - height * (0.6 + 0.8 * curve)
    inside = np.clip(np.arange(h, dtype=np.float32)[:, None] - top[None, :] + 0.5, 0, 1)
    return _mix(img, colour, inside)


def studio(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """A plain studio wall, a touch darker at the top."""
    h, _ = shape
    t = np.arange(h, dtype=np.float32)[:, None] / max(1, h)
    return _tint((0.9 + 0.1 * t) * (1 + 0.02 * fbm(shape, 2 * max(shape) / unit, rng, 2)),
                 colour)


def beach(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Sky over a band of sea with glints, surf at its foot."""
    h, w = shape
    img = _sky(shape, colour, (232, 240, 246))
    sea_top = int(h * 0.8)
    band = (h - sea_top, w)
    glints = noise(band, (w / unit * 40, 14), rng)
    sea = _tint(1 + 0.25 * np.clip(glints * 3, 0, 1), (44, 112, 150))
    y = np.arange(band[0], dtype=np.float32)[:, None] / max(1, band[0])
    sea = _mix(sea, (236, 240, 240), np.clip((y - 0.8) * 5, 0, 1) * np.ones((1, w), np.float32))
    img[sea_top:] = sea
    return img


def desert(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Pale sky over far dunes."""
    img = _sky(shape, colour, (246, 232, 210))
    return _ridge(shape, img, shape[0] * 0.12, (222, 186, 140), unit, rng, 2.0)


def mountain(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Sky over two hazy mountain ridges."""
    img = _sky(shape, colour, (226, 232, 240))
    img = _ridge(shape, img, shape[0] * 0.45, (138, 150, 172), unit, rng, 3.0)
    return _ridge(shape, img, shape[0] * 0.22, (96, 104, 112), unit, rng, 5.0)


def snow(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Pale winter sky over white hills."""
    img = _sky(shape, colour, (238, 242, 248))
    return _ridge(shape, img, shape[0] * 0.2, (246, 248, 252), unit, rng, 2.0)


def sunset(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Orange at the horizon to violet above, the sun low on it."""
    h, w = shape
    img = _sky(shape, (120, 90, 150), (250, 170, 100))
    y, x = _grid(shape)
    sun_x = w * rng.uniform(0.25, 0.75)
    r2 = ((x - sun_x) ** 2 + (y - h * 0.92) ** 2) / (unit * 0.05) ** 2
    img = _mix(img, (255, 236, 190), np.clip(np.exp(-r2) * 1.6 + 0.35 * np.exp(-r2 / 12), 0, 1))
    return _mix(img, colour, np.full(shape, 0.15, np.float32))


def _spots(shape: Shape, img: np.ndarray, colours: list[Colour], count: int,
           radius: tuple[float, float], blur: float, rng: np.random.Generator) -> np.ndarray:
    """Soft discs (out-of-focus leaves or lights), drawn at half scale and upsampled."""
    h, w = shape
    sh, sw = max(2, h // 2), max(2, w // 2)
    layer = np.zeros((sh, sw, 3), np.float32)
    cover = np.zeros((sh, sw), np.float32)
    for _ in range(count):
        centre = (int(rng.integers(0, sw)), int(rng.integers(0, sh)))
        r = max(1, int(rng.uniform(*radius) * max(sh, sw)))
        colour = colours[int(rng.integers(len(colours)))]
        cv2.circle(layer, centre, r, tuple(float(c) for c in colour), -1, cv2.LINE_AA)
        cv2.circle(cover, centre, r, 1.0, -1, cv2.LINE_AA)
    sigma = max(1.0, blur * max(sh, sw))
    layer = cv2.GaussianBlur(layer, (0, 0), sigma)
    cover = cv2.GaussianBlur(cover, (0, 0), sigma)
    layer = cv2.resize(layer, (w, h), interpolation=cv2.INTER_LINEAR)
    cover = cv2.resize(cover, (w, h), interpolation=cv2.INTER_LINEAR)
    return img * (1 - cover[..., None]) + layer


def foliage(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus greenery with a few sun flecks (garden, forest, picnic)."""
    img = _tint(0.8 + 0.3 * fbm(shape, 3 * max(shape) / unit, rng, 2), colour)
    greens = [(46, 84, 40), (76, 122, 56), (118, 158, 78), (34, 62, 34), (150, 180, 96)]
    img = _spots(shape, img, greens, 140, (0.02, 0.06), 0.02, rng)
    return _spots(shape, img, [(236, 240, 196)], 12, (0.008, 0.02), 0.008, rng)


def bokeh(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Night: a dark gradient scattered with blurred city or neon lights."""
    img = studio(shape, colour, unit, rng) * 0.8
    lights = [(255, 196, 110), (255, 120, 180), (120, 180, 255), (250, 230, 170)]
    return _spots(shape, img, lights, 40, (0.012, 0.035), 0.004, rng)


def tiled_wall(shape: Shape, colour: Colour, unit: float, rng: np.random.Generator) -> np.ndarray:
    """Subway tiles: offset rows of glazed bricks in grout (kitchen, bathroom)."""
    y, x = _grid(shape)
    tile_w = unit / 9
    tile_h = tile_w / 2.2
    row = (y // tile_h).astype(np.int32)
    shifted = x + (row % 2) * tile_w / 2
    gap = np.minimum(np.minimum(shifted % tile_w, tile_w - shifted % tile_w),
                     np.minimum(y % tile_h, tile_h - y % tile_h))
    grout = np.clip(np.exp(-gap / max(0.7, unit / 800)) * 1.4, 0, 1)
    glaze = 1 + 0.05 * np.sin(np.pi * (y % tile_h) / tile_h)
    return _mix(_tint(glaze * np.ones_like(x), colour), (200, 198, 192), grout)


SETTINGS: dict[str, Painter] = {
    "studio": studio, "beach": beach, "desert": desert, "mountain": mountain, "snow": snow,
    "sunset": sunset, "foliage": foliage, "bokeh": bokeh, "tiled": tiled_wall,
}
