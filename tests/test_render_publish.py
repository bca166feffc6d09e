"""Publishing creatives: files, manifest, content ids, atomicity."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from pipelines import load_product
from studio import files as files_module
from studio.creatives.render import RenderOptions, png_bytes, prepare, publish, render

REQUIRED = {"id", "image", "mask", "engine", "model_id", "prompt", "negative_prompt", "seed",
            "steps", "guidance", "mode", "format", "size", "placement", "product", "scores",
            "checks", "watermark", "timings", "versions"}


def _render_one(product_path, engine, **overrides):
    product = load_product(product_path)
    options = RenderOptions(prompt="on a rustic oak table, warm golden light", seed=4,
                            **overrides)
    placed = prepare(product, options)
    return product, placed, options, render(placed, options, engine)


def test_publish_writes_image_mask_and_manifest(tmp_path, cutout_png, tiny_engine):
    product, placed, options, creatives = _render_one(cutout_png, tiny_engine, size="64",
                                                      format="4:5", steps=2)
    tmp_path = tmp_path / "out"
    manifest = publish(creatives[0], placed, product, options, tiny_engine, tmp_path)
    png = tmp_path / manifest["image"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [manifest["image"], manifest["mask"], f"{manifest['id']}.json"])
    # The id is the sha256 of the pixels' canonical PNG encoding (before the file's marks).
    pixels = np.asarray(Image.open(png))
    assert manifest["id"] == hashlib.sha256(png_bytes(pixels)).hexdigest()[:20]
    assert json.loads((tmp_path / f"{manifest['id']}.json").read_text()) == manifest
    assert REQUIRED <= manifest.keys()
    assert manifest["engine"] == "tiny" and manifest["steps"] == 2 and manifest["seed"] == 4
    assert manifest["format"] == "4:5" and manifest["size"] == list(placed.size)
    assert manifest["product"]["sha256"] == product.sha256
    assert manifest["watermark"]["status"] == "skipped"  # 64 px is too small to mark
    assert manifest["versions"]["diffusers"] and manifest["versions"]["torch"]
    saved = np.asarray(Image.open(png))
    assert np.array_equal(saved[placed.mask], placed.rgb[placed.mask])
    mask = np.asarray(Image.open(tmp_path / manifest["mask"]))
    assert np.array_equal(mask == 255, placed.mask) and set(np.unique(mask)) <= {0, 255}


def test_same_render_published_twice_is_the_same_file(tmp_path, cutout_png, backdrop_engine):
    tmp_path = tmp_path / "out"
    ids, files = set(), set()
    for _ in range(2):
        product, placed, options, creatives = _render_one(cutout_png, backdrop_engine)
        manifest = publish(creatives[0], placed, product, options, backdrop_engine, tmp_path)
        ids.add(manifest["id"])
        files.add((tmp_path / manifest["image"]).read_bytes())  # disclosure included
    assert len(ids) == 1 and len(files) == 1 and len(list(tmp_path.iterdir())) == 3


def test_watermark_is_embedded_outside_the_product(tmp_path, backdrop_engine):
    product, placed, options, creatives = _render_one(
        "assets/products/handbag.png", backdrop_engine)
    manifest = publish(creatives[0], placed, product, options, backdrop_engine, tmp_path)
    assert manifest["watermark"]["status"] == "embedded"
    saved = np.asarray(Image.open(tmp_path / manifest["image"]))
    assert np.array_equal(saved[placed.mask], placed.rgb[placed.mask])
    from pipelines.watermark import read_watermark

    assert read_watermark(saved).hex() == manifest["watermark"]["payload"]
    assert manifest["steps"] is None and manifest["guidance"] is None  # backdrop has none


def test_a_failed_publish_leaves_nothing_behind(tmp_path, cutout_png, backdrop_engine,
                                                monkeypatch):
    product, placed, options, creatives = _render_one(cutout_png, backdrop_engine)
    tmp_path = tmp_path / "out"
    real_replace = files_module.os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(files_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        publish(creatives[0], placed, product, options, backdrop_engine, tmp_path)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []
