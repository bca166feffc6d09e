"""Procedural product scenes: no weights, milliseconds per image.

The prompt names a surface (marble, oak, linen, sand, terrazzo, a picnic blanket...), a
setting (beach, forest, kitchen, night...), an optional podium, the light (direction,
temperature, mood) and sometimes the camera; :func:`parse_style` reads all of it and
says what will be drawn. The engine then builds the scene around the kept region (the
placed product, pixels where ``mask`` is False):

- eye level: a wall or view (the setting) above a horizon set from the product's base,
  and a tabletop below it, its texture warped by a homography so planks and tiles
  converge on a vanishing point; a cylinder or block under the base when asked;
- top-down (a flat lay, or a round silhouette with no flat base): the texture straight
  on, no horizon;
- a contact shadow and a cast shadow pointing away from the light, a side ramp and glow
  toward it, white balance from warm or cool words, contrast and vignette from moody
  ones, and on glossy surfaces a fading reflection of the product flipped below its base.

It is the offline default, a fast preview, and makes clean marketplace images
("on a white background": a seamless sweep).

Why this module is long: the prompt vocabulary and the scene (layout, floor, podium,
shadows, light, reflection) are one pipeline over shared geometry; the texture painters
already live in ``surfaces``.
"""

from __future__ import annotations

import re
import zlib
from typing import Sequence

import cv2
import numpy as np

from .base import ProgressCallback
from .surfaces import SETTINGS, SURFACES, colourise, paint

Colour = tuple[int, int, int]

