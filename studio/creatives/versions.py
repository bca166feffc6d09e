"""The versions of the libraries that made a creative, for its manifest."""

from __future__ import annotations

import platform
from importlib import metadata

VERSIONED = ("creative-studio", "torch", "diffusers", "transformers", "numpy", "pillow",
             "opencv-python", "invisible-watermark", "c2pa-python")


def library_versions() -> dict:
    """Python's version and each of ``VERSIONED`` (None when not installed)."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
