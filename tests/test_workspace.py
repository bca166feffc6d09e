"""The UI's workspace: mask editing, approvals, export, and steps out of order."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, draw_photo
from studio.errors import StudioError
from studio.workspace import Workspace


def test_steps_out_of_order_say_what_to_do(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(StudioError, match="upload a product photo first"):
        ws.load_product(None)
    with pytest.raises(StudioError, match="load a product first"):
        ws.generate_prompts()
    with pytest.raises(StudioError, match="render creatives first"):
        ws.export()
    plain = tmp_path / "plain.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(plain)
    with pytest.raises(ValueError, match="no product"):  # pipelines.InputError
        ws.load_product(str(plain))  # no mask can be found: a readable message


def test_brushed_mask_replaces_the_product_mask(tmp_path):
    ws = Workspace(tmp_path)
    path = tmp_path / "photo.png"
    rgb, truth = draw_photo(96, 96)
    Image.fromarray(rgb).save(path)
    ws.load_product(str(path))
    brushed = np.zeros((96, 96, 4), np.uint8)
    brushed[10:50, 10:50] = 255
    preview = ws.set_mask(brushed)
    assert ws.product.mask_source == "edited"
    assert np.array_equal(ws.product.mask, brushed[..., 0] > 127)
    assert np.array_equal(ws.product.rgb, rgb) and preview.shape == (96, 96, 3)
    with pytest.raises(StudioError, match="the mask is 32x32"):
        ws.set_mask(np.zeros((32, 32), np.uint8))


def test_only_approved_creatives_are_exported(tmp_path):
    ws = Workspace(tmp_path)
    ws.load_product(str(REPO / "assets/products/bottle.png"), category="beverage")
    ws.fit_audience(k=2)
    prompts = ws.generate_prompts(n=1)
    edited = prompts.to_dict("records")
    edited[0]["prompt"] = "a bottle on a white marble table, soft morning light"
    ws.edit_prompts(edited)
    creatives = ws.render(engine="backdrop", size="96")
    assert len(creatives) == 2 and creatives[0]["manifest"]["prompt"].startswith("a bottle on a white")
    ws.approve(creatives[0]["id"], False)
    with zipfile.ZipFile(ws.export()) as archive:
        names = archive.namelist()
        table = archive.read("creatives.csv").decode()
    assert f"{creatives[1]['id']}.png" in names and f"{creatives[0]['id']}.png" not in names
    assert creatives[1]["id"] in table and creatives[0]["id"] not in table
    with pytest.raises(StudioError, match="unknown creative"):
        ws.approve("nope", True)
    with pytest.raises(StudioError, match="cluster must be one of"):
        ws.edit_prompts([{"cluster": 9, "prompt": "x"}])
