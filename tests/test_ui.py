"""The web UI: gradio_client calls of every tab's main action (bad uploads included),
and a real headless Chromium walking the whole flow."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from conftest import REPO, require

UI_TMP = REPO / "tests" / ".tmp" / "ui"
SCREENSHOTS = Path(os.environ.get("STUDIO_SCREENSHOTS", UI_TMP / "screenshots"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


@pytest.fixture(scope="module")
def server():
    shutil.rmtree(UI_TMP, ignore_errors=True)
    (UI_TMP / "gradio").mkdir(parents=True)
    old = {k: os.environ.get(k) for k in ("GRADIO_TEMP_DIR", "TMPDIR", "GRADIO_ANALYTICS_ENABLED")}
    os.environ.update(GRADIO_TEMP_DIR=str(UI_TMP / "gradio"), TMPDIR=str(UI_TMP),
                      GRADIO_ANALYTICS_ENABLED="False")
    import tempfile

    tempfile.tempdir = None  # re-read TMPDIR
    sys.path.insert(0, str(REPO))
    import app

    port = app.free_port()
    demo = app.build()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                quiet=True, allowed_paths=[str(UI_TMP)], css=app.CSS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    tempfile.tempdir = None


@pytest.fixture
def client(server):
    from gradio_client import Client

    return Client(server, analytics_enabled=False, verbose=False)


MUG = REPO / "assets/products/mug.png"
FASHION = REPO / "assets" / "fashion"
NO_TABLE = {"headers": [], "data": []}  # the prompt table on screen before any is written


def _ready(client, k=2, n=1, users=None):
    """A session with the mug loaded, the audience fitted and prompts written."""
    from gradio_client import handle_file

    client.predict(handle_file(str(MUG)), None, "kitchenware", "blue enamel mug",
                   api_name="/load_product")
    client.predict(users, k, api_name="/fit_audience")
    return client.predict("template", n, None, "", "", NO_TABLE, False,
                          api_name="/generate_prompts")[1]


def _value(update):
    """A component's value, whether the API returned it bare or as an update."""
    return update.get("value") if isinstance(update, dict) and "__type__" in update else update


def _path(image):
    return image if isinstance(image, str) else image["path"]


def _render(client, table, size="64", presets=("feed-1:1",)):
    """(status, gallery, creatives table, picked creative, prompt table) of a backdrop
    render."""
    out = client.predict(table, list(presets), "backdrop", size, 0.3, "bottom",
                         api_name="/render")
    return out[0], out[1], out[3], _value(out[4]), out[6]


