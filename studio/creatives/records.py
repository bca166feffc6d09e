"""Published creatives in memory: ``CreativeRecord``, and ``load_creatives`` reading a
creative folder.

A creative folder holds what ``studio render`` publishes (``render.publish``):
``<id>.png``, ``<id>.json`` (manifest) and ``<id>.mask.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import StudioError
from ..files import MAX_TEXT_BYTES, read_bytes


@dataclass
class CreativeRecord:
    """A published creative: its id, product, format, prompt, pixels and product mask."""

    creative_id: str
    product_id: str
    format: str
    prompt: str
    image: np.ndarray
    mask: np.ndarray


def load_creatives(folder) -> list[CreativeRecord]:
    """Every creative under ``folder`` (recursively), sorted by id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudioError(f"creative folder {str(folder)!r} does not exist")
    records = []
    for manifest_path in sorted(folder.rglob("*.json")):
        try:
            manifest = json.loads(read_bytes(manifest_path, "manifest", MAX_TEXT_BYTES).decode())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(manifest, dict) or "manifest_version" not in manifest:
            continue
        image_path = manifest_path.parent / manifest["image"]
        mask_path = manifest_path.parent / manifest["mask"]
        if not (image_path.exists() and mask_path.exists()):
            raise StudioError(f"creative {manifest['id']} lacks its image or mask file")
        records.append(CreativeRecord(
            creative_id=manifest["id"],
            product_id=manifest.get("product_id") or manifest["product"]["name"],
            format=manifest["format"], prompt=manifest["prompt"],
            image=np.asarray(Image.open(image_path).convert("RGB")),
            mask=np.asarray(Image.open(mask_path).convert("L")) > 127))
    if not records:
        raise StudioError(f"no creatives (manifests) found under {str(folder)!r}")
    return records
