"""Product catalogs: CSV rows of product_id, image, category, title.

The demo catalog ``assets/demo/catalog.csv`` lists the bundled sample products; a product
image that appears in it gets its category and title from there.

A category names a vocabulary file (``assets/prompts/<category>.yaml``), so it is
validated wherever it enters (command line, catalog CSV, UI, API): it must match
``^[a-z0-9_-]+$`` and be one of ``categories()`` — ``generic`` (the common vocabulary
only) or a vocabulary file of the folder.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..assets import assets_dir
from ..errors import StudioError
from ..files import MAX_TABLE_BYTES, read_bytes

COLUMNS = ("product_id", "image", "category", "title")
#: The category of products without a vocabulary file of their own: common.yaml only.
GENERIC = "generic"
CATEGORY_PATTERN = re.compile(r"[a-z0-9_-]+")


def categories(folder: Path | None = None) -> list[str]:
    """The known categories: ``generic`` and every vocabulary file of ``folder`` (default
    ``assets/prompts``) but ``common.yaml``."""
    folder = Path(folder) if folder is not None else assets_dir() / "prompts"
    names = sorted(p.stem for p in folder.glob("*.yaml")
                   if p.stem != "common" and CATEGORY_PATTERN.fullmatch(p.stem) and p.is_file())
    return [GENERIC, *names]


def check_category(category, folder: Path | None = None) -> str:
    """``category`` when it is a known category name, else a StudioError (a name like
    ``../../x`` never reaches a path)."""
    if not isinstance(category, str) or not CATEGORY_PATTERN.fullmatch(category):
        shown = repr(category) if len(repr(category)) <= 60 else repr(category)[:57] + "..."
        raise StudioError(f"category {shown} is not a category name: use lower-case letters, "
                          "digits, '_' and '-'")
    known = categories(folder)
    if category not in known:
        raise StudioError(f"unknown category {category!r}; choose one of: {', '.join(known)} "
                          "(or add a vocabulary file of that name)")
    return category


@dataclass(frozen=True)
class ProductInfo:
    """What prompt writers know about a product: its id, category and title."""

    name: str
    category: str = "generic"
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or self.name


def load_catalog(path, *, vocabulary_dir: Path | None = None) -> pd.DataFrame:
    """Read and validate a catalog CSV (at most ``MAX_TABLE_BYTES``; every category known
    to ``vocabulary_dir``); image paths are resolved against the CSV's folder, then the
    repository root (for the demo catalog)."""
    path = Path(path)
    data = read_bytes(path, "catalog", MAX_TABLE_BYTES)
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise StudioError(f"cannot read catalog {str(path)!r}: {exc}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise StudioError(f"catalog {str(path)!r} lacks columns: {', '.join(missing)}")
    if frame.empty:
        raise StudioError(f"catalog {str(path)!r} is empty")
    duplicated = frame["product_id"][frame["product_id"].duplicated()].unique()
    if len(duplicated):
        raise StudioError(f"catalog {str(path)!r} repeats product_id {duplicated[0]!r}")
    for number, category in enumerate(frame["category"], start=2):
        try:
            check_category(category, vocabulary_dir)
        except StudioError as exc:
            raise StudioError(f"catalog {str(path)!r} line {number}: {exc}") from None
    frame["image"] = [str(_resolve(path.parent, image)) for image in frame["image"]]
    return frame


def product_info(image: Path, *, category: str | None = None, title: str | None = None) -> ProductInfo:
    """ProductInfo for an image: explicit values win, then the demo catalog, then the
    file name (category ``generic``)."""
    name = Path(image).stem
    row = None
    demo = assets_dir() / "demo" / "catalog.csv"
    if demo.exists():
        catalog = load_catalog(demo)
        matches = catalog[[Path(p).resolve() == Path(image).resolve() for p in catalog["image"]]]
        row = matches.iloc[0] if len(matches) else None
    return ProductInfo(
        name=str(row["product_id"]) if row is not None else name,
        category=check_category(category) if category is not None else
        (str(row["category"]) if row is not None else GENERIC),
        title=title or (str(row["title"]) if row is not None else name.replace("_", " ")),
    )


def _resolve(folder: Path, image: str) -> Path:
    candidate = Path(image)
    if candidate.is_absolute():
        return candidate
    for base in (folder, assets_dir().parent):
        if (base / candidate).exists():
            return (base / candidate).resolve()
    return (folder / candidate).resolve()
