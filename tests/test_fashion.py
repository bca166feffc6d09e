"""Outfit completion (DiFashion): the board, fixed items, the history condition, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import REPO
from pipelines import InputError, load_product
from pipelines.fashion import (MIN_ITEM_PRESENCE, build_board, colour_similarity,
                               complete_outfit, history_palette, item_presence, outfit_prompt)
from studio.cli import app

FASHION = REPO / "assets" / "fashion"


def item(name):
    return load_product(FASHION / f"{name}.png")


@pytest.fixture(scope="module")
def outfit_items():
    return [item("top_tshirt_red"), item("bottom_jeans_blue")]


WARM = ("top_sweater_orange", "shoes_boots_brown")
COOL = ("top_shirt_blue", "shoes_boots_teal")


@pytest.mark.parametrize("engine_fixture", ["backdrop_engine", "tiny_engine"])
def test_fixed_items_stay_bit_identical_and_the_target_cell_is_filled(request, engine_fixture,
                                                                       outfit_items):
    engine = request.getfixturevalue(engine_fixture)
    board = build_board(outfit_items, cell=128)
    outfit = complete_outfit(engine, outfit_items, "shoes", history=[item(WARM[0])], cell=128,
                             steps=2)
    fixed = board.placed.mask
    assert np.array_equal(outfit.board[fixed], board.placed.rgb[fixed])
    x0, y0, x1, y1 = board.cells[board.target]
    assert outfit.item_box == (x0, y0, x1, y1) and outfit.item.shape == (128, 128, 3)
    assert np.array_equal(outfit.item, outfit.board[y0:y1, x0:x1])
    assert (outfit.item < 240).any()  # something was generated in the target cell
    assert board.placed.size == (256, 256)  # the unused fourth cell of the 2x2 board stays white
    assert (outfit.board[128 + 8:256 - 8, 128 + 8:256 - 8] == 255).all()


def test_board_layout_grows_with_the_items():
    one = build_board([item("top_tshirt_red")], cell=128)
    three = build_board([item(n) for n in ("top_tshirt_red", "bottom_jeans_blue", "bag_tote_mustard")],
                        cell=128)
    assert one.placed.size == (256, 128) and one.target == 1
    assert three.placed.size == (256, 256) and three.target == 3


def test_warm_history_moves_the_prompt_and_the_metrics_toward_warm(backdrop_engine, outfit_items):
    warm, cool = [item(n) for n in WARM], [item(n) for n in COOL]
    warm_colours, _ = history_palette(warm)
    cool_colours, _ = history_palette(cool)
    assert set(warm_colours) & {"orange", "brown", "terracotta", "golden", "gold", "red"}
    assert set(cool_colours) & {"teal", "blue", "turquoise", "navy"}
    for colour in warm_colours:
        assert colour in outfit_prompt("shoes", warm_colours, [])
    warm_outfit = complete_outfit(backdrop_engine, outfit_items, "shoes", history=warm, cell=128)
    cool_outfit = complete_outfit(backdrop_engine, outfit_items, "shoes", history=cool, cell=128)
    warm_pixels = [h.rgb[h.mask] for h in warm]
    cool_pixels = [h.rgb[h.mask] for h in cool]
    assert colour_similarity(warm_outfit.item, warm_pixels) > colour_similarity(cool_outfit.item, warm_pixels)
    assert colour_similarity(cool_outfit.item, cool_pixels) > colour_similarity(warm_outfit.item, cool_pixels)
    item_warmth = lambda o: float((o.item[..., 0].astype(int) - o.item[..., 2]).mean())
    assert item_warmth(warm_outfit) > item_warmth(cool_outfit)
    assert warm_outfit.metrics["personalisation"] == colour_similarity(warm_outfit.item, warm_pixels)


def test_bad_outfits_fail_clearly(backdrop_engine):
    with pytest.raises(InputError, match="at least one fixed item"):
        build_board([])
    with pytest.raises(InputError, match="4 fixed items do not fit"):
        build_board([item("top_tshirt_red")] * 4)
    with pytest.raises(InputError, match="unknown category 'hats'"):
        complete_outfit(backdrop_engine, [item("top_tshirt_red")], "hats")
    with pytest.raises(InputError, match="cell size"):
        build_board([item("top_tshirt_red")], cell=100)


def test_outfit_cli_writes_item_board_mask_and_manifest(tmp_path):
    out = tmp_path / "out"
    args = ["outfit", "--items", str(FASHION / "top_tshirt_red.png"), "--items",
            str(FASHION / "bottom_jeans_blue.png"), "--category", "shoes",
            "--history", str(FASHION / "top_sweater_orange.png"), "--engine", "backdrop",
            "--cell", "128", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads(next(out.glob("*.json")).read_text())
    assert manifest["kind"] == "outfit" and manifest["category"] == "shoes"
    assert "orange" in manifest["prompt"] and len(manifest["items"]) == 2
    assert set(manifest["metrics"]) >= {"personalisation", "compatibility"}
    board = np.asarray(Image.open(out / manifest["board"]))
    mask = np.asarray(Image.open(out / manifest["mask"])) == 255
    expected = build_board([item("top_tshirt_red"), item("bottom_jeans_blue")], cell=128)
    assert np.array_equal(board[mask], expected.placed.rgb[mask])
    assert Image.open(out / manifest["image"]).size == (128, 128)
    bad = CliRunner().invoke(app, ["outfit", "--items", str(FASHION / "top_tshirt_red.png"),
                                   "--category", "hats", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "unknown category" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_an_empty_generated_item_is_a_warning_not_a_success(tmp_path):
    """The procedural engine paints only background in the new cell: the outfit says so
    (status, warnings, stderr) instead of reporting scores as if an item were there."""
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["outfit", "--items", str(FASHION / "top_tshirt_red.png"),
                                      "--category", "shoes", "--engine", "backdrop",
                                      "--cell", "128", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads(next(out.glob("*.json")).read_text())
    assert manifest["status"] == "warning" and manifest["preview"]["procedural"]
    assert manifest["metrics"]["item_presence"] < MIN_ITEM_PRESENCE
    assert "nothing was generated for shoes" in manifest["warnings"][0]
    assert "warning: nothing was generated for shoes" in result.stderr


@pytest.mark.parametrize("name", ["shoes_boots_brown", "bag_tote_mustard", "top_tshirt_red"])
def test_item_presence_sees_a_real_item_and_not_a_gradient(name):
    import cv2

    from pipelines.fashion import _on_white

    cell = cv2.resize(_on_white(item(name)), (128, 128), interpolation=cv2.INTER_AREA)
    assert item_presence(cell) > 5 * MIN_ITEM_PRESENCE
    y = np.linspace(0, 1, 128)[:, None, None]
    sweep = 235 - 90 / (1 + np.exp(-(y - 0.6) / 0.04)) * np.array([[[0.6, 0.8, 1.0]]])
    assert item_presence(np.broadcast_to(sweep, (128, 128, 3)).astype(np.uint8)) == 0.0



@pytest.mark.parametrize("given", [
    ["--items", "top_tshirt_red", "bottom_jeans_blue", "shoes_boots_brown"],  # listed after it
    ["--items", "top_tshirt_red", "--items", "bottom_jeans_blue", "shoes_boots_brown"],
    ["top_tshirt_red", "bottom_jeans_blue", "shoes_boots_brown"],  # listed without it
])
def test_outfit_cli_takes_the_items_listed_after_items(tmp_path, given):
    out = tmp_path / "out"
    args = [a if a.startswith("--") else str(FASHION / f"{a}.png") for a in given]
    result = CliRunner().invoke(app, ["outfit", *args, "--category", "bag", "--engine",
                                      "backdrop", "--cell", "128", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads(next(out.glob("*.json")).read_text())
    assert [i["name"] for i in manifest["items"]] == [
        "top_tshirt_red", "bottom_jeans_blue", "shoes_boots_brown"]


def test_outfit_cli_without_items_or_with_too_many_fails_clearly(tmp_path):
    none = CliRunner().invoke(app, ["outfit", "--category", "shoes", "--out", str(tmp_path / "a")])
    assert none.exit_code == 2 and "--items" in none.output
    four = [str(FASHION / f"{n}.png") for n in ("top_tshirt_red", "bottom_jeans_blue",
                                                 "shoes_boots_brown", "top_shirt_blue")]
    many = CliRunner().invoke(app, ["outfit", "--items", *four, "--category", "bag",
                                    "--engine", "backdrop", "--out", str(tmp_path / "b")])
    assert many.exit_code == 2 and many.stderr.startswith("error:"), many.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

def test_history_through_a_tiny_ip_adapter(outfit_items):
    from pipelines.engines import load_engine

    engine, _ = load_engine("tiny", ip_adapter=True)
    assert engine.describe()["ip_adapter"]
    history = [item(WARM[0])]
    with_history = complete_outfit(engine, outfit_items, "shoes", history=history, cell=128,
                                   steps=2, history_weight=0.8)
    without = complete_outfit(engine, outfit_items, "shoes", history=history, cell=128,
                              steps=2, history_weight=0.0)
    assert not np.array_equal(with_history.item, without.item)  # the adapter acts
    board = build_board(outfit_items, cell=128)
    assert np.array_equal(with_history.board[board.placed.mask], board.placed.rgb[board.placed.mask])
    plain, _ = load_engine("tiny")
    with pytest.raises(ValueError, match="no IP-Adapter"):
        plain(board.placed.rgb, ~board.placed.image_area, "x", seeds=[0], steps=1,
              ip_adapter_images=[board.placed.rgb])