def test_brand_kit_and_copy_overlay_through_the_api(client, tmp_path):
    """An uploaded kit (a zip with its logo and fonts) styles and constrains the copy; each
    creative at its preset's exact size carries a headline and CTA that read back with
    OCR; the export holds the background and the copy layer apart, and the CSV the copy."""
    import shutil

    from gradio_client import handle_file

    bad = tmp_path / "bad.yaml"
    bad.write_text('name: Bad\ncolours:\n  primary: "#12"\n  accent: "#FFCC00"\n')
    status = client.predict(handle_file(str(bad)), api_name="/brand_kit")[0]
    assert status.startswith("**Error:**") and "colour primary is '#12'" in status
    assert "/tmp" not in status and str(UI_TMP) not in status
    kit = tmp_path / "kit"
    shutil.copytree(REPO / "assets" / "brand", kit)
    text = (kit / "kit.yaml").read_text().replace("Northwind Goods", "Test Goods")
    (kit / "kit.yaml").write_text(text.replace("banned: [", "banned: [enamel, "))
    archive = shutil.make_archive(str(tmp_path / "kit"), "zip", kit)
    status = client.predict(handle_file(archive), api_name="/brand_kit")[0]
    assert "brand kit 'Test Goods'" in status and "enamel" in status

    table = _ready(client, k=2, n=1)
    assert table["headers"][:5] == ["cluster", "audience", "prompt", "headline", "cta"]
    assert all(row[3] and row[4] for row in table["data"])
    assert not any("enamel" in row[3].lower() for row in table["data"])  # the kit's ban
    out = client.predict(table, ["story-9:16"], "backdrop", "", 0.3, "bottom", True,
                         api_name="/render")
    status, gallery = out[0], out[1]
    assert "read back exactly with OCR on 2 of 2" in status, status
    assert all("copy ✓ read back" in item["caption"] for item in gallery)
    from PIL import Image

    assert all(Image.open(_path(item["image"])).size == (1080, 1920) for item in gallery)
    # The kit bans "enamel", which the prompts (the product's title) hold: the safety gate
    # blocks both creatives until a reviewer overrides them.
    assert all("blocked: banned word 'enamel' in the prompt" in item["caption"] for item in gallery)
    for row in out[3]["data"]:
        client.predict(row[1], "ann", "enamel is the product's material", api_name="/override")
    client.predict(api_name="/approve_all")
    status, archive = client.predict(api_name="/export")
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        rows = list(csv.DictReader(io.StringIO(z.read("creatives.csv").decode())))
        manifests = [json.loads(z.read(n)) for n in names if n.endswith(".json")]
    assert len(manifests) == 2
    for manifest in manifests:
        copy = manifest["copy"]
        assert copy["ocr_match"] and copy["brand"] == "Test Goods"
        assert {manifest["image"], manifest["mask"], copy["background"], copy["layer"]} <= set(names)
    assert {r["headline"] for r in rows} == {m["copy"]["headline"] for m in manifests}
    assert {r["copy_read_back"] for r in rows} == {"✓ read back"}
    assert {r["ai_generated"] for r in rows} == {
        "yes: compositeWithTrainedAlgorithmicMedia (XMP), not signed"}
    from pipelines.disclosure import COMPOSITE, read_disclosure

    with zipfile.ZipFile(archive) as z:  # the exported files carry the marking themselves
        assert all(read_disclosure(z.read(m["image"]))["source_type"] == COMPOSITE
                   for m in manifests)

    # A banned word typed into the table stops the render with a readable line.
    table["data"][0][3] = "Enamel dreams"
    status = client.predict(table, ["story-9:16"], "backdrop", "", 0.3, "bottom", True,
                            api_name="/render")[0]
    assert status.startswith("**Error:**") and "enamel" in status.lower()


