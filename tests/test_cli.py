"""The command line end to end (subprocess) and every bad input (exit 2, one line,
nothing written)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import PYTHON, REPO, draw_photo, python_env
from studio.cli import app

runner = CliRunner()


def test_render_end_to_end_keeps_the_input_pixels(tmp_path):
    product = REPO / "assets" / "products" / "perfume.png"
    out = tmp_path / "OUT"
    result = subprocess.run(
        [PYTHON, "-m", "studio", "render", str(product), "--prompt",
         "on a marble table, soft morning light", "--engine", "tiny", "--format", "keep",
         "--mode", "inpaint", "--seed", "1", "--out", str(out)],
        env=python_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifests = list(out.glob("*.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    image = np.asarray(Image.open(out / manifest["image"]))
    source = np.asarray(Image.open(product))
    product_mask = source[..., 3] >= 128
    assert np.array_equal(image[product_mask], source[..., :3][product_mask])
    assert not np.array_equal(image[~product_mask], source[..., :3][~product_mask])
    mask = np.asarray(Image.open(out / manifest["mask"]))
    assert np.array_equal(mask == 255, product_mask)
    assert manifest["engine"] == "tiny" and manifest["seed"] == 1 and manifest["format"] == "keep"
    assert str(out / manifest["image"]) in result.stdout


def test_render_n_images_with_options(tmp_path, cutout_png):
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(cutout_png), "-p", "pastel pink studio",
                                 "--engine", "tiny", "--format", "9:16", "--size", "64",
                                 "--n", "3", "--seed", "5", "--steps", "2", "--controlnet",
                                 "--max-expansion", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifests = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted(m["seed"] for m in manifests) == [5, 6, 7]
    assert all(m["size"] == [40, 64] and m["controlnet_id"] for m in manifests)
    assert all(m["checks"]["max_expansion"] == 0.5 for m in manifests)


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys; import studio.cli; print('torch' in sys.modules)"
    result = subprocess.run([PYTHON, "-c", code], env=python_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
    help_text = runner.invoke(app, ["render", "--help"]).output
    for option in ("--prompt", "--mask", "--mode", "--format", "--size", "--engine", "--seed",
                   "--n", "--steps", "--controlnet", "--lcm", "--max-expansion"):
        assert option in help_text


def _bad_inputs(tmp_path, cutout_png):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.png"
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:20000])
    from test_product import _png_header_only

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(40000, 40000))
    masks = {}
    for name, array in {"small": np.full((10, 10), 255, np.uint8),
                        "empty": np.zeros((64, 64), np.uint8),
                        "full": np.full((64, 64), 255, np.uint8)}.items():
        masks[name] = tmp_path / f"mask-{name}.png"
        Image.fromarray(array).save(masks[name])
    p = str(cutout_png)
    return {
        "unreadable": ([str(text)], "not a readable"),
        "truncated": ([str(truncated)], "truncated"),
        "bomb": ([str(bomb)], "decompression-bomb"),
        "missing": ([str(tmp_path / "nope.png")], "cannot read"),
        "mask wrong size": ([p, "--mask", str(masks["small"])], "same size"),
        "empty mask": ([p, "--mask", str(masks["empty"])], "empty"),
        "full mask": ([p, "--mask", str(masks["full"])], "full"),
        "size not /8": ([p, "--size", "500x500"], "multiple of 8"),
        "unknown format": ([p, "--format", "3:2"], "unknown format '3:2'"),
        "unknown mode": ([p, "--mode", "repaint"], "unknown mode"),
        "unknown engine": ([p, "--engine", "dalle"], "unknown engine"),
        "unknown scheduler": ([p, "--scheduler", "fast"], "unknown scheduler"),
        "outpaint keep": ([p, "--format", "keep", "--mode", "outpaint", "--mask",
                           str(masks["empty"])], "empty"),
        "empty prompt": ([p, "--prompt", " "], "prompt is empty"),
        "zero images": ([p, "--n", "0"], "n must be at least 1"),
        "unknown preset": ([p, "--preset", "feed-3:2"], "unknown preset 'feed-3:2'"),
        "preset and size": ([p, "--preset", "feed-4:5", "--size", "512"], "drop --format/--size"),
    }


@pytest.mark.parametrize("case", [
    "unreadable", "truncated", "bomb", "missing", "mask wrong size", "empty mask", "full mask",
    "size not /8", "unknown format", "unknown mode", "unknown engine", "unknown scheduler",
    "outpaint keep", "empty prompt", "zero images", "unknown preset", "preset and size",
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, cutout_png, case):
    args, pattern = _bad_inputs(tmp_path, cutout_png)[case]
    out = tmp_path / "out"
    if "--prompt" not in args:
        args = [*args, "--prompt", "a scene"]
    result = runner.invoke(app, ["render", *args, "--engine" if "--engine" not in args else
                                 "--seed", "backdrop" if "--engine" not in args else "0",
                                 "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], lines
    assert not out.exists()


def test_outpaint_with_keep_on_a_photo_has_nothing_to_generate(tmp_path, photo_png):
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(photo_png), "-p", "x", "--format", "keep",
                                 "--mode", "outpaint", "--engine", "backdrop", "--out", str(out)])
    assert result.exit_code == 2 and "no new canvas area" in result.stderr
    assert not out.exists()


def test_sd_engine_without_weights_exits_1_with_one_line(tmp_path, cutout_png):
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(cutout_png), "-p", "x", "--engine", "sd",
                                 "--model", str(tmp_path / "missing-model"), "--out", str(out)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot load")
    assert not out.exists()


def test_out_that_is_a_file_is_refused(tmp_path, cutout_png):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    result = runner.invoke(app, ["render", str(cutout_png), "-p", "x", "--engine", "backdrop",
                                 "--out", str(target)])
    assert result.exit_code == 2 and "is not a folder" in result.stderr
    assert target.read_text() == "keep me"


def test_demo_runs_the_whole_flow_in_a_hidden_world(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [PYTHON, "-m", "studio", "demo", "--engine", "backdrop", "--impressions", "6000",
         "--size", "96", "--per-cluster", "2", "--rounds", "1", "--out", str(out)],
        env=python_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"report", "ctr", "impressions", "engine", "panel_ocr_match"}
    assert summary["engine"] == "backdrop" and summary["impressions"] == 6000
    ctr = summary["ctr"]
    assert set(ctr) >= {"service", "served", "greedy_prior", "random", "static", "epsilon_greedy",
                        "linucb", "thompson", "oracle_cluster", "oracle_user"}
    assert all(0.003 <= value <= 0.05 for value in ctr.values())  # realistic CTRs
    assert ctr["oracle_user"] >= ctr["oracle_cluster"] >= max(
        v for k, v in ctr.items() if not k.startswith("oracle"))
    assert ctr["service"] > ctr["static"]  # personalised pools beat one creative for all
    report = out / "report.md"
    assert summary["report"] == str(report) and report.exists()
    text = report.read_text()
    assert "| greedy_prior |" in text and "| oracle_cluster |" in text
    assert "demonstration, not evidence" in text and "base_ctr = " in text
    assert "judged on held-out creatives" in text and "Best creative per cluster" in text
    assert "## Learning loop" in text and "| 2 |" in text  # two rounds: before and after evolving
    for chart in ("ctr_over_time.png", "regret.png", "best_per_cluster.png", "loop.png"):
        assert (out / chart).stat().st_size > 1000
    assert (out / "reward-model.npz").exists() and (out / "past" / "store.db").exists()
    assert (out / "store" / "store.db").exists()
    # The ad panel: every cluster's best creative at feed-4:5 with copy that reads back.
    assert "## The ad panel" in text and (out / "panel.png").stat().st_size > 1000
    panel = [json.loads(p.read_text()) for p in (out / "panel").glob("*.json")]
    matched, total = map(int, summary["panel_ocr_match"].split("/"))
    assert total == len(panel) >= 4 and matched >= 0.95 * total
    for manifest in panel:
        assert manifest["size"] == [1080, 1350] and manifest["copy"]["headline"]
        assert Image.open(out / "panel" / manifest["image"]).size == (1080, 1350)
