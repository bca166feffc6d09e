"""Draw the example brand's logo (``assets/brand/logo.png``) — made by this project, CC0.

Run ``python assets/brand/make_logo.py`` to regenerate it. Like ``assets/make_products.py``
the shapes are drawn at 4x and downsampled, so the edges are anti-aliased: a navy
roundel with two orange peaks and a white sun, on a transparent background.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
SS = 4  # supersampling factor
OUT = Path(__file__).resolve().parent / "logo.png"
NAVY = (31, 58, 95, 255)
ORANGE = (224, 122, 46, 255)
WHITE = (255, 255, 255, 255)


def _s(*values: float) -> list[float]:
    return [v * SS for v in values]


def main() -> None:
    image = Image.new("RGBA", (SIZE * SS, SIZE * SS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse(_s(8, 8, 248, 248), fill=NAVY)
    draw.ellipse(_s(150, 58, 194, 102), fill=WHITE)
    draw.polygon(_s(40, 190, 104, 82, 168, 190), fill=ORANGE)
    draw.polygon(_s(112, 190, 160, 116, 216, 190), fill=ORANGE)
    draw.rectangle(_s(40, 188, 216, 196), fill=ORANGE)
    image.resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(OUT, optimize=True)


if __name__ == "__main__":
    main()
