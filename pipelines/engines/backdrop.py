"""Procedural studio backdrops: no weights, milliseconds per image.

The prompt's colour words, scene words and lighting words choose a palette, a surface
texture (marble, wood, concrete, sand, fabric...) and a light; the canvas becomes a wall
and a floor meeting in a soft sweep behind the product, with a glow, a vignette, fine
grain and a soft contact shadow under the kept region. It is the offline default, a fast
preview, and makes clean marketplace images ("on a white background").
"""

from __future__ import annotations

import re
import zlib
from typing import Sequence

import cv2
import numpy as np

from .base import ProgressCallback

COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (244, 243, 240), "ivory": (240, 234, 214), "cream": (238, 228, 205),
    "beige": (222, 205, 178), "sandy": (220, 196, 160), "grey": (160, 162, 166),
    "gray": (160, 162, 166), "silver": (192, 195, 200), "charcoal": (60, 62, 66),
    "black": (28, 28, 30), "red": (190, 50, 45), "burgundy": (110, 28, 40),
    "coral": (240, 128, 110), "pink": (238, 170, 185), "peach": (245, 190, 155),
    "orange": (235, 130, 55), "terracotta": (190, 100, 70), "gold": (212, 175, 90),
    "golden": (222, 180, 95), "yellow": (240, 210, 90), "olive": (120, 125, 70),
    "green": (90, 150, 90), "sage": (160, 180, 150), "mint": (175, 225, 200),
    "emerald": (30, 120, 85), "teal": (40, 130, 135), "turquoise": (70, 190, 190),
    "blue": (70, 120, 200), "navy": (30, 40, 80),
    "lavender": (190, 175, 225), "purple": (110, 70, 150), "brown": (120, 85, 60),
}

#: Scene words → (wall colour, floor colour, texture).
SCENES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], str]] = {
    "marble": ((228, 226, 222), (236, 234, 230), "marble"),
    "wood": ((205, 185, 160), (150, 105, 70), "wood"),
    "oak": ((215, 195, 165), (170, 125, 85), "wood"),
    "walnut": ((190, 170, 150), (105, 70, 45), "wood"),
    "table": ((215, 205, 190), (160, 120, 85), "wood"),
    "concrete": ((170, 170, 168), (150, 150, 148), "concrete"),
    "stone": ((175, 170, 160), (140, 135, 125), "concrete"),
    "beach": ((165, 205, 235), (225, 200, 160), "sand"),
    "desert": ((235, 200, 160), (215, 170, 120), "sand"),
    "forest": ((70, 110, 70), (95, 80, 55), "moss"),
    "moss": ((90, 120, 75), (80, 105, 60), "moss"),
    "garden": ((150, 190, 130), (110, 140, 80), "moss"),
    "snow": ((225, 232, 240), (245, 248, 252), "concrete"),
    "mountain": ((150, 175, 205), (120, 115, 105), "concrete"),
    "sunset": ((245, 160, 110), (200, 120, 110), "plain"),
    "night": ((25, 30, 60), (40, 40, 60), "plain"),
    "neon": ((40, 20, 70), (30, 30, 60), "plain"),
    "velvet": ((95, 25, 45), (75, 20, 35), "fabric"),
    "linen": ((225, 215, 195), (215, 205, 185), "fabric"),
    "silk": ((230, 220, 215), (220, 205, 200), "fabric"),
    "kitchen": ((230, 225, 215), (200, 190, 175), "concrete"),
    "bathroom": ((220, 228, 230), (235, 238, 240), "marble"),
    "studio": ((236, 236, 236), (228, 228, 228), "plain"),
    "minimal": ((238, 236, 232), (228, 225, 220), "plain"),
    "pastel": ((240, 210, 215), (205, 230, 220), "plain"),
    "playful": ((250, 215, 120), (130, 200, 230), "plain"),
    "luxury": ((40, 35, 40), (90, 75, 55), "marble"),
    "water": ((120, 175, 210), (90, 150, 190), "plain"),
}

