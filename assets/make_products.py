"""Draw the bundled sample products (RGBA cut-outs) — made by this project, CC0.

Run ``python assets/make_products.py`` to regenerate ``assets/products/*.png``. Shapes
are drawn at 4x and downsampled, so edges are anti-aliased like a real cut-out; shading
is a simple cylinder/box light model with highlights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 512
SS = 4  # supersampling factor
OUT = Path(__file__).resolve().parent / "products"


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    mask = Image.new("L", (SIZE * SS, SIZE * SS), 0)
    return mask, ImageDraw.Draw(mask)


def _s(*values: float) -> list[float]:
    return [v * SS for v in values]


def _cylinder_shade(width: int, x0: float, x1: float, light: float = 0.35) -> np.ndarray:
    """Brightness across x for a cylinder between x0 and x1, lit from ``light``."""
    x = np.arange(width, dtype=np.float32)
    t = np.clip((x - x0) / max(1.0, x1 - x0), 0, 1)
    normal = np.sin(np.pi * t)
    highlight = np.exp(-((t - light) ** 2) / 0.004)
    return 0.55 + 0.45 * normal + 0.35 * highlight


def _finish(mask: Image.Image, colour: np.ndarray, name: str) -> None:
    alpha = np.asarray(mask.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    rgb = np.clip(colour, 0, 255).astype(np.uint8)
    rgba = np.dstack([rgb, alpha])
    rgba[alpha == 0, :3] = 0
    OUT.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(OUT / f"{name}.png", optimize=True)


def _paint(base: tuple[int, int, int], shade_x: np.ndarray, shade_y: np.ndarray | None = None):
    colour = np.ones((SIZE, SIZE, 3), np.float32) * np.array(base, np.float32)
    colour = colour * shade_x[None, :, None]
    if shade_y is not None:
        colour = colour * shade_y[:, None, None]
    return colour


def bottle() -> None:
    mask, d = _canvas()
    d.rounded_rectangle(_s(176, 190, 336, 460), radius=36 * SS, fill=255)
    d.polygon(_s(186, 200, 326, 200, 290, 130, 222, 130), fill=255)
    d.rectangle(_s(226, 70, 286, 140), fill=255)
    d.rounded_rectangle(_s(220, 52, 292, 84), radius=6 * SS, fill=255)
    colour = _paint((40, 120, 80), _cylinder_shade(SIZE, 176, 336))
    y = np.arange(SIZE)[:, None]
    label = (y > 260) & (y < 380)
    label_colour = _paint((236, 228, 205), _cylinder_shade(SIZE, 176, 336, 0.4) * 0.9 + 0.1)
    colour = np.where(label[..., None], label_colour, colour)
    cap = (y < 86)[..., None]
    colour = np.where(cap, _paint((190, 160, 70), _cylinder_shade(SIZE, 220, 292)), colour)
    stripe = ((y > 300) & (y < 316))[..., None]
    colour = np.where(stripe, _paint((170, 50, 45), _cylinder_shade(SIZE, 176, 336)), colour)
    _finish(mask, colour, "bottle")


def mug() -> None:
    mask, d = _canvas()
    d.rounded_rectangle(_s(136, 170, 336, 420), radius=22 * SS, fill=255)
    d.ellipse(_s(300, 220, 410, 360), fill=255)
    d.ellipse(_s(326, 250, 384, 330), fill=0)
    d.rectangle(_s(300, 235, 336, 345), fill=255)
    colour = _paint((60, 110, 190), _cylinder_shade(SIZE, 136, 336))
    handle = np.zeros((SIZE, SIZE), bool)
    handle[:, 336:] = True
    colour = np.where(handle[..., None], _paint((50, 95, 170), _cylinder_shade(SIZE, 300, 410, 0.3)),
                      colour)
    y = np.arange(SIZE)[:, None]
    rim = ((y > 168) & (y < 182))[..., None]
    colour = np.where(rim, colour * 1.25, colour)
    _finish(mask, colour, "mug")


def sneaker() -> None:
    mask, d = _canvas()
    d.polygon(_s(70, 370, 90, 290, 170, 250, 230, 200, 290, 190, 330, 250, 420, 290,
                 450, 330, 446, 372), fill=255)
    d.rounded_rectangle(_s(60, 360, 456, 404), radius=16 * SS, fill=255)
    x = np.arange(SIZE, dtype=np.float32)
    shade_x = 0.85 + 0.15 * np.cos((x - 230) / 300)
    y = np.arange(SIZE, dtype=np.float32)
    shade_y = 1.05 - 0.25 * np.clip((y - 200) / 200, 0, 1)
    colour = _paint((215, 70, 60), shade_x, shade_y)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    sole = yy > 362
    colour = np.where(sole[..., None], _paint((240, 238, 232), shade_x), colour)
    swoosh = (np.abs(yy - (330 - 0.35 * (xx - 120))) < 9) & (xx > 140) & (xx < 380) & ~sole
    colour = np.where(swoosh[..., None], np.array([245, 245, 240], np.float32), colour)
    for i in range(5):  # laces
        lace = (np.abs(yy - (225 + 14 * i)) < 3) & (np.abs(xx - (250 - 12 * i)) < 30)
        colour = np.where(lace[..., None], np.array([250, 250, 250], np.float32), colour)
    _finish(mask, colour, "sneaker")


def handbag() -> None:
    mask, d = _canvas()
    d.polygon(_s(110, 230, 402, 230, 440, 440, 72, 440), fill=255)
    d.arc(_s(170, 90, 342, 300), 180, 360, fill=255, width=18 * SS)
    colour = _paint((125, 75, 45), _cylinder_shade(SIZE, 72, 440, 0.3) * 0.8 + 0.2)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    flap = (yy > 230) & (yy < 300) & (np.abs(xx - 256) < 150 - (yy - 230) * 0.2)
    colour = np.where(flap[..., None], colour * 0.82, colour)
    clasp = ((xx - 256) ** 2 + (yy - 300) ** 2) < 12 ** 2
    colour = np.where(clasp[..., None], np.array([220, 185, 90], np.float32), colour)
    _finish(mask, colour, "handbag")


def perfume() -> None:
    mask, d = _canvas()
    d.rounded_rectangle(_s(156, 230, 356, 440), radius=28 * SS, fill=255)
    d.rectangle(_s(232, 190, 280, 234), fill=255)
    d.rounded_rectangle(_s(206, 110, 306, 196), radius=10 * SS, fill=255)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    glass = _paint((235, 160, 175), _cylinder_shade(SIZE, 156, 356, 0.3))
    liquid_level = yy > 280
    colour = np.where(liquid_level[..., None], glass * 0.85, glass)
    cap = (yy < 198)[..., None]
    colour = np.where(cap, _paint((30, 30, 34), _cylinder_shade(SIZE, 206, 306, 0.3) * 1.6), colour)
    gold = ((yy >= 190) & (yy < 234))[..., None]
    colour = np.where(gold, _paint((212, 175, 90), _cylinder_shade(SIZE, 232, 280)), colour)
    _finish(mask, colour, "perfume")


def main() -> None:
    for draw in (bottle, mug, sneaker, handbag, perfume):
        draw()


if __name__ == "__main__":
    main()
