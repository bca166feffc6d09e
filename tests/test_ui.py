"""The web UI: gradio_client calls of every tab's main action (bad uploads included),
and a real headless Chromium walking the whole flow."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
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
                quiet=True, allowed_paths=[str(UI_TMP)])
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


def test_every_tab_through_the_api(client, tmp_path):
    from gradio_client import handle_file

    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    status = client.predict(handle_file(str(fake)), None, "kitchenware", "", api_name="/load_product")[0]
    assert "Error" in status and "not a readable PNG, JPEG or WebP" in status
    assert "Traceback" not in status
    status = client.predict(None, 5, api_name="/fit_audience")[0]
    assert "load a product first" not in status  # fitting does not need a product
    status = client.predict("template", 2, None, "", "", api_name="/generate_prompts")[0]
    assert "load a product first" in status  # a readable message, not a stack trace
    status, preview, _ = client.predict(handle_file(str(REPO / "assets/products/mug.png")), None,
                                        "kitchenware", "blue enamel mug", api_name="/load_product")
    assert "product loaded (alpha mask, 512x512)" in status and Path(preview).exists()
    status, table = client.predict("template", 2, None, "", "", api_name="/generate_prompts")
    assert "10 prompts" in status and len(table["data"]) == 10
    assert all(row[1].startswith("a blue enamel mug") for row in table["data"])
    no_weights = client.predict(table, ["1:1"], "sd", "128", api_name="/render")[0]
    assert "Error" in no_weights and "cannot load" in no_weights  # no weights: readable
    status, gallery, _ = client.predict(table, ["1:1"], "backdrop", "128", api_name="/render")
    assert "10 creatives rendered" in status and "simulated past" in status
    assert len(gallery) == 10 and all(re.search(r"predicted CTR \d+\.\d\d%", item["caption"])
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
    status, archive = client.predict(api_name="/export")
    import zipfile

    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
    assert "creatives.csv" in names and sum(n.endswith(".png") for n in names) == 10
    fashion = REPO / "assets" / "fashion"
    status, board, item = client.predict(
        [handle_file(str(fashion / "top_tshirt_red.png")), handle_file(str(fashion / "bottom_jeans_blue.png"))],
        "shoes", [handle_file(str(fashion / "top_sweater_orange.png"))], "backdrop",
        api_name="/outfit")
    assert "outfit completed" in status and "orange" in status and Path(item).exists()
    status = client.predict([handle_file(str(fashion / "top_tshirt_red.png"))] * 4, "shoes", [],
                            "backdrop", api_name="/outfit")[0]
    assert "Error" in status and "do not fit" in status
    bad_users = tmp_path / "users.csv"
    bad_users.write_text("name,age\nann,3\n")
    status = client.predict(handle_file(str(bad_users)), 0, api_name="/fit_audience")[0]
    assert "Error" in status and "user_id" in status
    own_users = tmp_path / "own.csv"  # an audience of one's own: no planted segments
    pd.read_csv(REPO / "assets/demo/users.csv").drop(columns="segment").head(300).to_csv(
        own_users, index=False)
    status = client.predict(handle_file(str(own_users)), 2, api_name="/fit_audience")[0]
    assert "2 clusters" in status
    status = client.predict(100, api_name="/simulate")[0]
    assert status.startswith("**Error:** cannot simulate: an audience of your own")
    assert "\n" not in status and "Traceback" not in status


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
        page.locator("#generate-prompts").click()
        wait_status("prompts")
        page.screenshot(path=str(SCREENSHOTS / "3-prompts.png"))

        page.get_by_role("tab", name="Render").click()
        engine = page.locator("#engine input")
        engine.click()
        engine.fill("backdrop")
        page.keyboard.press("Enter")
        page.get_by_label("Size (long side or WxH; empty = 512)").fill("160")
        page.locator("#render").click()
        wait_status("creatives rendered", timeout=300)
        page.wait_for_function("[...document.querySelectorAll('#gallery img')]"
                               ".filter(i => i.complete && i.naturalWidth > 0).length >= 10")
        page.screenshot(path=str(SCREENSHOTS / "4-render.png"))

        page.get_by_role("tab", name="Campaign").click()
        page.get_by_label("Impressions to simulate").fill("300")
        page.locator("#simulate").click()
        wait_status("impressions served", timeout=300)
        page.wait_for_function("['greedy_prior', 'oracle_cluster'].every("
                               "p => document.querySelector('#policies').innerText.includes(p))")
        page.wait_for_selector("#ctr-chart canvas, #ctr-chart svg", timeout=60_000)
        page.wait_for_function("document.querySelector('#arms').innerText.includes('%')")
        assert "simulated world whose truth the studio cannot see" in page.locator(
            "#campaign-note").inner_text()
        time.sleep(1)
        page.screenshot(path=str(SCREENSHOTS / "5-campaign.png"), full_page=True)
        assert "Traceback" not in page.content()
        browser.close()
    assert outside == [], outside
    for step in ("1-product", "2-audience", "3-prompts", "4-render", "5-campaign"):
        assert (SCREENSHOTS / f"{step}.png").stat().st_size > 10_000