COLOURS: dict[str, Colour] = {
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

#: Material words → (surface, its colour, a wall that suits it).
SURFACE_WORDS: dict[str, tuple[str, Colour, Colour]] = {
    **dict.fromkeys(("marble", "carrara", "onyx"),
                    ("marble", (236, 234, 230), (228, 226, 222))),
    **dict.fromkeys(("wood", "wooden", "timber", "plank", "planks", "parquet", "table", "desk",
                     "teak", "pine"), ("wood", (160, 116, 78), (215, 205, 190))),
    "oak": ("wood", (178, 134, 92), (215, 195, 165)),
    "walnut": ("wood", (105, 70, 45), (190, 170, 150)),
    **dict.fromkeys(("concrete", "cement"), ("concrete", (150, 150, 148), (170, 170, 168))),
    **dict.fromkeys(("linen", "cotton", "cloth", "fabric", "canvas", "blanket", "silk"),
                    ("linen", (218, 207, 186), (228, 220, 204))),
    **dict.fromkeys(("velvet", "satin"), ("velvet", (95, 25, 45), (75, 22, 38))),
    **dict.fromkeys(("sand", "dune", "dunes"), ("sand", (225, 200, 160), (236, 226, 210))),
    "terrazzo": ("terrazzo", (232, 226, 216), (236, 232, 226)),
    **dict.fromkeys(("paper", "kraft", "cardboard", "parchment"),
                    ("paper", (238, 234, 224), (232, 230, 224))),
    **dict.fromkeys(("picnic", "gingham", "checkered", "chequered", "plaid", "tablecloth"),
                    ("gingham", (196, 44, 48), (226, 232, 222))),
    **dict.fromkeys(("stone", "rock", "rocks", "pebble", "pebbles", "slate", "granite"),
                    ("stone", (140, 135, 125), (175, 170, 160))),
    **dict.fromkeys(("moss", "mossy"), ("moss", (120, 116, 100), (90, 120, 75))),
    **dict.fromkeys(("tile", "tiles", "tiled", "ceramic"),
                    ("tiles", (230, 232, 232), (236, 236, 234))),
    **dict.fromkeys(("water", "pool", "lake"), ("water", (90, 150, 190), (120, 175, 210))),
}

#: Place words → (setting drawn above the horizon, wall colour, surface, floor colour).
SETTING_WORDS: dict[str, tuple[str, Colour, str, Colour]] = {
    **dict.fromkeys(("beach", "seaside", "sea", "ocean", "coast"),
                    ("beach", (120, 175, 225), "sand", (225, 200, 160))),
    "desert": ("desert", (150, 190, 225), "sand", (215, 170, 120)),
    **dict.fromkeys(("forest", "woods", "jungle"),
                    ("foliage", (70, 110, 70), "moss", (110, 104, 90))),
    **dict.fromkeys(("garden", "park", "botanical", "outdoors", "outdoor", "meadow", "picnic"),
                    ("foliage", (150, 190, 130), "moss", (110, 140, 80))),
    **dict.fromkeys(("snow", "winter"), ("snow", (200, 215, 235), "sand", (245, 248, 252))),
    **dict.fromkeys(("mountain", "mountains"),
                    ("mountain", (150, 175, 205), "stone", (120, 115, 105))),
    **dict.fromkeys(("sunset", "dusk"), ("sunset", (245, 160, 110), "plain", (200, 120, 110))),
    **dict.fromkeys(("night", "city"), ("bokeh", (25, 30, 60), "plain", (40, 40, 60))),
    "neon": ("bokeh", (40, 20, 70), "plain", (30, 30, 60)),
    "kitchen": ("tiled", (230, 225, 215), "concrete", (200, 190, 175)),
    "bathroom": ("tiled", (220, 228, 230), "marble", (235, 238, 240)),
    **dict.fromkeys(("studio", "minimal", "minimalist"),
                    ("studio", (236, 236, 236), "plain", (228, 228, 228))),
    "pastel": ("studio", (240, 210, 215), "plain", (205, 230, 220)),
    "playful": ("studio", (250, 215, 120), "plain", (130, 200, 230)),
    "luxury": ("studio", (40, 35, 40), "marble", (90, 75, 55)),
}

#: Light and mood words → (brightness, vignette, glow, temperature -1..1, contrast).
LIGHTS: dict[str, tuple[float, float, float, float, float]] = {
    "morning": (1.06, 0.12, 0.22, 0.25, 1.0), "soft": (1.03, 0.10, 0.18, 0.0, 0.95),
    "bright": (1.10, 0.06, 0.15, 0.0, 1.0), "golden": (1.04, 0.18, 0.30, 1.0, 1.05),
    "warm": (1.02, 0.15, 0.20, 0.8, 1.0), "sunset": (1.0, 0.20, 0.30, 1.0, 1.05),
    "candle": (0.9, 0.30, 0.30, 1.0, 1.1), "candlelight": (0.9, 0.30, 0.30, 1.0, 1.1),
    "cool": (1.00, 0.15, 0.15, -0.8, 1.0), "cold": (0.98, 0.15, 0.12, -0.9, 1.0),
    "overcast": (0.97, 0.10, 0.08, -0.6, 0.9), "moonlight": (0.8, 0.35, 0.2, -1.0, 1.1),
    "dramatic": (0.85, 0.45, 0.35, 0.0, 1.35), "moody": (0.80, 0.40, 0.20, -0.2, 1.3),
    "dark": (0.75, 0.35, 0.15, 0.0, 1.15), "evening": (0.85, 0.30, 0.25, 0.5, 1.1),
    "studio": (1.02, 0.12, 0.20, 0.0, 1.0),
}
_DEFAULT_LIGHT = (1.0, 0.18, 0.18, 0.0, 1.0)
LIGHT_WORDS = {"light", "lighting", "hour", "glow", "sunlight", "lights", "lit"}
#: A colour word followed by one of these paints the wall, or the floor, or the podium.
WALL_WORDS = {"sky", "wall", "walls", "background", "backdrop", "curtain"}
FLOOR_WORDS = {"table", "floor", "surface", "counter", "countertop", "ground", "desk", "shelf",
               "tray", "cloth", "rug", "slab", *SURFACE_WORDS}
PODIUM_WORDS = {"podium": "cylinder", "pedestal": "cylinder", "cylinder": "cylinder",
                "riser": "cylinder", "plinth": "block", "block": "block", "cube": "block"}
GLOSS_WORDS = {"glossy", "gloss", "polished", "acrylic", "mirror", "mirrored", "lacquered",
               "glass", "shiny", "reflective", "wet"}
GLOSSY_SURFACES = {"marble", "tiles", "water"}
MIRROR_WORDS = {"mirror", "mirrored", "acrylic", "glass", "water"}
_TOP_DOWN = re.compile(r"top[- ]?down|flat[- ]?lay|overhead (?:shot|view|photo)|bird'?s[- ]?eye"
                       r"|(?<!light )(?<!lit )(?<!lighting )from above|straight down")
_EYE_LEVEL = re.compile(r"eye[- ]level|side view|front view|straight on|three[- ]quarter")
_PLACEMENT = re.compile(r"\b(on|in|at|beside|under|against|by|inside|near)\b")


class BackdropEngine:
    """Renders procedural scenes. ``steps`` and ``guidance`` are accepted and ignored;
    the seed and the prompt's text vary light position, textures and a small palette
    jitter, so two prompts with the same style words still give different images."""

    name = "backdrop"
    default_steps = 1
    default_guidance = 0.0

    def __call__(self, image: np.ndarray, mask: np.ndarray, prompt: str, *,
                 seeds: Sequence[int], negative_prompt: str = "", steps: int | None = None,
                 guidance: float | None = None, control_image: np.ndarray | None = None,
                 callback: ProgressCallback | None = None, ip_adapter_images=None,
                 ip_adapter_scale: float = 0.6) -> list[np.ndarray]:
        if image.shape[:2] != mask.shape:
            raise ValueError(f"mask {mask.shape} does not match the canvas {image.shape[:2]}")
        style = self.scene(prompt, mask)
        text_key = zlib.crc32(prompt.encode())  # different prompts, different backdrops
        images = []
        for i, seed in enumerate(seeds):
            images.append(_render(image, mask, style, np.random.default_rng([seed, text_key])))
            if callback is not None:
                callback(i + 1, len(seeds))
        return images

    def scene(self, prompt: str, mask: np.ndarray) -> dict:
        """What is drawn for ``prompt`` around this mask: :func:`parse_style` with the
        camera decided (from the silhouette when the prompt does not say)."""
        style = parse_style(prompt)
        if style["camera"] == "auto":
            style["camera"] = "top-down" if silhouette_is_top_down(~mask) else "eye-level"
        return style

    def describe(self) -> dict:
        return {"engine": self.name, "model_id": None}


def parse_style(prompt: str) -> dict:
    """Read what to draw from a prompt (case-insensitive words); the result names it.

    Keys: ``surface`` (a key of ``surfaces.SURFACES``), ``setting`` (of
    ``surfaces.SETTINGS``), ``wall``/``floor`` colours, ``podium`` (None, ``cylinder`` or
    ``block``) with ``podium_surface`` and ``podium_colour``, ``glossy`` and
    ``reflection`` (its strength, 0 when matte), ``light`` (``front``, ``left``,
    ``right``, ``top`` or ``back``), ``window``, ``temperature`` (-1 cool .. 1 warm),
    ``brightness``, ``vignette``, ``glow``, ``contrast``, and ``camera`` (``top-down``,
    ``eye-level``, or ``auto``: decided from the product's silhouette).

    The words before the first placement preposition (" on ", " in ", " at ", ...) name
    the product ("a pair of red sneakers on ...") and are not read. The first material
    word is the surface and the first place word the setting (which also brings a surface
    when none is named: a beach is sand). A material or colour word just before a podium
    word ("white marble plinth") dresses the podium instead. A colour word followed by a
    floor noun colours the floor, one followed by a wall noun the wall; other colours
    fill the wall, then the floor.
    """
    full = prompt.lower()
    match = _PLACEMENT.search(full)
    text = full[match.start():] if match and match.start() > 0 else full
    words = re.findall(r"[a-z]+", text)
    all_words = set(re.findall(r"[a-z]+", full))

    podium = podium_surface = podium_colour = None
    podium_at = next((i for i, word in enumerate(words) if word in PODIUM_WORDS), None)
    before_podium: set[int] = set()
    if podium_at is not None:
        podium = PODIUM_WORDS[words[podium_at]]
        before_podium = set(range(max(0, podium_at - 2), podium_at))
        material = next((SURFACE_WORDS[words[i]] for i in sorted(before_podium)
                         if words[i] in SURFACE_WORDS), None)
        podium_surface = material[0] if material else None
        podium_colour = next((COLOURS[words[i]] for i in sorted(before_podium)
                              if words[i] in COLOURS), material[1] if material else None)

    surfaces = [SURFACE_WORDS[w] for i, w in enumerate(words)
                if w in SURFACE_WORDS and i not in before_podium]
    settings = [SETTING_WORDS[w] for w in words if w in SETTING_WORDS]
    setting, wall, surface, floor = settings[0] if settings else (
        "studio", (236, 236, 236), "plain", (226, 226, 226))
    if surfaces:
        surface, floor = surfaces[0][:2]
        if not settings:
            wall = surfaces[0][2]
    wall, floor = _colour_words(words, before_podium, wall, floor,
                                sweep=not surfaces and not settings)

    glossy = (surface in GLOSSY_SURFACES or bool(all_words & GLOSS_WORDS)) and not (
        all_words & {"matte", "honed"})
    strong = surface == "water" or bool(all_words & MIRROR_WORDS)
    light = [LIGHTS[w] for w in words if w in LIGHTS]
    brightness = float(np.prod([x[0] for x in light])) if light else _DEFAULT_LIGHT[0]
    vignette, glow, contrast = (max(x[i] for x in light) for i in (1, 2, 4)) if light else (
        _DEFAULT_LIGHT[1], _DEFAULT_LIGHT[2], _DEFAULT_LIGHT[4])
    temperature = sum(x[3] for x in light) - (1.0 if "blue hour" in text else 0.0)
    if "blue hour" in text and not light:
        brightness, vignette = 0.9, 0.25
    camera = ("top-down" if _TOP_DOWN.search(full) else
              "eye-level" if _EYE_LEVEL.search(full) else "auto")
    return {
        "surface": surface, "setting": setting, "wall": wall, "floor": floor,
        "podium": podium, "podium_surface": podium_surface or ("plain" if podium else None),
        "podium_colour": podium_colour or (_podium_colour(wall) if podium else None),
        "glossy": glossy, "reflection": (0.55 if strong else 0.32) if glossy else 0.0,
        "light": _light_direction(text), "window": "window" in all_words,
        "temperature": float(np.clip(temperature, -1, 1)), "brightness": brightness,
        "vignette": vignette, "glow": glow, "contrast": contrast, "camera": camera,
    }


def _colour_words(words: list[str], skip: set[int], wall: Colour, floor: Colour,
                  sweep: bool) -> tuple[Colour, Colour]:
    wall_colour = floor_colour = None
    loose = []
    for i, word in enumerate(words):
        if word not in COLOURS or i in skip:
            continue
        if words[i + 1:i + 2] and words[i + 1] in LIGHT_WORDS:
            continue  # "golden light" is lighting, not a surface colour
        following = set(words[i + 1:i + 3])
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
        if floor_colour is None and sweep:
            floor = tuple(int(c * 0.9) for c in wall_colour)
    return wall, floor


def _podium_colour(wall: Colour) -> Colour:
    """An unpainted podium: the wall's hue, lighter."""
    return tuple(int(0.55 * c + 0.45 * 245) for c in wall)


def _light_direction(text: str) -> str:
    words = set(re.findall(r"[a-z]+", text))
    if re.search(r"backlit|back[- ]?light|rim light|against the light|contre[- ]?jour", text):
        return "back"
    if re.search(r"top[- ]?lit|top[- ]light|overhead light|light(?:ing)? from above", text):
        return "top"
    if "left" in words:
        return "left"
    if "right" in words:
        return "right"
    if words & {"window", "side", "sidelight", "sidelit"}:
        return "left"
    return "front"


def silhouette_is_top_down(kept: np.ndarray) -> bool:
    """Whether the kept region looks like a product shot from above.

    Conservative on purpose (a wrong top-down loses the horizon): one blob covering
    0.5-55 % of the canvas, clear of the canvas border, about as wide as tall (0.85-1.18),
    filling its box like an ellipse does (0.72-0.84), and narrowing to a point at both
    top and bottom (its width 5 % from either end under 55 % of its widest) — that is,
    round with no flat base to stand on. Bottles, mugs, shoes and bags have a flat base.
    """
    h, w = kept.shape
    area = int(kept.sum())
    if not 0.005 * h * w <= area <= 0.55 * h * w:
        return False
    count, labels, stats, _ = cv2.connectedComponentsWithStats(kept.astype(np.uint8), 8)
    biggest = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
    x, y, bw, bh, blob_area = stats[biggest]
    if blob_area < 0.9 * area or x == 0 or y == 0 or x + bw >= w or y + bh >= h:
        return False
    if not 0.85 <= bw / bh <= 1.18 or not 0.72 <= blob_area / (bw * bh) <= 0.84:
        return False
    widths = (labels[y:y + bh, x:x + bw] == biggest).sum(axis=1)
    near_ends = widths[[int(0.05 * bh), bh - 1 - int(0.05 * bh)]]
    return bool((near_ends < 0.55 * widths.max()).all())


# --- the scene ---------------------------------------------------------------------------

def _subject(kept: np.ndarray) -> dict | None:
    """Where the product stands: base row, top row, centre and half width (px). None when
    nothing is kept or the kept region is a whole photo (over 55 % of the canvas): then
    there is no product to stage (no podium, cast shadow or reflection)."""
    h, w = kept.shape
    if not kept.any() or kept.mean() > 0.55:
        return None
    ys, xs = np.nonzero(kept)
    x0, x1 = int(xs.min()), int(xs.max())
    return {"base": int(ys.max()), "top": int(ys.min()), "cx": float(xs.mean()),
            "cy": float(ys.mean()), "half": max(1.0, (x1 - x0 + 1) / 2), "x0": x0, "x1": x1}


def _render(image: np.ndarray, mask: np.ndarray, style: dict,
            rng: np.random.Generator) -> np.ndarray:
    h, w = mask.shape
    kept = ~mask
    subject = _subject(kept)
    jitter = rng.normal(0, 5, 3)
    wall = tuple(np.clip(np.array(style["wall"]) + jitter, 0, 255))
    floor = tuple(np.clip(np.array(style["floor"]) + jitter, 0, 255))
    if style["camera"] == "top-down":
        img, shade, horizon = _top_down(style, floor, subject, kept, rng)
    else:
        img, shade, horizon = _eye_level(style, wall, floor, subject, kept, rng)
    gain = _light(style, subject, (h, w), horizon, rng) * shade
    gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    t = style["temperature"]
    balance = np.array([1 + 0.09 * t, 1 + 0.01 * t, 1 - 0.10 * t], np.float32)
    img *= gain[..., None] * balance
    img += np.array([6 * t, 0, -6 * t], np.float32)
    if style["contrast"] != 1.0:
        mid = float(img[::8, ::8].mean())
        img = (img - mid) * style["contrast"] + mid
    if style["reflection"] and subject and style["camera"] == "eye-level" and not style["podium"]:
        _reflect(img, image, kept, subject, style["reflection"])
    img += _grain((h, w), rng)[..., None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _eye_level(style: dict, wall: tuple, floor: tuple, subject: dict | None,
               kept: np.ndarray, rng: np.random.Generator):
    """Wall above, floor in perspective below, podium; returns (image, shade at 1/4
    scale, horizon row)."""
    h, w = kept.shape
    unit = float(max(h, w))
    if subject:
        base, top, cx, half = subject["base"], subject["top"], subject["cx"], subject["half"]
    else:
        base, top, cx, half = int(0.72 * h), int(0.4 * h), w / 2, 0.15 * w
    tall = max(1, base - top)
    podium = _podium_geometry(style, base, tall, cx, half, (h, w)) if subject else None
    ground = podium["bottom"] if podium else base
    horizon = int(np.clip(ground - 0.16 * tall - 0.05 * h, 0.18 * h, 0.9 * h))

    backdrop = SETTINGS[style["setting"]]((horizon, w), wall, unit, rng)
    if style["surface"] == "plain":  # a seamless sweep: no edge between wall and floor
        img = np.empty((h, w, 3), np.float32)
        img[:horizon] = backdrop
        img[horizon:] = backdrop[-1]
        sweep = 1 / (1 + np.exp(-(np.arange(h, dtype=np.float32) - horizon) / (0.035 * h)))
        ground_plane = paint("plain", (h, w), floor, unit, rng)
        img += (ground_plane - img) * sweep[:, None, None]
    else:
        img = np.empty((h, w, 3), np.float32)
        occlusion = 1 - 0.18 * np.exp(-(horizon - np.arange(horizon, dtype=np.float32))
                                      / (0.015 * h))
        img[:horizon] = backdrop * occlusion[:, None, None]
        img[horizon:] = _floor_in_perspective(style["surface"], floor, (h, w), horizon,
                                              ground, cx, unit, rng)
    caster = kept.copy() if subject else None
    body = None
    if podium:
        img, body = _draw_podium(img, style, podium, unit, rng)
        caster |= body
    shade = _shadows(caster, body, subject, podium, ground, style["light"], (h, w), rng)
    return img, shade, horizon


def _floor_in_perspective(surface: str, colour: tuple, shape: tuple[int, int], horizon: int,
                          ground: int, cx: float, unit: float,
                          rng: np.random.Generator) -> np.ndarray:
    """The surface texture drawn flat, then warped by a homography onto the floor rows.

    The plane's edges meet at a vanishing point above the horizon, so what runs into the
    scene converges and what runs across is compressed toward the back. The far part of
    the flat texture is blurred along its depth first (a cheap mip level: no moiré where
    rows crowd together) which also reads as depth of field.
    """
    h, w = shape
    rows = h - horizon
    lift = max(0.22 * h, 0.55 * rows)  # vanishing point above the horizon
    ratio = (rows + lift) / lift  # near width / far width
    vx = w / 2 + 0.25 * (cx - w / 2)
    far = abs(vx - w / 2) + w / 2 + 2
    near = far * ratio
    at_ground = far * (ground - horizon + lift) / lift
    tex_w = int(np.clip(2 * at_ground / 1.3, 0.6 * w, 1.6 * w))
    tex_h = int((rows + lift) * (ratio - 1) * tex_w / (0.55 * 2 * near))
    tex_h = int(np.clip(tex_h, 0.3 * h, 1.3 * h))
    texture = SURFACES[surface]((tex_h, tex_w), colour, unit, rng)
    back = int(0.6 * tex_h)  # rows beyond this are seen about 1:1, no blur needed
    blurred = cv2.GaussianBlur(texture[:back], (0, 0), sigmaX=1.0, sigmaY=3.0)
    depth = (1 - np.arange(back, dtype=np.float32) / back) ** 2
    depth = depth.reshape((back,) + (1,) * (texture.ndim - 1))
    texture[:back] += (blurred - texture[:back]) * depth
    src = np.float32([[0, 0], [tex_w, 0], [tex_w, tex_h], [0, tex_h]])
    dst = np.float32([[vx - far, 0], [vx + far, 0], [vx + near, rows], [vx - near, rows]])
    homography = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(texture, homography, (w, rows), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT_101)
    return colourise(warped, colour)


def _podium_geometry(style: dict, base: int, tall: int, cx: float, half: float,
                     shape: tuple[int, int]) -> dict | None:
    """A podium under the base: top at the base (its top face around it), height about
    half the product's. It may run off the canvas bottom when the product stands low."""
    if not style["podium"]:
        return None
    h, w = shape
    radius = max(1.25 * half, 0.06 * w)
    rim = max(2.0, 0.2 * radius)
    top = base + 0.35 * rim
    height = max(0.5 * tall, 0.08 * h)
    return {"kind": style["podium"], "cx": cx, "radius": radius, "rim": rim, "top": top,
            "bottom": int(min(top + height, h + rim)), "height": height}


def _draw_podium(img: np.ndarray, style: dict, podium: dict, unit: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint the podium (textured, shaded for the light side); returns the image and
    the podium's silhouette (it casts a shadow with the product)."""
    h, w = img.shape[:2]
    cx, r, rim, top, bottom = (podium[k] for k in ("cx", "radius", "rim", "top", "bottom"))
    scale = 16  # sub-pixel precision of cv2's drawing
    centre = lambda y: (int(cx * scale), int(y * scale))
    face = np.zeros((h, w), np.uint8)
    side = np.zeros((h, w), np.uint8)
    if podium["kind"] == "cylinder":
        cv2.ellipse(face, centre(top), (int(r * scale), int(rim * scale)), 0, 0, 360, 255, -1,
                    cv2.LINE_AA, 4)
        cv2.ellipse(side, centre(bottom), (int(r * scale), int(rim * scale)), 0, 0, 180, 255, -1,
                    cv2.LINE_AA, 4)
        cv2.rectangle(side, (int((cx - r) * scale), int(top * scale)),
                      (int((cx + r) * scale), int(bottom * scale)), 255, -1, cv2.LINE_AA, 4)
    else:
        depth = 1.4 * rim
        quad = np.float32([[cx - r, top], [cx + r, top], [cx + 0.86 * r, top - depth],
                           [cx - 0.86 * r, top - depth]]) + [0, depth / 2]
        cv2.fillConvexPoly(face, np.int32(quad * scale), 255, cv2.LINE_AA, 4)
        cv2.rectangle(side, (int((cx - r) * scale), int((top + depth / 2) * scale)),
                      (int((cx + r) * scale), int(bottom * scale)), 255, -1, cv2.LINE_AA, 4)
    side = np.minimum(side, 255 - face)
    x = (np.arange(w, dtype=np.float32) - cx) / r
    turn = {"left": -0.9, "right": 0.9, "back": np.pi}.get(style["light"], 0.0)
    if podium["kind"] == "cylinder":
        angle = np.arcsin(np.clip(x, -1, 1))
        lit = 0.6 + 0.42 * np.clip(np.cos(angle - turn), 0, 1)
    else:
        lit = np.full(w, 0.55 if turn == np.pi else 0.9 - 0.12 * abs(turn), np.float32)
    ys, xs = np.nonzero(side | face)
    box = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
    material = paint(style["podium_surface"], (box[0].stop - box[0].start,
                     box[1].stop - box[1].start), style["podium_colour"], unit * 0.6, rng)
    side_f = side[box].astype(np.float32)[..., None] / 255
    face_f = face[box].astype(np.float32)[..., None] / 255
    img[box] = img[box] * (1 - side_f - face_f) + material * (
        side_f * lit[None, box[1], None] + face_f * 1.05)
    return img, (side > 127) | (face > 127)


def _shadows(caster: np.ndarray | None, body: np.ndarray | None, subject: dict | None,
             podium: dict | None, ground: int, light: str, shape: tuple[int, int],
             rng: np.random.Generator) -> np.ndarray:
    """Multiplicative shading at 1/4 scale: the caster (product and podium) projected on
    the floor away from the light, fading with distance from its footprint, and a dark
    contact ellipse under the base (and under the podium). The podium (``body``) takes
    no cast shadow: it cannot shade itself."""
    h, w = shape
    sh, sw = max(2, h // 4), max(2, w // 4)
    shade = np.ones((sh, sw), np.float32)
    if caster is None or subject is None:
        return shade
    small = cv2.resize(caster.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    g = ground / 4
    sx, sy = {"left": (0.9, 0.15), "right": (-0.9, 0.15), "top": (0.0, 0.06),
              "back": (rng.uniform(-0.2, 0.2), -0.45)}.get(light, (rng.uniform(-0.3, 0.3), 0.3))
    project = np.float32([[1, -sx, sx * g], [0, sy, g * (1 - sy)]])
    cast = cv2.warpAffine(small, project, (sw, sh))
    tall = max(1.0, (ground - subject["top"]) / 4)
    footprint = np.zeros((sh, sw), np.uint8)
    foot_y = min(sh - 1, int(g))
    footprint[max(0, foot_y - 1):foot_y + 1] = small[max(0, foot_y - 1):foot_y + 1] > 0.3
    if not footprint.any():
        footprint[foot_y, int(np.clip(subject["cx"] / 4, 0, sw - 1))] = 1
    distance = cv2.distanceTransform(1 - footprint, cv2.DIST_L2, 3)
    cast = cv2.GaussianBlur(cast, (0, 0), max(0.8, 0.012 * max(sh, sw)))
    cast *= np.exp(-distance / (0.7 * tall))
    if body is not None:
        cast *= 1 - cv2.resize(body.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    contact = np.zeros((sh, sw), np.float32)
    for y, half in [(subject["base"] / 4, subject["half"] / 4)] + (
            [(podium["bottom"] / 4, podium["radius"] / 4)] if podium else []):
        cv2.ellipse(contact, (int(subject["cx"] / 4), int(y)),
                    (max(1, int(half * 1.05)), max(1, int(0.12 * half))), 0, 0, 360, 1.0, -1)
    contact = cv2.GaussianBlur(contact, (0, 0), max(0.6, 0.006 * max(sh, sw)))
    return np.clip(shade - 0.42 * cast - 0.45 * contact, 0.25, 1)


def _top_down(style: dict, floor: tuple, subject: dict | None, kept: np.ndarray,
              rng: np.random.Generator):
    """The surface straight on; a disc under the product for a podium; a drop shadow
    offset away from the light. Returns (image, shade at 1/4 scale, None)."""
    h, w = kept.shape
    unit = float(max(h, w))
    img = paint(style["surface"], (h, w), floor, unit, rng)
    sh, sw = max(2, h // 4), max(2, w // 4)
    shade = np.ones((sh, sw), np.float32)
    if subject is None:
        return img, shade, None
    caster = kept.astype(np.float32)
    disc = None
    if style["podium"]:
        disc = np.zeros((h, w), np.float32)
        radius = 0.62 * max(subject["x1"] - subject["x0"], subject["base"] - subject["top"])
        cv2.circle(disc, (int(subject["cx"]), int(subject["cy"])), int(radius), 1.0, -1,
                   cv2.LINE_AA)
        ys, xs = np.nonzero(disc)
        box = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
        material = paint(style["podium_surface"], disc[box].shape, style["podium_colour"],
                         unit * 0.6, rng)
        rim = cv2.GaussianBlur(disc[box], (0, 0), max(1.0, 0.004 * unit))[..., None]
        img[box] += (material * (0.9 + 0.15 * rim) - img[box]) * disc[box][..., None]
        caster = np.maximum(caster, disc)
    dx, dy = {"left": (1, 0.3), "right": (-1, 0.3), "top": (0, 1), "back": (0, -1)}.get(
        style["light"], (rng.uniform(-0.4, 0.4), 0.8))
    offset = 0.03 * max(sh, sw)
    small = cv2.resize(caster, (sw, sh), interpolation=cv2.INTER_AREA)
    moved = cv2.warpAffine(small, np.float32([[1, 0, dx * offset], [0, 1, dy * offset]]),
                           (sw, sh))
    cast = cv2.GaussianBlur(moved, (0, 0), max(0.8, 0.012 * max(sh, sw)))
    contact = cv2.GaussianBlur(small, (0, 0), max(0.5, 0.004 * max(sh, sw)))
    if disc is not None:  # the podium's own shadow falls outside it; the product's on it
        inside = cv2.resize(disc, (sw, sh), interpolation=cv2.INTER_AREA)
        product = cv2.resize(kept.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
        on_top = cv2.GaussianBlur(product, (0, 0), max(0.5, 0.004 * max(sh, sw)))
        cast, contact = cast * (1 - inside), contact * (1 - inside) + on_top * inside
    return img, np.clip(shade - 0.35 * cast - 0.25 * contact, 0.3, 1), None


def _light(style: dict, subject: dict | None, shape: tuple[int, int], horizon: int | None,
           rng: np.random.Generator) -> np.ndarray:
    """Brightness gain at 1/4 scale: a glow near the light, a ramp across the canvas for
    a side light, a halo behind the product when backlit, window panes on the wall for
    window light, vignette and overall brightness."""
    h, w = shape
    sh, sw = max(2, h // 4), max(2, w // 4)
    y = np.linspace(0, 1, sh, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, sw, dtype=np.float32)[None, :]
    cx = subject["cx"] / w if subject else 0.5
    mid = (subject["top"] + subject["base"]) / 2 / h if subject else 0.45
    top = subject["top"] / h if subject else 0.4
    direction = style["light"]
    lx, ly = {"left": (-0.1, 0.25), "right": (1.1, 0.25), "top": (cx, -0.1),
              "back": (cx, mid)}.get(direction, (cx + rng.uniform(-0.15, 0.15), top - 0.1))
    spread = (0.3, 0.3) if direction == "back" else (0.55, 0.5)
    glow = style["glow"] * (2.5 if direction == "back" else 1.0)
    gain = 1 + glow * np.exp(-((x - lx) / spread[0]) ** 2 - ((y - ly) / spread[1]) ** 2)
    if direction in ("left", "right"):
        ramp = (0.5 - x) if direction == "left" else (x - 0.5)
        gain = gain * (1 + (0.45 if style["window"] else 0.32) * ramp)
    if style["window"] and horizon is not None:
        gain = gain + _window_panes((sh, sw), horizon / h, direction == "right")
    if direction == "back" and horizon is not None:
        gain = gain * (1 - 0.18 * np.clip((y - horizon / h) / max(1e-3, 1 - horizon / h), 0, 1))
    gain = gain * (1 - style["vignette"] * ((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.5)
    gain = gain / max(1.0, float(gain.max()) / 1.1)  # exposed for the highlight: no clipping
    return (gain * style["brightness"]).astype(np.float32)


def _window_panes(shape: tuple[int, int], horizon: float, right: bool) -> np.ndarray:
    """Soft light patches of a four-pane window falling on the wall, on the light side."""
    sh, sw = shape
    panes = np.zeros(shape, np.float32)
    x0, width = (0.08, 0.14) if not right else (0.78, 0.14)
    for col in range(2):
        for row in range(2):
            px = int((x0 + col * width * 1.08) * sw)
            py = int((0.12 + row * 0.22) * horizon * sh)
            cv2.rectangle(panes, (px, py), (px + int(width * sw), py + int(0.2 * horizon * sh)),
                          1.0, -1)
    return 0.22 * cv2.GaussianBlur(panes, (0, 0), max(1.0, 0.02 * max(shape)))


def _reflect(img: np.ndarray, canvas: np.ndarray, kept: np.ndarray, subject: dict,
             strength: float) -> None:
    """Blend the kept region, flipped about its base row, below the base: a reflection
    fading with distance (over 60 % of the product's height), softened a little."""
    h, _ = kept.shape
    base, top = subject["base"], subject["top"]
    length = min(int(0.6 * (base - top + 1)), h - 1 - base)
    if length < 2:
        return
    x0, x1 = subject["x0"], subject["x1"] + 1
    rows = base - np.arange(1, length + 1)
    source = canvas[rows, x0:x1].astype(np.float32)
    alpha = kept[rows, x0:x1].astype(np.float32)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    source = cv2.GaussianBlur(source, (0, 0), 1.2)
    fade = strength * (1 - np.arange(length, dtype=np.float32) / length) ** 1.6
    alpha = (alpha * fade[:, None])[..., None]
    target = img[base + 1:base + 1 + length, x0:x1]
    target += (source - target) * alpha


def _grain(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Fine monochrome grain against banding: a 128-px noise tile repeated."""
    h, w = shape
    tile = rng.normal(0, 1.6, (128, 128)).astype(np.float32)
    return np.tile(tile, (h // 128 + 1, w // 128 + 1))[:h, :w]
