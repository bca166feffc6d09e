"""The demo's ad panel: what each cluster is served, as an ad a marketer could ship.

For every (cluster, product), the arm the campaign's service rates best at the cluster's
centroid is re-rendered from its prompt and seed at a platform preset (``feed-4:5``,
1080×1350), with a headline and a call to action written for the cluster (the template
copy writer, in the example brand kit's tone) laid over it off the product, and read back
with OCR. The creatives go to ``OUT/panel/`` (each with its manifest, background and copy
layer), a contact sheet to ``OUT/panel.png``; the report states how many read back exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PIL import Image

from pipelines import load_product
from pipelines.engines import load_engine
from pipelines.presets import get_preset

from ..creatives.render import RenderOptions, prepare_with_copy_room, publish, render
from ..inputs.brand import BrandKit
from ..inputs.catalog import ProductInfo, load_catalog
from ..progress import item_progress
from ..prompts.copy import make_copy_writer
from ..serving.service import SelectionService

PANEL_PRESET = "feed-4:5"


def write_panel(out: Path, service: SelectionService, best: dict, catalog: Path, *,
                engine: str, seed: int = 0, preset: str = PANEL_PRESET,
                echo: Callable[[str], None] = print) -> dict:
    """Render the panel of ``best`` (cluster -> product -> (arm, mean)) into ``out/panel``.

    Returns ``{"preset", "creatives", "ocr_match", "sheet", "items": [...]}`` where each
    item names the cluster, product, creative file, copy and whether it read back."""
    out = Path(out)
    chosen, _ = load_engine(engine)
    brand = BrandKit.default()
    writer = make_copy_writer("template", brand=brand)
    products = {row.product_id: row for row in load_catalog(catalog).itertuples()}
    manifests = {c["creative_id"]: c["manifest"] for c in service.store.creatives()}
    placement = sorted({fmt for (_, _, fmt) in service.creatives})[0]
    jobs = [(cluster_id, product_id, arm_id)
            for cluster_id, by_product in sorted(best.items())
            for product_id, (arm_id, _) in sorted(by_product.items())
            if service.creative_of(product_id, arm_id, placement) in manifests]
    items = []
    for cluster_id, product_id, arm_id in item_progress(jobs, f"ad panel ({preset})", "ad"):
        row = products[product_id]
        source = manifests[service.creative_of(product_id, arm_id, placement)]
        cluster = service.clusters[cluster_id]
        copy = writer.write(ProductInfo(product_id, row.category, row.title), cluster, 1,
                            seed)[0]
        options = RenderOptions(prompt=source["prompt"],
                                negative_prompt=source["negative_prompt"], preset=preset,
                                seed=source["seed"], anchor="bottom", copy=copy,
                                brand=brand)
        product = load_product(row.image, name=product_id)
        placed, options = prepare_with_copy_room(product, options)
        manifest = publish(render(placed, options, chosen)[0], placed, product, options,
                           chosen, out / "panel")
        items.append({"cluster_id": cluster_id, "cluster": cluster.name,
                      "product_id": product_id, "image": f"panel/{manifest['image']}",
                      "headline": copy.headline, "cta": copy.cta,
                      "ocr_match": manifest["copy"]["ocr_match"],
                      "read": manifest["copy"]["read"]})
    sheet = out / "panel.png"
    _contact_sheet([out / item["image"] for item in items],
                   max(1, len(service.products)), sheet)
    matched = sum(item["ocr_match"] for item in items)
    if items:
        echo(f"ad panel: {len(items)} creatives at {preset}; OCR read the copy back exactly "
             f"on {matched} ({matched / len(items):.0%})")
    return {"preset": get_preset(preset).describe(), "creatives": len(items),
            "ocr_match": matched, "sheet": sheet.name, "items": items}


def _contact_sheet(paths: list[Path], columns: int, path: Path, width: int = 216) -> None:
    """Thumbnails at their own aspect ratio, ``columns`` per row."""
    thumbs = []
    for image_path in paths:
        with Image.open(image_path) as image:
            thumb = image.convert("RGB")
            thumb.thumbnail((width, width * 2))
            thumbs.append(thumb)
    height = max((t.height for t in thumbs), default=width)
    rows = max(1, -(-len(thumbs) // columns))
    sheet = Image.new("RGB", (columns * (width + 8) + 8, rows * (height + 8) + 8), "white")
    for i, thumb in enumerate(thumbs):
        sheet.paste(thumb, (8 + (i % columns) * (width + 8), 8 + (i // columns) * (height + 8)))
    sheet.save(path)
