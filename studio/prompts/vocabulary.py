"""Prompts, and the vocabularies the template writer composes them from.

Vocabularies of scenes, surfaces, lighting, palettes and styles live in
``assets/prompts/*.yaml`` (``common.yaml`` plus one file per product category).
Categories are names of vocabulary files and are validated before any file is opened
(``catalog.check_category``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..assets import assets_dir
from ..errors import StudioError
from ..files import read_yaml
from ..inputs.catalog import ProductInfo, check_category

SLOTS = ("surface", "scene", "lighting", "palette", "style")
_YAML_SLOTS = {"surface": "surfaces", "scene": "scenes", "lighting": "lighting",
               "palette": "palettes", "style": "styles"}


@dataclass
class Prompt:
    """A scene prompt. ``tags`` name the vocabulary entries (template) or the writer;
    ``source`` is the generator that wrote it; ``fallback`` says why a language-model
    writer fell back to the template, when it did."""

    text: str
    negative_prompt: str
    tags: dict = field(default_factory=dict)
    source: str = "template"
    cluster_id: int | None = None
    fallback: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ vocabulary
@dataclass(frozen=True)
class Vocabulary:
    subject: str  # "a {title}" or "a pair of {title}"
    noun: str  # the product when a prompt is written for the whole category
    entries: dict  # slot -> list of {"text", "keywords"}


def load_vocabulary(category: str, folder: Path | None = None) -> Vocabulary:
    """The vocabulary of a known category (``catalog.check_category``: ``generic`` or a
    ``<category>.yaml`` of ``folder``), merged with ``common.yaml``."""
    folder = Path(folder) if folder is not None else assets_dir() / "prompts"
    check_category(category, folder)
    return _load_vocabulary(str(folder), category)


@lru_cache(maxsize=32)
def _load_vocabulary(folder: str, category: str) -> Vocabulary:
    root = Path(folder)
    common = _read_yaml(root / "common.yaml")
    specific = _read_yaml(root / f"{category}.yaml") if (root / f"{category}.yaml").is_file() else {}
    entries = {}
    for slot, key in _YAML_SLOTS.items():
        merged = list(common.get(key, [])) + list(specific.get(key, []))
        for entry in merged:
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                raise StudioError(f"vocabulary {key} entries need a 'text' ({entry!r})")
        if not merged:
            raise StudioError(f"vocabulary for {category!r} has no {key}")
        entries[slot] = merged
    return Vocabulary(str(specific.get("subject", common.get("subject", "a {title}"))),
                      str(specific.get("noun", common.get("noun", "product"))), entries)


def category_product(category: str, folder: Path | None = None) -> ProductInfo:
    """The product stand-in for prompts written for a whole category (the arms of a
    category's pool are rendered for each of its products)."""
    return ProductInfo(category, category, load_vocabulary(category, folder).noun)


def _read_yaml(path: Path) -> dict:
    data = read_yaml(path, "vocabulary file")
    if not isinstance(data, dict):
        raise StudioError(f"vocabulary file {str(path)!r} must be a mapping")
    return data


def check_n(n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1 or n > 50:
        raise StudioError(f"n must be an integer from 1 to 50, got {n!r}")