def test_every_tab_through_the_api(client, tmp_path):
    from gradio_client import handle_file

    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    status = client.predict(handle_file(str(fake)), None, "kitchenware", "", api_name="/load_product")[0]
    assert "Error" in status and "not a readable PNG, JPEG or WebP" in status
    assert "Traceback" not in status and str(UI_TMP) not in status and "/tmp" not in status
    status = client.predict(None, 5, api_name="/fit_audience")[0]
    assert "load a product first" not in status and "the demo audience" in status
    status = client.predict("template", 2, None, "", "", NO_TABLE, False,
                            api_name="/generate_prompts")[0]
    assert "load a product first" in status  # a readable message, not a stack trace
    status, preview, *_ = client.predict(handle_file(str(MUG)), None, "kitchenware",
                                         "blue enamel mug", api_name="/load_product")
    assert "product loaded (alpha mask, 512x512)" in status and Path(preview).exists()
    status, table, *_ = client.predict("template", 2, None, "", "", NO_TABLE, False,
                                       api_name="/generate_prompts")
    assert "10 prompts" in status and len(table["data"]) == 10
    assert table["headers"][:3] == ["cluster", "audience", "prompt"]
    assert all(row[2].startswith("a blue enamel mug") for row in table["data"])
    no_weights = client.predict(table, ["feed-1:1"], "sd", "128", 0.3, "bottom",
                                api_name="/render")[0]
    assert "Error" in no_weights and "cannot load" in no_weights  # no weights: readable
    status, gallery, _, picked, _ = _render(client, table, "128")
    assert "10 creatives rendered" in status and "simulated past" in status
    assert picked is None and len(gallery) == 10
    assert all(re.fullmatch(r".+ · 1:1 · CTR \d+\.\d\d% · pending", item["caption"])
               for item in gallery)
    status = client.predict(0, api_name="/simulate")[0]
    assert status == "**Error:** simulate at least one impression, got 0"
    status, policies, chart, arms = client.predict(200, api_name="/simulate")
    assert "200 impressions served" in status and "greedy-on-prior" in status
    rows = {row[0]: dict(zip(policies["headers"], row)) for row in policies["data"]}
    assert list(rows) == ["service", "greedy_prior", "random", "static", "oracle_cluster"]
    ctr = {p: float(r["true CTR"].rstrip("%")) for p, r in rows.items()}
    assert all(ctr["oracle_cluster"] >= c for c in ctr.values())
    assert all(0.3 <= c <= 5 for c in ctr.values()), ctr
    assert sum(row[arms["headers"].index("pulls")] for row in arms["data"]) == 200
    assert {row[chart["columns"].index("policy")] for row in chart["data"]} == set(rows)
    status, policies, chart, arms = client.predict(100, api_name="/simulate")  # continues
    assert "300 impressions served" in status
    assert sum(row[arms["headers"].index("pulls")] for row in arms["data"]) == 300
    assert max(row[chart["columns"].index("impressions")] for row in chart["data"]) == 300
    status = client.predict(0, 20, api_name="/evolve")[0]
    assert status.startswith("**Error:** candidates must be an integer from 1 to 50")
    status, loop_table, loop_chart = client.predict(2, 20, api_name="/evolve")
    assert "round 1 of the learning loop" in status and "300 impressions" in status
    assert [row[0] for row in loop_table["data"]] == [1]
    assert "retired" in loop_table["data"][0][loop_table["headers"].index("retired → added (why)")]
    assert len(loop_chart["data"]) == 1
    replaced = int(re.search(r"(\d+) arms replaced", status).group(1))
    client.predict(api_name="/approve_all")
    status, archive = client.predict(api_name="/export")
    shown = 10 + replaced  # the evolved arms' creatives join the pool; other candidates do not
    assert f"exported {shown} of {shown} creatives" in status
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
    assert "creatives.csv" in names and sum(n.endswith(".mask.png") for n in names) == shown
    status = client.predict([handle_file(str(FASHION / "top_tshirt_red.png"))] * 4, "shoes", [],
                            "backdrop", api_name="/outfit")[0]
    assert "Error" in status and "do not fit" in status
    bad_users = tmp_path / "users.csv"
    bad_users.write_text("name,age\nann,3\n")
    status = client.predict(handle_file(str(bad_users)), 0, api_name="/fit_audience")[0]
    assert "Error" in status and "user_id" in status


def test_a_preview_says_so_above_the_result_never_done_alone(client):
    """Defect 1: a procedural preview (and an empty generated outfit item) used to read
    "Done"; the notice now leads the result as a warning banner, in plain words."""
    from gradio_client import handle_file

    status = _render(client, _ready(client))[0]
    assert not status.startswith("**Done:**") and status.startswith("> ⚠️ **Preview:")
    assert status.index("Preview") < status.index("creatives rendered")
    assert "Errno" not in status
    status = client.predict(
        [handle_file(str(FASHION / "top_tshirt_red.png")),
         handle_file(str(FASHION / "bottom_jeans_blue.png"))],
        "shoes", [handle_file(str(FASHION / "top_sweater_orange.png"))], "backdrop",
        api_name="/outfit")[0]
    assert not status.startswith("**Done:**") and status.startswith("> ⚠️")
    assert "nothing was generated for shoes" in status and "outfit completed" in status


