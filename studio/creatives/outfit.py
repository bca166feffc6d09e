"""``studio outfit``: complete an outfit for a user's history, and publish it.

Writes ``<id>.png`` (the generated item on white), ``<id>.board.png`` (the board, fixed
items bit-identical), ``<id>.mask.png`` (the fixed items' mask on the board) and
``<id>.json`` (the manifest: engine, prompt, seed, category, the items' and history's
sha256, palette, metrics, and ``warnings`` — e.g. an empty cell, where nothing was
generated, is a warning with ``status: "warning"``, never a silent success). With a CLIP model configured, DiFashion's CLIP-based personal
similarity (cosine of the item's embedding to the mean history embedding) joins the
colour-histogram metrics.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines import load_product
from pipelines.engines import load_engine, preview_notice
from pipelines.fashion import MIN_ITEM_PRESENCE, build_board, check_category, complete_outfit

from ..files import atomic_files
from .versions import library_versions


def run_outfit(items, category: str, *, history=(), out: Path, engine: str = "auto",
               seed: int = 0, steps: int | None = None, cell: int = 256,
               clip: str | None = None, ip_adapter: bool = False,
               history_weight: float = 0.6, echo=print) -> dict:
    started = time.perf_counter()
    fixed = [load_product(p) for p in items]
    past = [load_product(p) for p in history]
    check_category(category)  # bad inputs fail before the engine loads
    build_board(fixed, cell=cell)
    chosen, notice = load_engine(engine, ip_adapter=ip_adapter)
    preview = preview_notice(chosen, notice)
    if preview:
        echo(preview)
    outfit = complete_outfit(chosen, fixed, category, history=past, seed=seed, steps=steps,
                             cell=cell, history_weight=history_weight)
    metrics = dict(outfit.metrics)
    warnings = []
    if metrics["item_presence"] < MIN_ITEM_PRESENCE:
        warnings.append(f"nothing was generated for {category}: the new cell holds only "
                        f"background (an object covers {metrics['item_presence']:.1%} of it)"
                        + (" — the procedural engine cannot draw items; use the sd engine"
                           if chosen.name == "backdrop" else ""))
    if clip and past:
        from reward.clip import ClipImageEmbedder

        embedder = ClipImageEmbedder(clip)
        item_vector = embedder([outfit.item])[0]
        history_vector = embedder([h.rgb for h in past]).mean(axis=0)
        metrics["clip_personal_similarity"] = float(
            item_vector @ history_vector / (np.linalg.norm(history_vector) or 1.0))
    item_png, board_png, mask_png = _png(outfit.item), _png(outfit.board), _png(outfit.mask)
    creative_id = hashlib.sha256(item_png).hexdigest()[:20]
    manifest = {
        "manifest_version": 1, "id": creative_id, "kind": "outfit",
        "status": "warning" if warnings else "ok",
        "preview": {"procedural": chosen.name == "backdrop", "notice": preview},
        "warnings": warnings,
        "image": f"{creative_id}.png", "board": f"{creative_id}.board.png",
        "mask": f"{creative_id}.mask.png", **chosen.describe(),
        "prompt": outfit.prompt, "seed": seed, "category": category,
        "history_weight": history_weight if ip_adapter else None,
        "item_box": list(outfit.item_box), "palette": outfit.palette,
        "items": [{"name": p.name, "sha256": p.sha256} for p in fixed],
        "history": [{"name": p.name, "sha256": p.sha256} for p in past],
        "metrics": metrics, "timings": {"total_s": round(time.perf_counter() - started, 3)},
        "versions": library_versions(),
    }
    with atomic_files(Path(out)) as files:
        files[manifest["image"]] = item_png
        files[manifest["board"]] = board_png
        files[manifest["mask"]] = mask_png
        files[f"{creative_id}.json"] = json.dumps(manifest, indent=2).encode() + b"\n"
    return manifest


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
