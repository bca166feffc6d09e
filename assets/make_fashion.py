"""Draw the bundled fashion items (RGBA cut-outs) — made by this project, CC0.

Run ``python assets/make_fashion.py`` to regenerate ``assets/fashion/*.png``: tops,
bottoms, shoes and bags in warm and cool colours, for outfit boards and user histories.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE, SS = 256, 4
OUT = Path(__file__).resolve().parent / "fashion"


def _shape(draw_fn) -> Image.Image:
    mask = Image.new("L", (SIZE * SS, SIZE * SS), 0)
    draw_fn(ImageDraw.Draw(mask), lambda *v: [x * SS for x in v])
    return mask.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def _save(name: str, mask: Image.Image, colour, stripes=None) -> None:
    alpha = np.asarray(mask)
    x = np.linspace(0, 1, SIZE)[None, :, None]
    shade = 0.78 + 0.3 * np.sin(np.pi * x) - 0.08 * x
    rgb = np.clip(np.array(colour, np.float32)[None, None] * shade, 0, 255)
    rgb = np.broadcast_to(rgb, (SIZE, SIZE, 3)).copy()
    if stripes is not None:
        rows = (np.arange(SIZE) // 14) % 2 == 0
        rgb[rows] = np.array(stripes, np.float32)
    rgba = np.dstack([rgb.astype(np.uint8), alpha])
    rgba[alpha == 0, :3] = 0
    Image.fromarray(rgba, "RGBA").save(OUT / f"{name}.png", optimize=True)


def tshirt(d, s):
    d.polygon(s(70, 40, 186, 40, 236, 80, 210, 110, 186, 96, 186, 220, 70, 220, 70, 96, 46, 110, 20, 80), fill=255)
    d.ellipse(s(108, 28, 148, 56), fill=0)


def sweater(d, s):
    d.polygon(s(70, 40, 186, 40, 240, 190, 212, 200, 186, 110, 186, 224, 70, 224, 70, 110, 44, 200, 16, 190), fill=255)
    d.ellipse(s(104, 26, 152, 58), fill=0)


def jeans(d, s):
    d.polygon(s(80, 24, 176, 24, 196, 236, 140, 236, 128, 100, 116, 236, 60, 236), fill=255)


def skirt(d, s):
    d.polygon(s(92, 40, 164, 40, 214, 210, 42, 210), fill=255)


def boots(d, s):
    d.polygon(s(60, 40, 110, 40, 110, 170, 176, 180, 190, 220, 60, 220), fill=255)


def tote(d, s):
    d.rectangle(s(50, 90, 206, 230), fill=255)
    d.arc(s(80, 30, 176, 130), 180, 360, fill=255, width=10 * SS)


ITEMS = {
    "top_tshirt_red": (tshirt, (200, 50, 45), None),
    "top_sweater_orange": (sweater, (230, 130, 50), None),
    "top_shirt_blue": (tshirt, (60, 100, 190), (230, 235, 245)),
    "bottom_jeans_blue": (jeans, (50, 80, 140), None),
    "bottom_skirt_beige": (skirt, (215, 195, 160), None),
    "shoes_boots_brown": (boots, (120, 75, 45), None),
    "shoes_boots_teal": (boots, (40, 130, 135), None),
    "bag_tote_mustard": (tote, (220, 170, 60), None),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (draw_fn, colour, stripes) in ITEMS.items():
        _save(name, _shape(draw_fn), colour, stripes)


if __name__ == "__main__":
    main()
