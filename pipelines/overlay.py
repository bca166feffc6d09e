"""Ad copy on a creative: logo, headline and call-to-action, laid out around the product.

A generated background is only half an ad; the copy is the other half. ``compose_copy``
places the brand's logo, a headline (at most two lines) and a CTA button inside the ad
format's safe zone (the parts of the canvas that feeds and stories do not cover with
their own interface, ``SAFE_ZONES``), in the free region beside the product with the most
room — never on the product, which stays bit-identical. Text is shrunk down to a minimum
legible size (``MIN_FONT_FRACTION`` of the canvas' short side) before giving up with an
``InputError``.

Legibility is measured, not assumed: the WCAG 2 contrast ratio between the text colour and
the pixels actually under the text (a low percentile over the text box, so a busy
background is judged by its worst parts, not its mean) must reach 4.5:1. The brand's text
colours are tried in order; when none reaches it, a semi-opaque scrim is drawn behind the
text and the check repeated, up to an opaque panel (against which some colour always
passes: every colour has at least 4.58:1 against black or white).

The copy is drawn on its own RGBA ``layer``, so it can be stored apart from the background
and re-composed (``image`` is exactly the layer composited over the background).

Why this module is long: layout, fitting, contrast and drawing share the geometry of one
plan (the boxes, sizes and padding of each element), and splitting them would pass that
plan through a second module's private API.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InputError
from .placement import KEEP

#: Fractions of the canvas (top, bottom, left, right) that stay free of copy, per format.
#: Stories (9:16) lose the top ~14 % to the profile bar and the bottom ~20 % to the reply
#: field; feed formats only need a margin.
SAFE_ZONES: dict[str, tuple[float, float, float, float]] = {
    "1:1": (0.06, 0.06, 0.06, 0.06),
    "4:5": (0.06, 0.08, 0.06, 0.06),
    "9:16": (0.14, 0.20, 0.06, 0.06),
    "1.91:1": (0.08, 0.08, 0.05, 0.05),
}
#: The margin on every side of a canvas without a format (``"keep"``).
GENERIC_MARGIN = 0.06
#: Smallest text, as a fraction of the canvas' short side (and never below MIN_FONT_PX).
MIN_FONT_FRACTION = 0.035
MIN_FONT_PX = 10
#: Largest headline, as a fraction of the canvas' short side.
MAX_FONT_FRACTION = 0.08
#: CTA text size relative to the headline's.
CTA_SCALE = 0.6
#: Gap kept between the copy and the product, as a fraction of the canvas' short side.
PRODUCT_MARGIN = 0.02
#: WCAG 2 AA contrast ratio for normal text, and the percentile of the per-pixel ratios
#: over a text box that must reach it (5: 95 % of the pixels under the text do).
MIN_CONTRAST = 4.5
CONTRAST_PERCENTILE = 5
#: Opacities of the scrim tried in turn when no text colour reaches MIN_CONTRAST.
SCRIM_OPACITIES = (0.6, 0.75, 0.9, 1.0)
MAX_HEADLINE_LINES = 2

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]
_BLACK: RGB = (0, 0, 0)
_WHITE: RGB = (255, 255, 255)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class TextStyle:
    """The fonts and colours of a brand. ``text_colours`` are candidates in order of
    preference (the brand colour first); ``accent`` fills the CTA button; ``logo`` is an
    RGBA image (HxWx4 uint8) or None."""

    headline_font: Path
    body_font: Path
    text_colours: tuple[RGB, ...]
    accent: RGB
    logo: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self):
        if not self.text_colours:
            raise InputError("a text style needs at least one text colour")
        for colour in (*self.text_colours, self.accent):
            _check_colour(colour)
        if self.logo is not None:
            logo = self.logo
            if not (isinstance(logo, np.ndarray) and logo.dtype == np.uint8 and logo.ndim == 3
                    and logo.shape[2] == 4 and min(logo.shape[:2]) > 0):
                raise InputError("the logo must be an HxWx4 RGBA uint8 array")


@dataclass
class CopyLayout:
    """The background with the copy drawn (``image``), the copy alone (``layer``, RGBA),
    where each element went (``boxes``: x0, y0, x1, y1, exclusive ends), the contrast
    ratio of each text element against what is under it, and whether it needed a scrim
    (the CTA never does: its button is its backing)."""

    image: np.ndarray
    layer: np.ndarray
    boxes: dict[str, Box]
    contrast: dict[str, float]
    scrim: dict[str, bool]

    def as_dict(self) -> dict:
        return {"boxes": {k: [int(v) for v in box] for k, box in self.boxes.items()},
                "contrast": {k: round(float(v), 2) for k, v in self.contrast.items()},
                "scrim": {k: bool(v) for k, v in self.scrim.items()}}


# ------------------------------------------------------------------ colour
def relative_luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2 relative luminance of sRGB colours (..., 3) in 0..255."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def contrast_ratio(a, b) -> np.ndarray:
    """WCAG 2 contrast ratio (1..21) between colours ``a`` and ``b`` (broadcasting)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    return (np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05)