def test_refitting_marks_downstream_stale_and_render_refuses_old_prompts(client):
    """Defect 2: after re-fitting, the old clusters' prompts were rendered for the new
    clusters and the picked creative survived a re-render ("unknown creative")."""
    table = _ready(client, k=3)
    _render(client, table)
    status, _, prompts_note, render_note, campaign_note, export_note = client.predict(
        None, 2, api_name="/fit_audience")
    assert "out of date" in status
    assert "re-fitted" in prompts_note and "re-fitted" in render_note and export_note
    old = {"headers": table["headers"], "data": [r for r in table["data"] if r[0] < 2]}
    status = _render(client, old)[0]
    assert status.startswith("**Error:** the prompts are out of date")
    table = client.predict("template", 1, None, "", "", old, False,
                           api_name="/generate_prompts")[1]
    status, _, _, picked, _ = _render(client, table)
    assert "2 creatives rendered" in status and picked is None


def test_brand_rules_show_the_enforced_prompt(client, tmp_path):
    from gradio_client import handle_file

    rules = tmp_path / "brand.yaml"
    rules.write_text("banned_words: [cheap]\n")
    _ready(client)
    table = client.predict("template", 1, handle_file(str(rules)), "", "", NO_TABLE, False,
                           api_name="/generate_prompts")[1]
    table["data"][0][2] = "a cheap mug on a kitchen table"
    status, _, _, _, shown = _render(client, table)
    assert "Brand rules changed 1 prompt(s)" in status and "removed 'cheap'" in status
    assert shown["data"][0][2] == "a mug on a kitchen table"


def test_approval_starts_pending_and_shows_on_every_thumbnail(client):
    """Defect 3: everything started approved and no thumbnail showed its state."""
    _, gallery, table, _, _ = _render(client, _ready(client))
    assert all(item["caption"].endswith("· pending") for item in gallery)
    status = client.predict(api_name="/export")[0]
    assert status.startswith("**Error:** no creative is approved yet (0 of 2: 2 pending")
    status = client.predict(None, api_name="/approve")[0]
    assert status.startswith("**Error:** pick a creative first")
    ids = [row[1] for row in table["data"]]
    status, gallery, table, *_ = client.predict(ids[0], api_name="/approve")
    assert "1 approved, 1 pending" in status
    assert [row[-1] for row in table["data"]] == ["approved", "pending"]
    assert gallery[0]["caption"].endswith("· approved")
    assert client.predict(ids[1], api_name="/reject")[1][1]["caption"].endswith("· rejected")
    status, archive = client.predict(api_name="/export")
    assert status == ("**Done:** exported 1 of 2 creatives (the approved ones; 0 pending, "
                      "1 rejected left out)")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read(f"{ids[0]}.json"))
        csv_text = z.read("creatives.csv").decode()
    assert {manifest["image"], manifest["mask"]} <= names  # every file the manifest names
    assert re.search(r",\d+\.\d\d%,", csv_text) and "0.0" not in csv_text.split("\n")[1]


