"""Personalised outfit completion with the seller's items fixed (after DiFashion, SIGIR'24).

DiFashion generates an item for an outfit from three conditions: a *category* prompt, the
*mutual* condition (the other items of the outfit) and the *history* condition (the user's
past items of that category). Here:

- the **outfit board** is a white canvas laid out as a grid of cells; the seller's fixed
  items (1–3) are placed in their cells and the target cell is masked, so inpainting
  fills it with the other items in view — the mutual condition is the visual context;
- the **category** prompt is DiFashion's "A photo of a {category}, on white background";
- the **history** condition becomes words: the dominant colours and the style (light or
  dark, muted or vivid) measured from the history images are added to the prompt. With an
  IP-Adapter configured on a diffusers pipeline, the history (and optionally the fixed
  items) can also go in as image embeddings with a weight per condition
  (``ip_adapter_images`` / ``ip_adapter_scale`` of ``OutfitRequest``).

The fixed items are pasted back last (bit-identical); the generated item is cropped from
the target cell onto white. Metrics without CLIP: colour-histogram similarity of the
generated item to the history (personalisation) and to the fixed items (compatibility).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .compositing import composite, generation_mask, keep_weights
from .engines.backdrop import COLOURS
from .engines.base import Engine
from .errors import InputError
from .placement import PlacedProduct
from .product import MASK_THRESHOLD, Product

#: Garment categories the board knows (DiFashion's are finer; these cover the sample items).
CATEGORIES = ("top", "bottom", "shoes", "bag", "outerwear", "accessory", "dress")
_NOUNS = {"shoes": "pair of shoes", "bottom": "pair of trousers", "outerwear": "jacket"}
CATEGORY_PROMPT = "A photo of a {noun}, on white background"
WHITE = 255


@dataclass(frozen=True)
class OutfitBoard:
    """The board: canvas, which cell is the target, and where every cell is."""

    placed: PlacedProduct
    cells: list  # (x0, y0, x1, y1) per cell
    target: int


@dataclass
class Outfit:
    board: np.ndarray  # the finished board (fixed items bit-identical)
    mask: np.ndarray  # the fixed items on the board (uint8, 255 = fixed)
    item: np.ndarray  # the generated item, cropped from the target cell onto white
    item_box: tuple
    prompt: str
    palette: list
    metrics: dict = field(default_factory=dict)


def layout(n_cells: int, cell: int) -> tuple[int, int, list]:
    """Grid (columns, rows, cell boxes) for ``n_cells``: 2 → 2x1, 3–4 → 2x2."""
    columns = 2 if n_cells > 1 else 1
    rows = (n_cells + columns - 1) // columns
    boxes = [((i % columns) * cell, (i // columns) * cell,
              (i % columns + 1) * cell, (i // columns + 1) * cell) for i in range(n_cells)]
    return columns, rows, boxes


def build_board(items: list[Product], *, cell: int = 256, margin: float = 0.1) -> OutfitBoard:
    """Place 1–3 fixed items in cells of a white board; the next cell is the target."""
    if not items:
        raise InputError("an outfit needs at least one fixed item")
    if len(items) > 3:
        raise InputError(f"{len(items)} fixed items do not fit: the board has room for 3 "
                         "items and the target")
    if cell % 8 or cell < 64:
        raise InputError(f"cell size must be a multiple of 8 and at least 64, got {cell}")
    columns, rows, cells = layout(len(items) + 1, cell)
    width, height = columns * cell, rows * cell
    rgb = np.full((height, width, 3), WHITE, np.uint8)
    alpha = np.zeros((height, width), np.uint8)
    for item, (x0, y0, x1, y1) in zip(items, cells):
        item_rgb, item_alpha = _fit(item, cell, margin)
        h, w = item_alpha.shape
        ox, oy = x0 + (cell - w) // 2, y0 + (cell - h) // 2
        weight = item_alpha[..., None].astype(np.float32) / 255.0
        region = rgb[oy:oy + h, ox:ox + w].astype(np.float32)
        rgb[oy:oy + h, ox:ox + w] = np.rint(item_rgb * weight + region * (1 - weight)).astype(np.uint8)
        alpha[oy:oy + h, ox:ox + w] = item_alpha
    target = len(items)
    tx0, ty0, tx1, ty1 = cells[target]
    kept = np.ones((height, width), bool)
    kept[ty0:ty1, tx0:tx1] = False
    ys, xs = np.nonzero(alpha >= MASK_THRESHOLD)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    placed = PlacedProduct(rgb, np.where(alpha >= MASK_THRESHOLD, 255, 0).astype(np.uint8),
                           kept, box, 1.0, f"outfit-{columns}x{rows}", "file")
    return OutfitBoard(placed, cells, target)


def _fit(item: Product, cell: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The item's bounding box scaled to fit inside a cell with a margin."""
    x0, y0, x1, y1 = item.bbox
    rgb, alpha = item.rgb[y0:y1, x0:x1], item.alpha[y0:y1, x0:x1]
    scale = (1 - 2 * margin) * cell / max(x1 - x0, y1 - y0)
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, size, interpolation=interp), cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)


