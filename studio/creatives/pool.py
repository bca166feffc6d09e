"""A pool of creatives rendered in memory: products × clusters × prompts × formats.

The batch job publishes its pool to the store; the reward benchmark and the demo use it
directly. One prompt writer, one engine, one render path (``studio.creatives.render``).
"""

from __future__ import annotations

from pathlib import Path

from pipelines import load_product
from pipelines.engines import Engine

from ..inputs.audience import Audience
from ..inputs.catalog import ProductInfo, load_catalog
from ..progress import item_progress
from .records import CreativeRecord
from .render import RenderOptions, prepare, publish, render


def render_pool(catalog_path: Path, audience: Audience, generator, engine: Engine, *,
                formats=("1:1",), prompts_per_cluster: int = 4, size: str | None = None,
                seed: int = 0, out: Path | None = None,
                watermark: bool = False) -> list[CreativeRecord]:
    """Render every catalog product for every cluster's prompts in every format.

    With ``out``, every creative is also published there (``out/<product_id>/``, as
    ``studio render`` does) and its record carries the published id.
    """
    catalog = load_catalog(catalog_path)
    jobs = []
    for row in catalog.itertuples():
        info = ProductInfo(row.product_id, row.category, row.title)
        product = load_product(row.image, name=row.product_id)
        for cluster in audience.clusters_:
            for prompt in generator.generate(info, cluster, prompts_per_cluster, seed):
                for fmt in formats:
                    jobs.append((row.product_id, product, prompt, fmt))
    records = []
    for product_id, product, prompt, fmt in item_progress(jobs, f"render ({engine.name})", "creative"):
        options = RenderOptions(prompt=prompt.text, negative_prompt=prompt.negative_prompt,
                                format=fmt, size=size, seed=seed, anchor="bottom",
                                watermark=watermark)
        placed = prepare(product, options)
        creative = render(placed, options, engine)[0]
        creative_id = f"{product_id}-c{prompt.cluster_id}-{len(records):04d}-{fmt}"
        if out is not None:
            creative_id = publish(creative, placed, product, options, engine,
                                  Path(out) / product_id)["id"]
        records.append(CreativeRecord(
            creative_id=creative_id,
            product_id=product_id, format=fmt, prompt=prompt.text,
            image=creative.image, mask=placed.mask))
    return records