#: Lighting words → (brightness factor, vignette strength, glow strength, warmth shift).
LIGHTS: dict[str, tuple[float, float, float, float]] = {
    "morning": (1.06, 0.12, 0.22, 6.0), "soft": (1.03, 0.10, 0.18, 0.0),
    "bright": (1.10, 0.06, 0.15, 0.0), "golden": (1.04, 0.18, 0.30, 14.0),
    "warm": (1.02, 0.15, 0.20, 10.0), "cool": (1.00, 0.15, 0.15, -10.0),
    "dramatic": (0.85, 0.45, 0.35, 0.0), "moody": (0.80, 0.40, 0.20, -4.0),
    "dark": (0.75, 0.35, 0.15, 0.0), "evening": (0.85, 0.30, 0.25, 8.0),
    "studio": (1.02, 0.12, 0.20, 0.0),
}

_DEFAULT_LIGHT = (1.0, 0.18, 0.18, 0.0)
LIGHT_WORDS = {"light", "lighting", "hour", "glow", "sunlight", "lights"}
#: A colour word followed by one of these paints the wall, or the floor.
WALL_WORDS = {"sky", "wall", "walls", "background", "backdrop", "curtain", "tiles"}
FLOOR_WORDS = {"table", "floor", "surface", "counter", "countertop", "ground", "desk", "shelf",
               "tray", "plinth", "podium", "pedestal", "cloth", "rug", "stone", "slab"}


class BackdropEngine:
    """Renders procedural backdrops. ``steps`` and ``guidance`` are accepted and ignored;
    the seed and the prompt's text vary light position, texture and a small palette
    jitter, so two prompts with the same style words still give different images."""

    name = "backdrop"
    default_steps = 1
    default_guidance = 0.0

    def __call__(self, image: np.ndarray, mask: np.ndarray, prompt: str, *,
                 seeds: Sequence[int], negative_prompt: str = "", steps: int | None = None,
                 guidance: float | None = None, control_image: np.ndarray | None = None,
                 callback: ProgressCallback | None = None, ip_adapter_images=None,
                 ip_adapter_scale: float = 0.6) -> list[np.ndarray]:
        style = parse_style(prompt)
        text_key = zlib.crc32(prompt.encode())  # different prompts, different backdrops
        images = []
        for i, seed in enumerate(seeds):
            images.append(_render(mask, style, np.random.default_rng([seed, text_key])))
            if callback is not None:
                callback(i + 1, len(seeds))
        return images

    def describe(self) -> dict:
        return {"engine": self.name, "model_id": None}


def parse_style(prompt: str) -> dict:
    """Read colours, scene and lighting from a prompt (case-insensitive words).

    The words before the first placement preposition (" on ", " in ", " at ", ...) name
    the product ("a pair of red sneakers on ...") and are not read. The first scene word
    sets wall, floor and texture; a colour word followed by a floor noun ("white marble
    table") colours the floor, one followed by a wall noun ("turquoise sky") the wall;
    other colours fill the wall, then the floor.
    """
    text = prompt.lower()
    match = re.search(r"\b(on|in|at|beside|under|against|by|inside|near)\b", text)
    if match and match.start() > 0:
        text = text[match.start():]
    words = re.findall(r"[a-z]+", text)
    scenes = [SCENES[w] for w in words if w in SCENES]
    wall, floor, texture = scenes[0] if scenes else ((236, 236, 236), (226, 226, 226), "plain")
    wall_colour = floor_colour = None
    loose = []
    for i, word in enumerate(words):
        if word not in COLOURS:
            continue
        following = set(words[i + 1:i + 3])
        if words[i + 1:i + 2] and words[i + 1] in LIGHT_WORDS:
            continue  # "golden light" is lighting, not a surface colour
        if following & FLOOR_WORDS and floor_colour is None:
            floor_colour = COLOURS[word]
        elif following & WALL_WORDS and wall_colour is None:
            wall_colour = COLOURS[word]
        else:
            loose.append(COLOURS[word])
    if wall_colour is None and loose:
        wall_colour = loose.pop(0)
    if floor_colour is None and loose:
        floor_colour = loose.pop(0)
    if floor_colour is not None:
        floor = floor_colour
    if wall_colour is not None:
        wall = wall_colour
        if floor_colour is None and not scenes:
            floor = _shade(wall_colour, 0.9)
    light = [LIGHTS[w] for w in words if w in LIGHTS]
    brightness, vignette, glow, warmth = light[0] if light else _DEFAULT_LIGHT
    return {"wall": wall, "floor": floor, "texture": texture, "brightness": brightness,
            "vignette": vignette, "glow": glow, "warmth": warmth}


