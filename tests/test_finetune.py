"""LoRA fine-tuning on the tiny model: a few steps, saved, reloaded, output changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO, draw_cutout
from pipelines import CreativeRenderer, InputError, place, product_from_arrays
from pipelines.engines import ensure_tiny_model, load_engine
from pipelines.finetune import finetune_lora
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.learning.batch import BatchSettings, run_batch
from studio.cli import app
from studio.store import Store


def test_lora_trains_saves_reloads_and_changes_the_output(tmp_path):
    images = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8) for i in range(2)]
    folder = finetune_lora(str(ensure_tiny_model().pipeline), images,
                           ["a mug on marble", "a mug on oak"], tmp_path / "lora", steps=3,
                           resolution=64, learning_rate=1e-2)
    assert (folder / "pytorch_lora_weights.safetensors").stat().st_size > 1000
    plain, _ = load_engine("tiny")
    tuned, _ = load_engine("tiny", lora_id=str(folder))
    assert tuned.describe()["style_lora"] == str(folder)
    rgba = draw_cutout()
    placed = place(product_from_arrays(rgba[..., :3], rgba[..., 3], mask_source="alpha"), "keep")
    a = CreativeRenderer(plain)(placed, "a mug", seeds=[1], steps=2)[0].image
    b = CreativeRenderer(tuned)(placed, "a mug", seeds=[1], steps=2)[0].image
    assert not np.array_equal(a, b)
    assert np.array_equal(b[placed.mask], placed.rgb[placed.mask])
    again = CreativeRenderer(plain)(placed, "a mug", seeds=[1], steps=2)[0].image
    assert np.array_equal(a, again)  # the base pipeline is untouched


def test_bad_training_input_fails_clearly(tmp_path):
    model = str(ensure_tiny_model().pipeline)
    with pytest.raises(InputError, match="as many prompts as images"):
        finetune_lora(model, [np.zeros((64, 64, 3), np.uint8)], [], tmp_path)
    with pytest.raises(InputError, match="multiple of 8"):
        finetune_lora(model, [np.zeros((64, 64, 3), np.uint8)], ["x"], tmp_path, resolution=60)
    with pytest.raises(InputError, match="cannot load"):
        finetune_lora(str(tmp_path / "none"), [np.zeros((64, 64, 3), np.uint8)], ["x"], tmp_path)


def test_finetune_cli_on_a_store_then_render_with_the_lora(tmp_path):
    clusters = tmp_path / "clusters.json"
    Audience(5).fit(load_users(REPO / "assets/demo/users.csv")).save(clusters)
    run_batch(REPO / "assets/demo/catalog.csv", clusters, tmp_path / "store",
              BatchSettings(per_cluster=1, size="64", engine="backdrop", watermark=False),
              echo=lambda m: None)
    runner = CliRunner()
    missing = runner.invoke(app, ["finetune", "--store", str(tmp_path / "store"), "--category",
                                  "footwear", "--out", str(tmp_path / "lora"), "--engine", "tiny"])
    assert missing.exit_code == 2 and "no scored creatives" in missing.stderr
    store = Store(tmp_path / "store")
    with store.transaction() as tx:
        tx.execute("UPDATE creatives SET reward = (length(creative_id) + rowid) / 1000.0")
    result = runner.invoke(app, ["finetune", "--store", str(tmp_path / "store"), "--category",
                                 "footwear", "--out", str(tmp_path / "lora"), "--engine", "tiny",
                                 "--steps", "2", "--resolution", "64", "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "trained on 3 creatives" in result.output
    out = tmp_path / "render"
    rendered = runner.invoke(app, ["render", str(REPO / "assets/products/sneaker.png"), "-p",
                                   "on a running track", "--engine", "tiny", "--size", "64",
                                   "--steps", "2", "--lora", str(tmp_path / "lora"), "--out", str(out)])
    assert rendered.exit_code == 0, rendered.output
    manifest = json.loads(next(out.glob("*.json")).read_text())
    assert manifest["style_lora"] == str(tmp_path / "lora")