def _worst_contrast(colour: RGB, backing: np.ndarray) -> float:
    """The ratio that 95 % of the backing pixels (N, 3) reach against ``colour``."""
    return float(np.percentile(contrast_ratio(np.array(colour), backing), CONTRAST_PERCENTILE))


# ------------------------------------------------------------------ geometry
def safe_rect(format: str, width: int, height: int) -> Box:
    """The part of a ``width`` x ``height`` canvas of ``format`` where copy may go."""
    if format in SAFE_ZONES:
        top, bottom, left, right = SAFE_ZONES[format]
    elif format == KEEP:
        top = bottom = left = right = GENERIC_MARGIN
    else:
        raise InputError(f"unknown format {format!r}; choose one of: "
                         f"{', '.join([*SAFE_ZONES, KEEP])}")
    # Rounded inwards: a zone kept free is never a pixel short.
    return (math.ceil(left * width), math.ceil(top * height),
            width - math.ceil(right * width), height - math.ceil(bottom * height))


def keep_out(product_mask: np.ndarray) -> np.ndarray:
    """The product mask dilated by ``PRODUCT_MARGIN``: where no copy may be drawn."""
    margin = max(2, round(PRODUCT_MARGIN * min(product_mask.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return cv2.dilate(product_mask.astype(np.uint8), kernel).astype(bool)


def _free_regions(safe: Box, blocked: np.ndarray) -> list[Box]:
    """The rectangles of the safe zone above, below, left and right of the bounding box
    of ``blocked`` (the whole safe zone when nothing is blocked)."""
    sx0, sy0, sx1, sy1 = safe
    ys, xs = np.nonzero(blocked)
    if not len(xs):
        return [safe]
    bx0, by0, bx1, by1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    candidates = [(sx0, sy0, sx1, min(by0, sy1)), (sx0, max(by1, sy0), sx1, sy1),
                  (sx0, sy0, min(bx0, sx1), sy1), (max(bx1, sx0), sy0, sx1, sy1)]
    return [tuple(int(v) for v in r) for r in candidates if r[2] > r[0] and r[3] > r[1]]


# ------------------------------------------------------------------ fitting
@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, size)
    except OSError as exc:
        raise InputError(f"cannot open font {path!r}: {exc}") from None


@dataclass
class _Text:
    """One text element: its lines, font and the box it occupies (padding included)."""

    lines: list[str]
    font: ImageFont.FreeTypeFont
    pad_x: int
    pad_y: int
    width: int = 0
    height: int = 0

    def __post_init__(self):
        ascent, descent = self.font.getmetrics()
        self.line_height = ascent + descent
        self.line_gap = round(0.3 * self.font.size)  # descenders clear of the next line (OCR)
        self.line_widths = [_ink_width(self.font, line) for line in self.lines]
        self.width = max(self.line_widths) + 2 * self.pad_x
        self.height = (len(self.lines) * self.line_height
                       + (len(self.lines) - 1) * self.line_gap + 2 * self.pad_y)


@dataclass
class _Plan:
    size: int
    region: Box
    logo: tuple[int, int] | None  # (width, height)
    headline: _Text | None
    cta: _Text | None
    gap: int

    @property
    def height(self) -> int:
        parts = [p for p in (self.logo and self.logo[1],
                             self.headline and self.headline.height,
                             self.cta and self.cta.height) if p]
        return sum(parts) + self.gap * (len(parts) - 1)

    @property
    def width(self) -> int:
        return max((self.logo[0] if self.logo else 0),
                   (self.headline.width if self.headline else 0),
                   (self.cta.width if self.cta else 0))


def _ink_width(font: ImageFont.FreeTypeFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text, anchor="la")
    return int(math.ceil(right - min(left, 0)))


def _wrap(font: ImageFont.FreeTypeFont, text: str, width: int) -> list[str] | None:
    """``text`` on one line, else split in two lines of most even width, if it fits."""
    if _ink_width(font, text) <= width:
        return [text]
    words = text.split(" ")
    best = None
    for cut in range(1, len(words)):
        lines = [" ".join(words[:cut]), " ".join(words[cut:])]
        widest = max(_ink_width(font, line) for line in lines)
        if widest <= width and (best is None or widest < best[0]):
            best = (widest, lines)
    return best[1] if best else None


def _plan(region: Box, size: int, min_size: int, style: TextStyle, headline: str | None,
          cta: str | None) -> _Plan | None:
    """The layout of the copy at headline size ``size`` in ``region``, or None."""
    width = region[2] - region[0]
    pad = max(2, round(0.35 * size))
    head = None
    if headline is not None:
        font = _font(str(style.headline_font), size)
        lines = _wrap(font, headline, width - 2 * pad)
        if lines is None:
            return None
        head = _Text(lines, font, pad, pad)
    button = None
    if cta is not None:
        cta_size = max(min_size, round(CTA_SCALE * size))
        button = _Text([cta], _font(str(style.body_font), cta_size),
                       round(0.9 * cta_size), round(0.45 * cta_size))
    logo = None
    if style.logo is not None:
        lh, lw = style.logo.shape[:2]
        height = max(min_size, round(1.1 * size))
        logo_width = max(1, round(lw * height / lh))
        if logo_width > width:  # a wide logo: fit the width instead
            logo_width, height = width, max(1, round(lh * width / lw))
        logo = (logo_width, height)
    plan = _Plan(size, region, logo, head, button, round(0.4 * size))
    fits = plan.width <= width and plan.height <= region[3] - region[1]
    return plan if fits else None


def _best_plan(regions: list[Box], min_size: int, max_size: int, style: TextStyle,
               headline: str | None, cta: str | None) -> _Plan | None:
    """The plan with the largest text over all regions (the larger region on a tie);
    the largest size per region by bisection (a smaller size never needs more room)."""
    best = None
    for region in regions:
        plan = _plan(region, min_size, min_size, style, headline, cta)
        if plan is None:
            continue
        low, high = min_size, max_size  # plan(low) fits; find the largest size that fits
        while low < high:
            middle = (low + high + 1) // 2
            trial = _plan(region, middle, min_size, style, headline, cta)
            if trial is None:
                high = middle - 1
            else:
                low, plan = middle, trial
        area = (region[2] - region[0]) * (region[3] - region[1])
        if best is None or (plan.size, area) > (best[0], best[1]):
            best = (plan.size, area, plan)
    return best[2] if best else None


# ------------------------------------------------------------------ drawing
class _Canvas:
    """The copy layer in floating point (straight alpha), drawn element by element."""

    def __init__(self, background: np.ndarray):
        self.background = background.astype(np.float64)
        self.rgb = np.zeros_like(self.background)
        self.alpha = np.zeros(background.shape[:2], np.float64)

    def paint(self, colour, coverage: np.ndarray, box: Box) -> None:
        """Composite ``colour`` (RGB, or an HxWx3 array) with ``coverage`` (0..1) over
        the layer inside ``box`` (Porter-Duff "over", straight alpha)."""
        x0, y0, x1, y1 = box
        a_src = coverage[..., None]
        a_dst = self.alpha[y0:y1, x0:x1, None]
        a_out = a_src + a_dst * (1 - a_src)
        src = np.broadcast_to(np.asarray(colour, np.float64), coverage.shape + (3,))
        mixed = src * a_src + self.rgb[y0:y1, x0:x1] * a_dst * (1 - a_src)
        self.rgb[y0:y1, x0:x1] = np.where(a_out > 0, mixed / np.maximum(a_out, 1e-12), 0)
        self.alpha[y0:y1, x0:x1] = a_out[..., 0]

    def composite(self, box: Box) -> np.ndarray:
        """The background with the layer so far, inside ``box`` (N, 3)."""
        x0, y0, x1, y1 = box
        a = self.alpha[y0:y1, x0:x1, None]
        out = self.background[y0:y1, x0:x1] * (1 - a) + self.rgb[y0:y1, x0:x1] * a
        return out.reshape(-1, 3)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The uint8 RGBA layer and the background with it composited."""
        alpha = np.rint(self.alpha * 255).astype(np.uint8)
        rgb = np.rint(self.rgb).clip(0, 255).astype(np.uint8)
        rgb[alpha == 0] = 0
        layer = np.dstack([rgb, alpha])
        return layer, over(self.background.astype(np.uint8), layer)


def over(background: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """An RGBA ``layer`` (uint8) composited over an RGB ``background`` (uint8)."""
    a = layer[..., 3:4].astype(np.float64) / 255.0
    out = background.astype(np.float64) * (1 - a) + layer[..., :3].astype(np.float64) * a
    return np.rint(out).clip(0, 255).astype(np.uint8)


def _shape_mask(size: tuple[int, int], radius: int) -> np.ndarray:
    """Coverage (0..1) of a rounded rectangle filling ``size`` (width, height), drawn at
    4x and downsampled so its corners are anti-aliased."""
    w, h = size
    big = Image.new("L", (4 * w, 4 * h), 0)
    ImageDraw.Draw(big).rounded_rectangle((0, 0, 4 * w - 1, 4 * h - 1), radius=4 * radius, fill=255)
    return np.asarray(big.resize((w, h), Image.Resampling.BOX), np.float64) / 255.0


def _text_mask(text: _Text) -> tuple[np.ndarray, Box]:
    """Anti-aliased glyph coverage over the element's box, and the ink box inside it
    (relative to the element), centred line by line."""
    w, h = text.width, text.height
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    y = text.pad_y
    for line, line_width in zip(text.lines, text.line_widths):
        left = text.font.getbbox(line, anchor="la")[0]
        draw.text(((w - line_width) // 2 - min(left, 0), y), line, font=text.font, fill=255,
                  anchor="la")
        y += text.line_height + text.line_gap
    inner = (text.pad_x, text.pad_y, w - text.pad_x, h - text.pad_y)
    return np.asarray(mask, np.float64) / 255.0, inner


def _pick_colour(candidates, backing: np.ndarray) -> tuple[RGB, float] | None:
    for colour in candidates:
        ratio = _worst_contrast(colour, backing)
        if ratio >= MIN_CONTRAST:
            return colour, ratio
    return None


def _draw_headline(canvas: _Canvas, text: _Text, box: Box, style: TextStyle) -> tuple[float, bool]:
    coverage, (ix0, iy0, ix1, iy1) = _text_mask(text)
    ink = (box[0] + ix0, box[1] + iy0, box[0] + ix1, box[1] + iy1)
    chosen = _pick_colour(style.text_colours, canvas.composite(ink))
    scrim = chosen is None
    if scrim:
        panel = _shape_mask((text.width, text.height), max(1, text.pad_y))
        under = panel[iy0:iy1, ix0:ix1].reshape(-1, 1)
        backing = canvas.composite(ink)
        for opacity in SCRIM_OPACITIES:
            for colour in style.text_colours:
                shade = max((_BLACK, _WHITE), key=lambda c: float(contrast_ratio(c, colour)))
                covered = backing * (1 - under * opacity) + np.array(shade) * under * opacity
                ratio = _worst_contrast(colour, covered)
                if ratio >= MIN_CONTRAST:
                    canvas.paint(shade, panel * opacity, box)
                    chosen = (colour, ratio)
                    break
            if chosen:
                break
    canvas.paint(chosen[0], coverage, box)
    return chosen[1], scrim


def _draw_cta(canvas: _Canvas, text: _Text, box: Box, style: TextStyle) -> float:
    button = _shape_mask((text.width, text.height), text.height // 2)
    canvas.paint(style.accent, button, box)
    coverage, (ix0, iy0, ix1, iy1) = _text_mask(text)
    backing = canvas.composite((box[0] + ix0, box[1] + iy0, box[0] + ix1, box[1] + iy1))
    # The ink lies inside the opaque pill, and every colour reaches at least 4.58:1
    # against white or black, so one of the candidates always passes.
    colour, ratio = _pick_colour((*style.text_colours, _WHITE, _BLACK), backing)
    canvas.paint(colour, coverage, box)
    return ratio


def _draw_logo(canvas: _Canvas, logo: np.ndarray, size: tuple[int, int], box: Box) -> None:
    resized = np.asarray(Image.fromarray(logo, "RGBA").resize(size, Image.Resampling.LANCZOS))
    canvas.paint(resized[..., :3], resized[..., 3].astype(np.float64) / 255.0, box)


# ------------------------------------------------------------------ entry point
def compose_copy(image: np.ndarray, product_mask: np.ndarray, *, format: str, style: TextStyle,
                 headline: str | None, cta: str | None) -> CopyLayout:
    """Lay the logo, ``headline`` and ``cta`` out on ``image`` (HxWx3 uint8) around the
    product (``product_mask``, HxW, True on product pixels), inside the safe zone of
    ``format`` (a key of ``SAFE_ZONES``, or ``"keep"`` for a generic margin).

    The elements are stacked (logo, headline, CTA) and centred in the free region that
    takes the largest text; an InputError says so when nothing fits at the minimum
    legible size. Product pixels are never drawn on.
    """
    image = _check_image(image)
    mask = _check_mask(product_mask, image.shape[:2])
    if not isinstance(style, TextStyle):
        raise InputError(f"style must be a TextStyle, got {type(style).__name__}")
    headline = _check_text(headline, "headline")
    cta = _check_text(cta, "cta")
    if headline is None and cta is None and style.logo is None:
        raise InputError("nothing to lay out: give a headline, a CTA or a style with a logo")
    height, width = image.shape[:2]
    short = min(height, width)
    safe = safe_rect(format, width, height)
    min_size = max(MIN_FONT_PX, math.ceil(MIN_FONT_FRACTION * short))
    max_size = max(min_size, round(MAX_FONT_FRACTION * short))
    regions = _free_regions(safe, keep_out(mask))
    plan = _best_plan(regions, min_size, max_size, style, headline, cta)
    if plan is None:
        largest = max(((r[2] - r[0], r[3] - r[1]) for r in regions),
                      key=lambda s: s[0] * s[1], default=(0, 0))
        raise InputError(
            f"the copy does not fit beside the product on this {width}x{height} {format} canvas "
            f"at the minimum legible size of {min_size} px (largest free region "
            f"{largest[0]}x{largest[1]} px inside the safe zone): shorten the headline or CTA, "
            "or make the product smaller")

    canvas = _Canvas(image)
    boxes: dict[str, Box] = {}
    contrast: dict[str, float] = {}
    scrim: dict[str, bool] = {}
    rx0, ry0, rx1, ry1 = plan.region
    centre = (rx0 + rx1) // 2
    y = ry0 + (ry1 - ry0 - plan.height) // 2
    for name, element in (("logo", plan.logo), ("headline", plan.headline), ("cta", plan.cta)):
        if element is None:
            continue
        w, h = element if name == "logo" else (element.width, element.height)
        box = (centre - w // 2, y, centre - w // 2 + w, y + h)
        boxes[name] = box
        if name == "logo":
            _draw_logo(canvas, style.logo, (w, h), box)
        elif name == "headline":
            contrast[name], scrim[name] = _draw_headline(canvas, element, box, style)
        else:
            contrast[name], scrim[name] = _draw_cta(canvas, element, box, style), False
        y += h + plan.gap
    layer, composed = canvas.finish()
    return CopyLayout(composed, layer, boxes, contrast, scrim)


# ------------------------------------------------------------------ checks
def _check_image(image) -> np.ndarray:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise InputError("image must be an HxWx3 uint8 RGB array")
    return image


def _check_mask(mask, shape: tuple[int, int]) -> np.ndarray:
    if not (isinstance(mask, np.ndarray) and mask.dtype == bool):
        raise InputError("product_mask must be a boolean array (True on product pixels)")
    if mask.shape != shape:
        raise InputError(f"product_mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                         f"{shape[1]}x{shape[0]}")
    return mask


def _check_text(text, what: str) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise InputError(f"{what} must be text or None, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{what} is empty; pass None to leave it out")
    if _CONTROL.search(text) or text != " ".join(text.split()):
        raise InputError(f"{what} {text!r} must be one line with single spaces and no "
                         "leading or trailing space (the layout wraps it)")
    return text


def _check_colour(colour) -> None:
    if not (isinstance(colour, tuple) and len(colour) == 3
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255
                    for v in colour)):
        raise InputError(f"a colour must be an (r, g, b) tuple of integers 0..255, got {colour!r}")
