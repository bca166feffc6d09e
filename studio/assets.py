"""Where the bundled assets are: ``$STUDIO_ASSETS`` or ``assets/`` beside the package."""

from __future__ import annotations

import os
from pathlib import Path


def assets_dir() -> Path:
    root = os.environ.get("STUDIO_ASSETS")
    path = Path(root) if root else Path(__file__).resolve().parent.parent / "assets"
    if not path.is_dir():
        raise FileNotFoundError(
            f"assets folder {str(path)!r} not found; run from a clone of the repository "
            "or set STUDIO_ASSETS"
        )
    return path


def sample_products() -> list[Path]:
    """The bundled sample product cut-outs, sorted by name."""
    return sorted((assets_dir() / "products").glob("*.png"))