def test_a_blocked_creative_needs_a_reviewers_override_to_be_approved(client, tmp_path):
    """The safety gate blocks creatives whose prompt holds a word the brand kit bans: the
    caption and the table say why, approval is refused, an override needs a reason, and an
    overridden creative is recorded in the store, approved and exported alone."""
    import shutil

    from gradio_client import handle_file

    from studio.store import Store

    kit = tmp_path / "kit"
    shutil.copytree(REPO / "assets" / "brand", kit)
    (kit / "kit.yaml").write_text((kit / "kit.yaml").read_text().replace("banned: [",
                                                                         "banned: [enamel, "))
    client.predict(handle_file(shutil.make_archive(str(tmp_path / "kit"), "zip", kit)),
                   api_name="/brand_kit")
    out = client.predict(_ready(client, k=2, n=1), ["feed-1:1"], "backdrop", "256", 0.3,
                         "bottom", True, api_name="/render")
    gallery, table = out[1], out[3]
    why = "blocked: banned word 'enamel' in the prompt"
    assert all(item["caption"].endswith(f"· {why}") for item in gallery)
    assert [row[-1] for row in table["data"]] == [why, why]
    ids = [row[1] for row in table["data"]]
    status = client.predict(ids[0], api_name="/approve")[0]
    assert status.startswith("**Error:** creative 1 is blocked: banned word 'enamel'")
    assert "override" in status
    status = client.predict(ids[0], "ann", " ", api_name="/override")[0]
    assert status == "**Error:** an override needs a reason"
    status, gallery, table, *_ = client.predict(ids[0], "ann", "enamel is the material",
                                                api_name="/override")
    assert status.startswith("**Done:** creative 1 overridden by ann")
    assert gallery[0]["caption"].endswith("· pending") and table["data"][1][-1] == why
    status = client.predict(ids[0], "ann", "again", api_name="/override")[0]
    assert "already overridden" in status
    assert client.predict(ids[0], api_name="/approve")[0].startswith("**Done:**")
    assert client.predict(api_name="/approve_all")[0].startswith("**Done:** 0 pending")
    status, archive = client.predict(api_name="/export")
    assert status.startswith("**Done:** exported 1 of 2 creatives")
    with zipfile.ZipFile(archive) as z:
        assert f"{ids[0]}.json" in z.namelist() and f"{ids[1]}.json" not in z.namelist()
    [store] = [p.parent for p in UI_TMP.rglob("store.db")
               if any(r["creative_id"] == ids[0] for r in Store(p.parent).blocked_creatives())]
    [record] = [r for r in Store(store).blocked_creatives() if r["override"]]
    assert record["override"]["reviewer"] == "ann"
    assert record["override"]["reason"] == "enamel is the material"


def test_mask_editor_paints_over_the_photo_and_preview_is_a_cutout(client):
    """Defect 4: the brush painted on a bare black-and-white mask and the preview tinted
    the product green."""
    import numpy as np
    from gradio_client import handle_file
    from PIL import Image

    _, preview, editor, *_ = client.predict(handle_file(str(MUG)), None, "kitchenware", "",
                                            api_name="/load_product")
    photo = np.asarray(Image.open(MUG).convert("RGBA"))
    mask = photo[..., 3] > 127
    background = np.asarray(Image.open(_path(editor["background"])).convert("RGB"))
    assert len(np.unique(background.reshape(-1, 3), axis=0)) > 100  # the photo, not a mask
    assert np.abs(background[mask].astype(int) - photo[..., :3][mask]).mean() < 8
    layer = np.asarray(Image.open(_path(editor["layers"][0])))
    assert layer.shape[2] == 4 and np.array_equal(layer[..., 3] > 0, mask)
    shown = np.asarray(Image.open(preview).convert("RGB"))
    assert np.array_equal(shown[mask], background[mask])  # the kept pixels, untinted
    brushed = {"background": handle_file(_path(editor["background"])),
               "layers": [handle_file(_path(editor["layers"][0]))],
               "composite": handle_file(_path(editor["composite"]))}
    status, preview, *_ = client.predict(brushed, api_name="/apply_mask")
    assert status.startswith("**Done:** mask updated")


