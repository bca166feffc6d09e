"""``studio demo``: the main job on embedded defaults.

For now it renders every bundled sample product for a few built-in prompts in every ad
format and writes a gallery page; later issues grow it into the whole flow (audience,
prompts per cluster, reward model, bandit campaign, report).
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Callable

from pipelines import load_product
from pipelines.engines import load_engine

from .assets import sample_products
from .files import write_atomic
from .progress import item_progress
from .render import RenderOptions, prepare, publish, render

DEMO_PROMPTS = (
    "on a white marble table, soft morning light, minimal studio",
    "on a rustic oak table in a cozy kitchen, warm golden light",
    "on sand at a sunny beach, turquoise sky, bright summer light",
)


def run_demo(out: Path, *, engine: str = "auto", formats: list[str], seed: int = 0,
             echo: Callable[[str], None] = print) -> dict:
    """Render the sample products × demo prompts × formats into ``out``; return a summary."""
    started = time.perf_counter()
    products = [load_product(path) for path in sample_products()]
    chosen, notice = load_engine(engine)
    if notice:
        echo(notice)
    jobs = [(p, prompt, fmt) for p in products for prompt in DEMO_PROMPTS for fmt in formats]
    rows = []
    for product, prompt, fmt in item_progress(jobs, f"demo ({chosen.name})", unit="creative"):
        options = RenderOptions(prompt=prompt, format=fmt, seed=seed, anchor="bottom")
        placed = prepare(product, options)
        for creative in render(placed, options, chosen):
            folder = out / product.name
            manifest = publish(creative, placed, product, options, chosen, folder)
            rows.append((product.name, prompt, fmt, folder / manifest["image"], manifest))
    gallery = out / "index.html"
    write_atomic(gallery, _gallery_html(rows, out, chosen.name).encode())
    echo(f"{len(rows)} creatives in {out}/<product>/, gallery: {gallery}")
    return {"out": str(out), "gallery": str(gallery), "creatives": len(rows),
            "engine": chosen.name, "seconds": round(time.perf_counter() - started, 1)}


def _gallery_html(rows, out: Path, engine: str) -> str:
    cells = []
    for name, prompt, fmt, path, manifest in rows:
        rel = path.relative_to(out).as_posix()
        caption = (f"{html.escape(name)} · {html.escape(fmt)} · seed {manifest['seed']}<br>"
                   f"expansion {manifest['scores']['expansion']:.3f} · "
                   f"watermark {html.escape(manifest['watermark']['status'])}")
        cells.append(f'<figure><a href="{rel}"><img src="{rel}" alt="{html.escape(prompt)}">'
                     f'</a><figcaption>{caption}<br><i>{html.escape(prompt)}</i>'
                     f"</figcaption></figure>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Creative Studio demo</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;background:#fafafa}}
main{{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}}
figure{{margin:0;width:240px;background:#fff;padding:.5rem;box-shadow:0 1px 3px #0002}}
img{{max-width:100%;max-height:260px;display:block;margin:auto}}
figcaption{{font-size:12px;color:#444}}</style></head>
<body><h1>Creative Studio demo</h1>
<p>{len(rows)} creatives rendered with the <b>{html.escape(engine)}</b> engine.
Each image has a manifest (<code>.json</code>) and its product mask (<code>.mask.png</code>)
beside it; the product pixels are exactly those of the placed product.</p>
<main>{''.join(cells)}</main></body></html>
"""