def _render(mask: np.ndarray, style: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = mask.shape
    kept = ~mask
    ys, xs = np.nonzero(kept)
    if len(ys):
        base_y, centre_x = ys.max() / h, xs.mean() / w
        top_y, span = ys.min() / h, (xs.max() - xs.min() + 1) / w
    else:
        base_y, centre_x, top_y, span = 0.66, 0.5, 0.4, 0.3
    horizon = float(np.clip(base_y - 0.12 * (base_y - top_y) - 0.05, 0.3, 0.85))

    jitter = rng.normal(0, 6, 3)
    wall = np.clip(np.array(style["wall"], np.float32) + jitter, 0, 255)
    floor = np.clip(np.array(style["floor"], np.float32) + jitter, 0, 255)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    sweep = 1 / (1 + np.exp(-(y - horizon) / 0.035))  # soft cyclorama curve
    img = wall * (1 - sweep[..., None]) + floor * sweep[..., None]
    img = img * (1 - 0.10 * (y - horizon).clip(-1, 0)[..., None] ** 2)
    img = _apply_texture(img, style["texture"], sweep, rng)

    light_x = centre_x + rng.uniform(-0.15, 0.15)
    light_y = max(0.05, top_y - rng.uniform(0.05, 0.2))
    r2 = ((x - light_x) / 0.55) ** 2 + ((y - light_y) / 0.45) ** 2
    img = img * (1 + style["glow"] * np.exp(-r2))[..., None]
    edge = ((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.5
    img = img * (1 - style["vignette"] * edge)[..., None]
    img = img * style["brightness"]
    img[..., 0] += style["warmth"]
    img[..., 2] -= style["warmth"]

    img = img * _contact_shadow(kept, base_y, centre_x, span, top_y, rng)[..., None]
    img += rng.normal(0, 1.6, img.shape).astype(np.float32)  # fine grain against banding
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _apply_texture(img: np.ndarray, texture: str, sweep: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    if texture == "plain":
        return img
    n = _noise((h, w), 6, rng) + 0.5 * _noise((h, w), 18, rng)
    floor_only = sweep[..., None]
    if texture == "marble":
        veins = np.abs(np.sin((np.arange(w)[None, :] * 0.9 + np.arange(h)[:, None] * 0.5)
                              / max(w, h) * 9 + n * 4.0))
        pattern = 1 - 0.22 * (1 - veins) ** 12
        return img * (1 + (pattern[..., None] - 1) * (0.4 + 0.6 * floor_only))
    if texture == "wood":
        grain = np.sin(np.arange(h)[:, None] / h * 140 + n * 6.0)
        return img * (1 + 0.08 * grain[..., None] * floor_only)
    if texture == "sand":
        speck = _noise((h, w), 90, rng)
        return img * (1 + (0.06 * speck + 0.03 * n)[..., None] * floor_only)
    if texture == "moss":
        return img * (1 + 0.18 * n[..., None])
    if texture == "fabric":
        folds = np.sin(np.arange(w)[None, :] / w * 25 + n * 3.0)
        return img * (1 + 0.07 * folds[..., None])
    return img * (1 + 0.07 * n[..., None])  # concrete and anything else


def _contact_shadow(kept: np.ndarray, base_y: float, centre_x: float, span: float,
                    top_y: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative shading: an elliptical contact shadow under the kept region plus
    a soft ambient occlusion around its silhouette."""
    h, w = kept.shape
    shade = np.ones((h, w), np.float32)
    if not kept.any():
        return shade
    blob = np.zeros((h, w), np.float32)
    axes = (max(2, int(span * w * 0.55)), max(2, int((base_y - top_y) * h * 0.07)))
    cv2.ellipse(blob, (int(centre_x * w), int(base_y * h)), axes, 0, 0, 360, 1.0, -1)
    sigma = max(1.0, 0.02 * max(h, w))
    blob = cv2.GaussianBlur(blob, (0, 0), sigma)
    ao = cv2.GaussianBlur(kept.astype(np.float32), (0, 0), 2 * sigma)
    strength = rng.uniform(0.35, 0.5)
    return shade - strength * blob - 0.15 * ao


def _noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth value noise in [-0.5, 0.5] with ``cells`` cells across the long side."""
    h, w = shape
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.random((gh, gw), dtype=np.float32) - 0.5
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in colour)