def test_own_audience_is_scored_and_the_campaign_tab_says_why_simulate_is_off(client, tmp_path):
    """Defect 5: an uploaded audience showed "n/a" CTRs, and Campaign refused only on
    click; a PNG dropped as the user table fell back to the demo audience."""
    from gradio_client import handle_file

    status = client.predict(handle_file(str(MUG)), 2, api_name="/fit_audience")[0]
    assert status.startswith("**Error:**") and "mug.png" in status
    assert str(UI_TMP) not in status and "gradio" not in status  # no server paths
    own = tmp_path / "own.csv"  # an audience of one's own: no planted segments
    pd.read_csv(REPO / "assets/demo/users.csv").drop(columns="segment").head(300).to_csv(
        own, index=False)
    status, clusters, _, _, campaign_note, _ = client.predict(handle_file(str(own)), 2,
                                                              api_name="/fit_audience")
    assert "2 clusters of own.csv" in status and "Simulate is off" in campaign_note
    assert clusters["headers"][:2] == ["cluster", "name"] and all(r[1] for r in clusters["data"])
    client.predict(handle_file(str(MUG)), None, "kitchenware", "", api_name="/load_product")
    table = client.predict("template", 1, None, "", "", NO_TABLE, False,
                           api_name="/generate_prompts")[1]
    status, gallery, _, _, _ = _render(client, table)
    assert "demo reward model" in status
    assert all(re.search(r"CTR \d+\.\d\d%", item["caption"]) for item in gallery)
    status = client.predict(100, api_name="/simulate")[0]
    assert status.startswith("**Error:** cannot simulate: an audience of your own")
    assert "\n" not in status and "Traceback" not in status


def test_gallery_keeps_the_aspect_and_captions_are_short(server, client):
    """Defect 6: square crops made 9:16 and 1.91:1 look alike; captions were cut."""
    import app

    config = app.build().config
    gallery = next(c for c in config["components"] if c["props"].get("elem_id") == "gallery")
    assert gallery["props"]["object_fit"] == "contain"
    presets = next(c for c in config["components"] if c["props"].get("elem_id") == "presets")
    assert presets["props"]["value"] == ["feed-4:5"]
    _, gallery, _, _, _ = _render(client, _ready(client), presets=("story-9:16", "link-1.91:1"))
    assert sorted(re.search(r" · (9:16|1\.91:1) · CTR", item["caption"])[1]
                  for item in gallery) == ["1.91:1", "1.91:1", "9:16", "9:16"]
    assert all(len(item["caption"]) <= 80 for item in gallery)  # name ≤ 40 characters


def test_variations_regenerate_and_compare_through_the_api(client):
    """New actions: N variations, regenerate one creative, compare two side by side."""
    _, _, table, _, _ = _render(client, _ready(client))
    assert client.predict(None, 2, api_name="/vary")[0].startswith(
        "**Error:** pick a creative first")
    first, second = (row[1] for row in table["data"])
    status, gallery, table, picked, _ = client.predict(first, 2, api_name="/vary")
    picked = _value(picked)
    assert "2 variation(s) added" in status and len(gallery) == 4 and picked == first
    status, gallery, table, picked, _ = client.predict(second, api_name="/regenerate")
    picked = _value(picked)
    ids = [row[1] for row in table["data"]]
    assert "regenerated" in status and second not in ids and picked in ids and len(ids) == 4
    status, left, right, differences = client.predict(first, picked, api_name="/compare")
    assert Path(left).exists() and Path(right).exists()
    rows = {row[0]: row[1:] for row in differences["data"]}
    assert rows["seed"][0] != rows["seed"][1] and set(rows) >= {"predicted CTR", "prompt"}