def history_palette(history: list[Product], n_colours: int = 2) -> tuple[list, list]:
    """(colour names, style words) of the history items' own pixels."""
    if not history:
        return [], []
    pixels = np.concatenate([h.rgb[h.mask] for h in history]).astype(np.float32)
    pixels = pixels[np.random.default_rng(0).permutation(len(pixels))[:20_000]]
    k = min(4, len(pixels))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(pixels, k, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    order = np.argsort(-np.bincount(labels.ravel(), minlength=k))
    names = []
    for centre in centres[order]:
        name = nearest_colour_name(centre)
        if name not in names:
            names.append(name)
    hsv = cv2.cvtColor(pixels[None].astype(np.uint8), cv2.COLOR_RGB2HSV)[0].astype(np.float32)
    style = ["light" if hsv[:, 2].mean() > 170 else "dark" if hsv[:, 2].mean() < 90 else "",
             "vivid" if hsv[:, 1].mean() > 140 else "muted" if hsv[:, 1].mean() < 60 else ""]
    return names[:n_colours], [s for s in style if s]


def nearest_colour_name(rgb) -> str:
    """The closest named colour of the studio palette (Lab distance)."""
    names = list(COLOURS)
    table = np.array([COLOURS[n] for n in names], np.uint8)[None]
    lab = cv2.cvtColor(table, cv2.COLOR_RGB2LAB)[0].astype(np.float32)
    target = cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(1, 1, 3), cv2.COLOR_RGB2LAB)[0, 0]
    return names[int(np.linalg.norm(lab - target.astype(np.float32), axis=1).argmin())]


def outfit_prompt(category: str, colours: list, style: list) -> str:
    """DiFashion's category prompt plus the history condition in words."""
    check_category(category)
    prompt = CATEGORY_PROMPT.format(noun=_NOUNS.get(category, category))
    if colours:
        prompt += ", in " + " and ".join(colours)
    if style:
        prompt += ", " + " ".join(style) + " style"
    return prompt + ", matching the outfit"


def check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}; choose one of: {', '.join(CATEGORIES)}")


def complete_outfit(engine: Engine, items: list[Product], category: str, *,
                    history: list[Product] = (), seed: int = 0, steps: int | None = None,
                    guidance: float | None = None, cell: int = 256,
                    history_weight: float = 0.6,
                    negative_prompt: str = "blurry, low quality, text, watermark, person, "
                                           "mannequin, multiple items") -> Outfit:
    """Generate the target item of the board; the fixed items stay bit-identical."""
    check_category(category)
    board = build_board(list(items), cell=cell)
    colours, style = history_palette(list(history))
    prompt = outfit_prompt(category, colours, style)
    placed = board.placed
    weights = keep_weights(placed, "outpaint", feather=max(2, cell // 64))
    extra = {}
    if getattr(engine, "ip_adapter", None) and history:
        # The history condition also as image embeddings, weighted by history_weight.
        extra = {"ip_adapter_images": [_on_white(h) for h in history],
                 "ip_adapter_scale": history_weight}
    generated = engine(placed.rgb.copy(), generation_mask(weights), prompt, seeds=[seed],
                       negative_prompt=negative_prompt, steps=steps, guidance=guidance,
                       **extra)[0]
    image = composite(generated, placed, weights)
    x0, y0, x1, y1 = board.cells[board.target]
    item = image[y0:y1, x0:x1].copy()
    metrics = {
        "personalisation": colour_similarity(item, [h.rgb[h.mask] for h in history])
        if history else None,
        "compatibility": colour_similarity(item, [i.rgb[i.mask] for i in items]),
        "item_presence": item_presence(item),
    }
    return Outfit(image, placed.alpha, item, (x0, y0, x1, y1), prompt, colours, metrics)


#: Below this fraction of its cell, a generated item counts as missing (an empty cell).
MIN_ITEM_PRESENCE = 0.03


def item_presence(cell: np.ndarray, *, threshold: float = 28.0) -> float:
    """The fraction of a generated cell covered by its largest object: pixels that stand
    out from a smooth background, in one connected region.

    The background is predicted twice from the cell's border: each row interpolated
    between its left and right ends, and each column between its top and bottom ends (a
    plain colour, a gradient, a wall meeting a floor are all background to one of them).
    Pixels further than ``threshold`` (RGB distance) from both predictions are foreground.
    An empty cell — nothing but background, what a procedural engine draws — scores
    near 0.
    """
    pixels = cell.astype(np.float32)
    h, w = pixels.shape[:2]
    band = max(1, min(h, w) // 32)
    t = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    left, right = pixels[:, :band].mean(1, keepdims=True), pixels[:, -band:].mean(1, keepdims=True)
    by_rows = left + (right - left) * t
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, bottom = pixels[:band].mean(0, keepdims=True), pixels[-band:].mean(0, keepdims=True)
    by_columns = top + (bottom - top) * t
    distance = np.minimum(np.linalg.norm(pixels - by_rows, axis=-1),
                          np.linalg.norm(pixels - by_columns, axis=-1))
    foreground = (distance > threshold).astype(np.uint8)
    foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    largest = stats[1:, cv2.CC_STAT_AREA].max() if count > 1 else 0
    return round(float(largest) / (h * w), 4)


def _on_white(item: Product) -> np.ndarray:
    weight = item.alpha[..., None].astype(np.float32) / 255.0
    return np.rint(item.rgb * weight + WHITE * (1 - weight)).astype(np.uint8)


def colour_similarity(item: np.ndarray, references: list[np.ndarray]) -> float:
    """Histogram intersection (0..1) of the item's coloured pixels (near-white and grey
    background left out) against the reference pixels, in an 8x4x4 HSV histogram."""
    pixels = item.reshape(-1, 3).astype(np.int16)
    spread = pixels.max(axis=1) - pixels.min(axis=1)
    pixels = pixels[~((pixels.min(axis=1) > 190) & (spread < 40))].astype(np.uint8)
    if not len(pixels) or not references:
        return 0.0
    reference = np.concatenate([np.asarray(r).reshape(-1, 3) for r in references])
    a, b = _histogram(pixels), _histogram(reference)
    return float(np.minimum(a, b).sum())


def _histogram(pixels: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(pixels.reshape(1, -1, 3).astype(np.uint8), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return hist / max(hist.sum(), 1.0)
