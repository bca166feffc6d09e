"""Loading products and masks: sources of the mask, and every bad input refused."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import draw_cutout, draw_photo
from pipelines import InputError, load_mask, load_product
from pipelines.masks import auto_mask


def test_rgba_alpha_is_the_product_mask(cutout_png):
    product = load_product(cutout_png)
    rgba = np.asarray(Image.open(cutout_png))
    assert product.mask_source == "alpha"
    assert np.array_equal(product.alpha, rgba[..., 3])
    assert np.array_equal(product.rgb, rgba[..., :3])
    assert np.array_equal(product.mask, rgba[..., 3] >= 128)
    assert len(product.sha256) == 64 and product.name == "cutout"


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("WEBP", ".webp"), ("PNG", ".png")])
def test_photo_without_alpha_gets_an_automatic_mask(tmp_path, fmt, suffix):
    rgb, truth = draw_photo(160, 128)
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(rgb).save(path, format=fmt, quality=95)
    product = load_product(path)
    assert product.mask_source == "auto"
    iou = (product.mask & truth).sum() / (product.mask | truth).sum()
    assert iou > 0.9, iou


def test_opaque_rgba_falls_back_to_the_automatic_mask(tmp_path):
    rgb, truth = draw_photo()
    path = tmp_path / "opaque.png"
    Image.fromarray(np.dstack([rgb, np.full(truth.shape, 255, np.uint8)]), "RGBA").save(path)
    assert load_product(path).mask_source == "auto"


def test_explicit_mask_file_wins_over_alpha(tmp_path, cutout_png):
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 20:40] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    product = load_product(cutout_png, mask=mask_path)
    assert product.mask_source == "file"
    assert np.array_equal(product.mask, mask > 0)


def test_mask_with_transparency_is_read_from_its_alpha(tmp_path):
    rgba = draw_cutout()
    path = tmp_path / "m.png"
    Image.fromarray(rgba, "RGBA").save(path)
    assert np.array_equal(load_mask(path, size=(64, 64)) > 0, rgba[..., 3] >= 128)


def test_auto_mask_refuses_a_plain_image():
    with pytest.raises(InputError, match="no product"):
        auto_mask(np.full((64, 64, 3), 200, np.uint8))


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _truncated_png(tmp_path):
    path = tmp_path / "full.png"
    Image.fromarray(draw_photo(256, 256)[0]).save(path)
    data = path.read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("case,pattern", [
    ("text", "not a readable"),
    ("truncated", "damaged or truncated"),
    ("bomb", "decompression-bomb guard"),
    ("bomb_below_pil_limit", "decompression-bomb guard"),
    ("gif", "use PNG, JPEG or WebP"),
    ("missing", "cannot read"),
])
def test_bad_product_files_fail_clearly(tmp_path, case, pattern):
    path = tmp_path / f"{case}.png"
    if case == "text":
        path.write_text("this is not an image")
    elif case == "truncated":
        path.write_bytes(_truncated_png(tmp_path))
    elif case == "bomb":
        path.write_bytes(_png_header_only(40000, 40000))
    elif case == "bomb_below_pil_limit":
        path.write_bytes(_png_header_only(8000, 6000))  # 48 MP: PIL would decode it
    elif case == "gif":
        Image.fromarray(draw_photo()[0]).save(path, format="GIF")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InputError, match=pattern):
        load_product(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("case,pattern", [
    ("wrong_size", "must be the same size"),
    ("empty", "empty"),
    ("full", "full"),
])
def test_bad_masks_fail_clearly(tmp_path, cutout_png, case, pattern):
    mask = {"wrong_size": np.full((32, 48), 255, np.uint8),
            "empty": np.zeros((64, 64), np.uint8),
            "full": np.full((64, 64), 255, np.uint8)}[case]
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    original = mask_path.read_bytes()
    with pytest.raises(InputError, match=pattern):
        load_product(cutout_png, mask=mask_path)
    assert mask_path.read_bytes() == original


def test_fully_transparent_cutout_is_an_empty_mask(tmp_path):
    rgba = draw_cutout()
    rgba[..., 3] = 0
    path = tmp_path / "ghost.png"
    Image.fromarray(rgba, "RGBA").save(path)
    with pytest.raises(InputError, match="empty"):
        load_product(path)