def test_browser_walks_the_whole_flow(server):
    require("chromium", Path(CHROMIUM).exists(),
            "Chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                    headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: outside.append(r.url)
                if urlparse(r.url).scheme in ("http", "https", "ws", "wss")
                and urlparse(r.url).hostname != "127.0.0.1" else None)
        page.goto(server)
        status = page.locator("#status")

        def wait_status(text: str, timeout: float = 120) -> None:
            page.wait_for_function(
                "t => document.querySelector('#status').innerText.includes(t)", arg=text,
                timeout=timeout * 1000)

        page.locator("#product-image input[type=file]").set_input_files(
            str(REPO / "assets/products/sneaker.png"))
        page.wait_for_timeout(500)
        page.locator("#product-title textarea, #product-title input").first.fill("red canvas sneakers")
        page.locator("#load-product").click()
        wait_status("product loaded")
        page.wait_for_selector("#mask-preview img")
        page.screenshot(path=str(SCREENSHOTS / "1-product.png"))

        page.get_by_role("tab", name="Audience").click()
        page.locator("#fit-audience").click()
        wait_status("clusters")
        page.screenshot(path=str(SCREENSHOTS / "2-audience.png"))

        page.get_by_role("tab", name="Prompts").click()
        kit = shutil.make_archive(str(UI_TMP / "brand-kit"), "zip", REPO / "assets" / "brand")
        page.locator("#brand-kit input[type=file]").set_input_files(kit)
        page.wait_for_timeout(500)
        page.locator("#use-brand-kit").click()
        wait_status("brand kit 'Northwind Goods'")
        per_cluster = page.locator("#prompts-per-cluster input[type=number]")
        per_cluster.fill("1")
        per_cluster.press("Enter")
        page.locator("#generate-prompts").click()
        wait_status("5 prompts")
        page.wait_for_function("document.querySelector('#prompts').innerText"
                               ".includes('headline')")
        page.screenshot(path=str(SCREENSHOTS / "3-prompts.png"))

        page.get_by_role("tab", name="Render").click()
        engine = page.locator("#engine input")
        engine.click()
        engine.fill("backdrop")
        page.keyboard.press("Enter")
        page.locator("#presets label", has_text="story-9:16").click()
        page.locator("#render").click()  # at the presets' exact sizes, copy laid over
        wait_status("creatives rendered", timeout=300)
        assert status.inner_text().lstrip().startswith("⚠️")  # a preview, said first
        assert "read back exactly with OCR on 10 of 10" in status.inner_text()
        page.wait_for_function("[...document.querySelectorAll('#gallery img')]"
                               ".filter(i => i.complete && i.naturalWidth > 0).length >= 10")
        assert page.locator("#gallery").get_by_text("pending").count() >= 10
        assert page.locator("#gallery").get_by_text("copy ✓ read back").count() >= 10
        page.locator("#gallery img").first.click()
        page.wait_for_function("document.querySelector('#manifest').innerText"
                               ".includes('ocr_match')")
        page.locator("#gallery").screenshot(path=str(SCREENSHOTS / "7-copy-overlay.png"))
        page.locator("#approve").click()
        wait_status("1 approved")
        page.wait_for_function("document.querySelector('#creatives-table').innerText"
                               ".includes('approved')")
        page.keyboard.press("Escape")  # close the large preview: the whole tab in view
        page.screenshot(path=str(SCREENSHOTS / "4-render.png"), full_page=True)

        page.get_by_role("tab", name="Export").click()
        page.locator("#export").click()
        wait_status("exported 1 of 10 creatives")
        page.screenshot(path=str(SCREENSHOTS / "6-export.png"))

        page.get_by_role("tab", name="Campaign").click()
        page.get_by_label("Impressions to simulate").fill("300")
        page.locator("#simulate").click()
        wait_status("impressions served", timeout=300)
        page.wait_for_function("['greedy_prior', 'oracle_cluster'].every("
                               "p => document.querySelector('#policies').innerText.includes(p))")
        page.wait_for_selector("#ctr-chart canvas, #ctr-chart svg", timeout=60_000)
        page.wait_for_function("document.querySelector('#arms').innerText.includes('%')")
        page.get_by_label("Impressions an arm is given before it can retire").fill("20")
        page.locator("#evolve").click()
        wait_status("round 1 of the learning loop", timeout=300)
        page.wait_for_function("document.querySelector('#loop-table').innerText.includes('retired')")
        assert "simulated world whose truth the studio cannot see" in page.locator(
            "#campaign-note").inner_text()
        time.sleep(1)
        page.screenshot(path=str(SCREENSHOTS / "5-campaign.png"), full_page=True)
        assert "Traceback" not in page.content()
        browser.close()
    assert outside == [], outside
    for step in ("1-product", "2-audience", "3-prompts", "4-render", "5-campaign", "6-export",
                 "7-copy-overlay"):
        assert (SCREENSHOTS / f"{step}.png").stat().st_size > 10_000
