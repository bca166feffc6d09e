"""Loading and validating product images and their masks.

A product is an RGB image plus an alpha map that says which pixels are the product.
The alpha comes from the image's own transparency (cut-outs), from an explicit mask file,
or from the automatic mask of ``masks.auto_mask``. Everything is validated on load — a
bad file fails here, with a message, before any rendering starts.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .masks import auto_mask

#: Formats accepted for product photos and masks.
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP")
#: Decompression-bomb guard: images above this many pixels are refused before decoding.
MAX_PIXELS = 40_000_000
#: Largest image or mask file read, in bytes (50 MB); larger files, and anything that is not
#: a regular file (devices such as /dev/zero, pipes, folders), are refused before reading.
MAX_FILE_BYTES = 50_000_000
#: Alpha at or above this value counts as product (the rest is background or soft edge).
MASK_THRESHOLD = 128


@dataclass(frozen=True, eq=False)
class Product:
    """A product photo with its mask.

    ``alpha`` is uint8: 255 for product, 0 for background; cut-outs keep their soft
    edges. ``mask`` (alpha >= 128) is the region that must stay pixel-fixed.
    ``mask_source`` says where the mask came from: ``alpha``, ``file`` or ``auto``.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    mask_source: str
    sha256: str
    name: str = "product"

    @property
    def mask(self) -> np.ndarray:
        return self.alpha >= MASK_THRESHOLD

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the product mask, x1/y1 exclusive."""
        ys, xs = np.nonzero(self.mask)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def read_file(path: str | Path, *, what: str = "file",
              max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; anything else (a device, a
    pipe, a folder, a larger file, an unreadable path) is an InputError naming ``what``.
    The size is checked before a byte is read, and the read itself stops past the cap."""
    label = f"{what} {str(path)!r}"
    try:
        info = os.stat(path)  # before opening: opening a pipe would block
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{label} is not a regular file")
        if info.st_size > max_bytes:
            raise InputError(f"{label} is {info.st_size / 1e6:.1f} MB, over the "
                             f"{max_bytes / 1e6:g} MB limit")
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InputError(f"{label} is not a regular file")
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError(f"{label} is over the {max_bytes / 1e6:g} MB limit")
    return data


def read_image(source: str | Path | bytes, *, what: str = "image",
               max_pixels: int = MAX_PIXELS,
               max_bytes: int = MAX_FILE_BYTES) -> tuple[Image.Image, bytes]:
    """Open and fully decode a PNG/JPEG/WebP file; return the image and its raw bytes.

    Only regular files of at most ``max_bytes`` are read (see ``read_file``); the pixel
    count is checked from the header before decoding (decompression bombs), EXIF
    orientation is applied, and every failure becomes an InputError naming ``what``.
    """
    label = what if isinstance(source, bytes) else f"{what} {str(source)!r}"
    if isinstance(source, bytes):
        if len(source) > max_bytes:
            raise InputError(f"{label} is {len(source) / 1e6:.1f} MB, over the "
                             f"{max_bytes / 1e6:g} MB limit")
        data = source
    else:
        data = read_file(source, what=what, max_bytes=max_bytes)
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError):
        raise InputError(f"{label} is not a readable PNG, JPEG or WebP image") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{label} is over the {max_pixels / 1e6:.0f} MP limit "
                         f"(decompression-bomb guard): {exc}") from None
    if image.format not in SUPPORTED_FORMATS:
        raise InputError(f"{label} is {image.format}; use PNG, JPEG or WebP")
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(
            f"{label} is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
            f"{max_pixels / 1e6:.0f} MP limit (decompression-bomb guard)"
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{label} is damaged or truncated ({exc})") from None
    return ImageOps.exif_transpose(image), data


def load_product(source: str | Path | bytes, *, mask: str | Path | bytes | None = None,
                 name: str | None = None, max_pixels: int = MAX_PIXELS) -> Product:
    """Load a product photo and decide its mask.

    With ``mask`` given, that file is the mask (white = product). Otherwise an image with
    meaningful transparency uses its alpha, and any other image gets an automatic mask.
    """
    image, data = read_image(source, what="product image", max_pixels=max_pixels)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    rgba = np.asarray(image.convert("RGBA"))
    rgb = np.ascontiguousarray(rgba[..., :3])
    if mask is not None:
        alpha = load_mask(mask, size=image.size, max_pixels=max_pixels)
        source_name = "file"
    elif has_alpha and (rgba[..., 3] < 255).any():
        alpha = rgba[..., 3].copy()
        source_name = "alpha"
    else:
        alpha = auto_mask(rgb).astype(np.uint8) * 255
        source_name = "auto"
    check_mask(alpha >= MASK_THRESHOLD, what=f"{source_name} mask")
    if name is None:
        name = "product" if isinstance(source, bytes) else Path(source).stem
    sha = hashlib.sha256(data).hexdigest()
    return Product(rgb=rgb, alpha=alpha, mask_source=source_name, sha256=sha, name=name)


def load_mask(source: str | Path | bytes, *, size: tuple[int, int],
              max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load a mask file as uint8 (255 = product); it must match ``size`` (width, height).

    A mask with transparency is read from its alpha channel, any other from its grey
    level; values are binarised at 128.
    """
    image, _ = read_image(source, what="mask", max_pixels=max_pixels)
    if image.size != tuple(size):
        raise InputError(
            f"mask is {image.size[0]}x{image.size[1]} but the image is {size[0]}x{size[1]}; "
            "they must be the same size"
        )
    if image.mode in ("RGBA", "LA", "PA"):
        grey = np.asarray(image.convert("RGBA"))[..., 3]
    else:
        grey = np.asarray(image.convert("L"))
    return np.where(grey >= MASK_THRESHOLD, 255, 0).astype(np.uint8)


def check_mask(mask: np.ndarray, *, what: str = "mask") -> None:
    """Refuse masks that would leave nothing to keep or nothing to generate."""
    if not mask.any():
        raise InputError(f"{what} is empty: no pixel is marked as product")
    if mask.all():
        raise InputError(f"{what} is full: every pixel is product, nothing is left to generate")


def product_from_arrays(rgb: np.ndarray, alpha: np.ndarray, *, name: str = "product",
                        mask_source: str = "array") -> Product:
    """Build a Product from in-memory arrays (UI uploads, tests), with the same checks."""
    rgb = np.asarray(rgb)
    alpha = np.asarray(alpha)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"rgb must be an HxWx3 uint8 array, got {rgb.shape} {rgb.dtype}")
    if alpha.shape != rgb.shape[:2]:
        raise InputError(f"mask is {alpha.shape[::-1]} but the image is {rgb.shape[1::-1]}")
    alpha = (alpha.astype(np.uint8) * 255) if alpha.dtype == bool else alpha.astype(np.uint8)
    check_mask(alpha >= MASK_THRESHOLD)
    sha = hashlib.sha256(np.ascontiguousarray(rgb).tobytes() + alpha.tobytes()).hexdigest()
    return Product(np.ascontiguousarray(rgb), alpha, mask_source, sha, name)
