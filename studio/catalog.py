"""Product catalogs: CSV rows of product_id, image, category, title.

The demo catalog ``assets/demo/catalog.csv`` lists the bundled sample products; a product
image that appears in it gets its category and title from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .assets import assets_dir
from .errors import StudioError

COLUMNS = ("product_id", "image", "category", "title")


@dataclass(frozen=True)
class ProductInfo:
    """What prompt writers know about a product: its id, category and title."""

    name: str
    category: str = "generic"
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or self.name


def load_catalog(path) -> pd.DataFrame:
    """Read and validate a catalog CSV; image paths are resolved against the CSV's
    folder, then the repository root (for the demo catalog)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise StudioError(f"catalog {str(path)!r} does not exist") from None
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
        category=category or (str(row["category"]) if row is not None else "generic"),
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
