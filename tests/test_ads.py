"""Ads a marketer can ship: platform presets (exact sizes, the product untouched by the
crop), headline + CTA laid out and read back with OCR (render, batch: copy × image arms),
and the plain-words preview notice on every procedural result."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pipelines import InputError, load_product
from pipelines.engines import ENGINE_PREVIEWS, PREVIEW_NOTICE, BackdropEngine
from pipelines.presets import PRESETS, crop_to_preset, get_preset
from conftest import REPO
from studio.cli import app
from studio.creatives.render import RenderOptions, finish, prepare, render

runner = CliRunner()


def test_every_preset_fits_its_format_and_renders_on_a_multiple_of_8():
    from pipelines import FORMATS

    for preset in PRESETS.values():
        assert abs(preset.width / preset.height / FORMATS[preset.format] - 1) < 0.02, preset
        width, height = preset.render_size
        assert width % 8 == 0 and height % 8 == 0
        assert 0 <= width - preset.width < 8 and 0 <= height - preset.height < 8
    assert (get_preset("feed-4:5").width, get_preset("feed-4:5").height) == (1080, 1350)


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_creative_is_written_at_exactly_the_preset_size_with_the_product_intact(
        cutout_png, name):
    product = load_product(cutout_png)
    options = RenderOptions(prompt="on white marble", preset=name, watermark=False,
                            anchor="bottom")
    placed = prepare(product, options)
    engine = BackdropEngine()
    creative = render(placed, options, engine)[0]
    finished = finish(creative, placed, product, options, engine)
    manifest = finished.manifest
    image = np.asarray(Image.open(io.BytesIO(finished.png)))
    mask = np.asarray(Image.open(io.BytesIO(finished.mask_png))) > 0
    preset = PRESETS[name]
    assert image.shape[:2] == (preset.height, preset.width)
    assert mask.shape == (preset.height, preset.width)
    assert manifest["size"] == [preset.width, preset.height]
    assert manifest["preset"]["name"] == name
    _, cropped = crop_to_preset(creative, placed, preset)
    assert mask.sum() == placed.mask.sum()  # the crop took no product pixel
    assert np.array_equal(image[mask], cropped.rgb[mask])  # product pixels bit-identical
    x0, y0, x1, y1 = manifest["placement"]["box"]
    assert mask[y0:y1, x0:x1].sum() == mask.sum()


def test_the_crop_takes_the_rows_farther_from_the_product(cutout_png):
    product = load_product(cutout_png)
    preset = get_preset("feed-4:5")  # rendered 1080x1352: two rows go
    for anchor, kept_top_row in (("top", 0), ("bottom", 2)):
        options = RenderOptions(prompt="on sand", preset=preset.name, anchor=anchor)
        placed = prepare(product, options)
        creative = render(placed, options, BackdropEngine())[0]
        cropped, _ = crop_to_preset(creative, placed, preset)
        assert np.array_equal(cropped.image, creative.image[kept_top_row:kept_top_row + 1350])


def test_a_canvas_of_another_size_is_refused(cutout_png):
    product = load_product(cutout_png)
    options = RenderOptions(prompt="on sand", format="4:5", size="512")
    placed = prepare(product, options)
    creative = render(placed, options, BackdropEngine())[0]
    with pytest.raises(InputError, match="rendered at 1080x1352"):
        crop_to_preset(creative, placed, get_preset("feed-4:5"))


def test_studio_presets_lists_every_preset_with_its_size():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    for preset in PRESETS.values():
        assert f"{preset.width}x{preset.height}" in result.output and preset.name in result.output


def test_render_preset_writes_exact_size_and_says_it_is_a_preview_first(tmp_path, cutout_png):
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(cutout_png), "--prompt", "on oak", "--preset",
                                 "link-1.91:1", "--engine", "backdrop", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == ENGINE_PREVIEWS["backdrop"]
    manifest = json.loads(next(out.glob("*.json")).read_text())
    assert Image.open(out / manifest["image"]).size == (1200, 628)
    assert manifest["preview"] == {"procedural": True, "notice": ENGINE_PREVIEWS["backdrop"]}
    assert "1200x628" in result.stdout


def test_auto_fallback_notice_is_plain_words_without_socket_codes(monkeypatch):
    from pipelines import engines

    monkeypatch.setattr(engines, "weights_available_locally", lambda model_id: False)
    monkeypatch.setattr(engines, "hub_reachable", lambda model_id: (
        False, "the model hub cannot be reached (ConnectError: Name or service not known)"))
    engine, notice = engines.load_engine("auto")
    assert engine.name == "backdrop"
    assert notice.startswith(PREVIEW_NOTICE)
    assert engines.preview_notice(engine, notice) == notice


def test_hub_errors_lose_their_errno_codes():
    from pipelines.engines.diffusion import _plain

    text = _plain(OSError("[Errno -2] Name or service not known"))
    assert text == "OSError: Name or service not known"


def test_a_photographic_engine_has_no_preview_notice(tiny_engine):
    from pipelines.engines import preview_notice

    assert preview_notice(BackdropEngine()) == ENGINE_PREVIEWS["backdrop"]
    assert preview_notice(tiny_engine) == ENGINE_PREVIEWS["tiny"]

    class Photographic:
        name = "sd"

    assert preview_notice(Photographic()) is None


def test_render_with_copy_reads_back_and_keeps_background_and_layer_apart(tmp_path, cutout_png):
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(cutout_png), "--prompt", "on a linen cloth",
                                 "--preset", "story-9:16", "--headline", "Made for slow mornings",
                                 "--cta", "Shop now", "--brand-kit",
                                 str(REPO / "assets" / "brand" / "kit.yaml"),
                                 "--engine", "backdrop", "--area", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads(next(out.glob("*.json")).read_text())
    copy = manifest["copy"]
    assert copy["headline"] == "Made for slow mornings" and copy["cta"] == "Shop now"
    assert copy["ocr_match"] is True, copy["read"]
    assert copy["read"] == {"headline": "Made for slow mornings", "cta": "Shop now"}
    assert copy["brand"] == "Northwind Goods"
    image = np.asarray(Image.open(out / manifest["image"]).convert("RGB"))
    background = np.asarray(Image.open(out / copy["background"]).convert("RGB"))
    layer = np.asarray(Image.open(out / copy["layer"]))
    mask = np.asarray(Image.open(out / manifest["mask"])) > 0
    assert image.shape == background.shape == (1920, 1080, 3) and layer.shape == (1920, 1080, 4)
    assert np.array_equal(image[mask], background[mask])  # the copy never covers the product
    assert not layer[..., 3][mask].any()
    text_rows = np.nonzero(layer[..., 3].any(axis=1))[0]
    assert text_rows.min() >= 0.14 * 1920 and text_rows.max() <= 0.80 * 1920  # story safe zone
    assert manifest["warnings"] == []


def _copy_case(tmp_path, cutout_png, *extra):
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(cutout_png), "--prompt", "on sand",
                                 "--engine", "backdrop", *extra, "--out", str(out)])
    return result, out


@pytest.mark.parametrize("extra, message", [
    (["--headline", "Cheap mugs for all"], "cheap"),  # banned by the example kit
    (["--headline", "x" * 41], "at most 40"),
    (["--brand-kit", str(REPO / "assets" / "brand" / "kit.yaml")], "give --headline"),
    (["--headline", "Hi", "--brand-kit", "nope.yaml"], "nope.yaml"),
])
def test_bad_copy_fails_with_one_line_and_writes_nothing(tmp_path, cutout_png, extra, message):
    result, out = _copy_case(tmp_path, cutout_png, *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], lines
    assert not out.exists() or not any(out.iterdir())


def test_batch_with_copies_makes_scene_copy_arms_that_read_back(tmp_path):
    """`--copies 2`: each scene prompt is paired with two copies written for its cluster;
    each pair is its own prompt record (an arm candidate), its creatives carry the copy."""
    from studio.inputs.audience import Audience
    from studio.inputs.tables import load_users
    from studio.learning.batch import BatchSettings, run_batch
    from studio.store import Store

    catalog = tmp_path / "catalog.csv"
    catalog.write_text("product_id,image,category,title\n"
                       f"mug,{REPO / 'assets/products/mug.png'},kitchenware,blue enamel mug\n")
    clusters = tmp_path / "clusters.json"
    Audience(2).fit(load_users(REPO / "assets" / "demo" / "users.csv")).save(clusters)
    settings = BatchSettings(per_cluster=2, size="384", engine="backdrop", watermark=False,
                             copies=2, top_m=2)
    summary = run_batch(catalog, clusters, tmp_path / "s", settings, echo=lambda m: None)
    assert summary["prompts"] == 2 * 2 * 2 and summary["creatives"] == 8
    store = Store(tmp_path / "s")
    records = store.prompt_records()
    pairs = {(r["text"], json.dumps(json.loads(r["tags"])["copy"], sort_keys=True))
             for r in records.values()}
    assert len(pairs) == 8  # every (scene, copy) pair is its own arm candidate
    creatives = store.creatives()
    for creative in creatives:
        copy = creative["manifest"]["copy"]
        tags = json.loads(records[creative["prompt_id"]]["tags"])
        assert {"headline": copy["headline"], "cta": copy["cta"]} == tags["copy"]
        assert store.file_path(creative["image_sha256"]).exists()
    assert sum(c["manifest"]["copy"]["ocr_match"] for c in creatives) >= 7
    by_copy = {c["manifest"]["copy"]["headline"] for c in creatives}
    assert len(by_copy) >= 2


def test_batch_copy_options_are_checked_before_anything_runs(tmp_path):
    from studio.errors import StudioError
    from studio.learning.batch import BatchSettings, run_batch

    for settings, message in ((BatchSettings(copies=-1), "copies must be from 0 to 20"),
                              (BatchSettings(brand_kit="kit.yaml"), "give --copies N"),
                              (BatchSettings(copies=1, brand_kit=str(tmp_path / "no.yaml")),
                               "no.yaml")):
        with pytest.raises(StudioError, match=message):
            run_batch(REPO / "assets/demo/catalog.csv", tmp_path / "none.json", tmp_path / "s",
                      settings, echo=lambda m: None)
        assert not (tmp_path / "s").exists()
