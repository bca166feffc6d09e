"""The safety gate: NudeNet's detector on the project's own images, the gate's reasons
(NSFW score, banned words in prompt / copy / OCR text, the SD safety checker), the store's
record and overrides on both backends, and a flagged creative blocked end to end
(batch → store → arms → API → override → next batch)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import threading
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import PYTHON, REPO, python_env
from pipelines import load_product
from pipelines.safety import SEXUAL_LABELS, NsfwDetector, NsfwUnavailableError
from studio.creatives.render import RenderOptions, finish, prepare, render
from studio.creatives.safety import SafetySettings, check_creative
from studio.errors import StudioError
from studio.inputs.brand import BrandKit
from studio.store import MIGRATIONS, Store

PROJECT_IMAGES = sorted((REPO / "assets" / "products").glob("*.png")) + sorted(
    (REPO / "assets" / "fashion").glob("*.png"))
DEFAULT = SafetySettings().nsfw_threshold


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def clean(**overrides) -> dict:
    """``check_creative`` keywords for a clean product image and text."""
    return {"prompt": "mug on a marble counter", "copy_texts": ["Morning ritual", "Shop now"],
            "ocr_texts": ["Morning ritual", "Shop now"], "banned": ("cheap", "free gift"),
            "sd_nsfw_flag": None, **overrides}


# ------------------------------------------------------------------ installation
def test_two_opencv_packages_are_never_installed_together():
    """nudenet is installed without its opencv-python-headless: ``cv2`` is the files of
    opencv-python, and no second OpenCV distribution exists."""
    import cv2

    owner = metadata.distribution("opencv-python")
    assert "cv2/__init__.py" in {f.as_posix() for f in owner.files}
    assert Path(owner.locate_file("cv2/__init__.py")).resolve() == Path(cv2.__file__).resolve()
    for other in ("opencv-python-headless", "opencv-contrib-python",
                  "opencv-contrib-python-headless"):
        with pytest.raises(metadata.PackageNotFoundError):
            metadata.distribution(other)
    assert tuple(int(p) for p in metadata.version("nudenet").split(".")[:2]) >= (3, 4)


# ------------------------------------------------------------------ the detector
def test_the_detector_scores_the_projects_images_below_the_default_threshold(store_dir):
    """Real output on the product and fashion images and on the demo catalog's renders
    (the shared store): every score under the default threshold, no sexual detection."""
    detector = NsfwDetector()
    for path in PROJECT_IMAGES:
        found = detector.assess(rgb(path))
        assert found["score"] < DEFAULT, (path.name, found)
        assert not {d["label"] for d in found["detections"]} & set(SEXUAL_LABELS), path.name
    renders = Store(store_dir).creatives()
    assert renders
    for row in renders:
        safety = row["manifest"]["safety"]
        assert safety["nsfw"]["score"] < DEFAULT and not safety["blocked"], safety


def test_detections_are_labelled_boxes_and_the_score_is_the_sexual_labels_max():
    image = rgb(REPO / "assets" / "products" / "mug.png")
    detector = NsfwDetector()
    found = detector.assess(image)
    assert found["label"] in SEXUAL_LABELS and 0 < found["score"] < 1
    assert detector.nsfw_score(image) == found["score"]
    for d in detector.detect(image):
        assert set(d) == {"label", "score", "box"} and len(d["box"]) == 4
    # One session serves threads at once, with the same answers.
    results = []
    threads = [threading.Thread(target=lambda: results.append(detector.nsfw_score(image)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [found["score"]] * 4


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8),
                                 np.zeros((8, 8, 3), np.float32), np.zeros((0, 8, 3), np.uint8)])
def test_the_detector_refuses_what_is_not_an_rgb_image(bad):
    with pytest.raises(ValueError, match="NSFW detector"):
        NsfwDetector().detect(bad)


def test_a_missing_nudenet_is_one_line_with_the_install_hint(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "nudenet" else real(name, *a))
    from pipelines import safety

    with pytest.raises(NsfwUnavailableError, match='pip install --no-deps "nudenet>=3.4"'):
        safety.model_path()


# ------------------------------------------------------------------ the gate
def test_a_clean_creative_passes_and_says_what_was_checked():
    verdict = check_creative(rgb(PROJECT_IMAGES[0]), **clean())
    assert verdict["blocked"] is False and verdict["reasons"] == []
    assert verdict["nsfw"]["threshold"] == DEFAULT and verdict["banned_words"] == []
    assert verdict["sd_safety_checker"] is None and verdict["checked"]


def test_the_nsfw_threshold_blocks_at_or_over_the_real_score():
    image = rgb(REPO / "assets" / "products" / "mug.png")
    score = NsfwDetector().nsfw_score(image)
    tripped = check_creative(image, **clean(), settings=SafetySettings(score))
    assert tripped["blocked"] and tripped["reasons"][0].startswith("nsfw score ")
    assert tripped["nsfw"]["label"] in tripped["reasons"][0]
    assert not check_creative(image, **clean(), settings=SafetySettings(min(1.0, score * 1.5)))["blocked"]


@pytest.mark.parametrize("where, field", [("prompt", "prompt"), ("copy", "copy_texts"),
                                          ("text read on the image", "ocr_texts")])
def test_a_banned_word_blocks_and_is_named(where, field):
    text = "Free Gift with every mug"
    value = text if field == "prompt" else [text]
    verdict = check_creative(rgb(PROJECT_IMAGES[0]), **clean(**{field: value}))
    assert verdict["blocked"] and verdict["banned_words"] == ["free gift"]
    assert verdict["reasons"] == [f"banned word 'free gift' in the {where}"]


def test_a_word_inside_another_is_not_banned():
    verdict = check_creative(rgb(PROJECT_IMAGES[0]), **clean(prompt="cheaper by the dozen"))
    assert not verdict["blocked"]


def test_the_sd_safety_checker_flag_blocks():
    verdict = check_creative(rgb(PROJECT_IMAGES[0]), **clean(sd_nsfw_flag=True))
    assert verdict["blocked"] and verdict["reasons"] == ["the SD safety checker flagged it"]
    assert verdict["sd_safety_checker"] is True


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_a_bad_threshold_is_refused(bad):
    with pytest.raises(StudioError, match="NSFW threshold must be a number from 0 to 1"):
        SafetySettings(bad)


def test_finish_records_the_verdict_in_the_manifest(backdrop_engine, cutout_png):
    product = load_product(cutout_png, name="thing")
    kit = replace(BrandKit.default(), banned=("marble",))
    options = RenderOptions(prompt="product on white marble", size="64", watermark=False,
                            brand=kit)
    placed = prepare(product, options)
    creative = render(placed, options, backdrop_engine)[0]
    assert creative.sd_nsfw_flag is None  # the backdrop engine has no safety checker
    manifest = finish(creative, placed, product, options, backdrop_engine).manifest
    assert manifest["safety"]["reasons"] == ["banned word 'marble' in the prompt"]
    assert "blocked by the safety gate: banned word 'marble' in the prompt" in manifest["warnings"]
    flagged = replace(creative, sd_nsfw_flag=True)
    plain = replace(options, brand=None)
    assert finish(flagged, placed, product, plain, backdrop_engine).manifest["safety"]["reasons"] == [
        "the SD safety checker flagged it"]
    assert not finish(creative, placed, product, plain, backdrop_engine).manifest["safety"]["blocked"]


def test_the_sd_pipelines_safety_flag_reaches_the_creative(tiny_engine, cutout_png, monkeypatch):
    """The diffusers output's ``nsfw_content_detected`` (the tiny pipeline has no checker:
    None; a checker that flags: True on the creative)."""
    product = load_product(cutout_png, name="thing")
    options = RenderOptions(prompt="product on a table", size="64", steps=2, n=2)
    placed = prepare(product, options)
    assert [c.sd_nsfw_flag for c in render(placed, options, tiny_engine)] == [None, None]
    monkeypatch.setattr(tiny_engine.pipe, "run_safety_checker",
                        lambda image, device, dtype: (image, [True, False]))
    assert [c.sd_nsfw_flag for c in render(placed, options, tiny_engine)] == [True, False]


# ------------------------------------------------------------------ the store
def _creatives(store: Store, blocked: set[int]) -> None:
    """One product, two clusters, a prompt and a creative each; ``blocked``: which."""
    class Cluster:
        def __init__(self, cid):
            self.id, self.profile, self.size = cid, f"cluster {cid}", 10

        def as_dict(self):
            return {"id": self.id}

    class Audience:
        clusters_ = [Cluster(0), Cluster(1)]

        def to_document(self):
            return {}

    store.add_audience(Audience())
    store.add_products([("p1", "mug", "A mug", "sha-p1")])
    store.add_prompts([{"prompt_id": f"q{c}", "category": "mug", "cluster_id": c,
                        "text": f"mug {c}", "source": "template"} for c in (0, 1)])
    store.add_creatives([
        {"job_key": f"job{c}", "product_id": "p1", "prompt_id": f"q{c}", "cluster_id": c,
         "format": "1:1", "seed": c, "image_sha256": store.put_file(f"image {c}".encode()),
         "mask_sha256": store.put_file(b"mask"), "bytes": 10,
         "manifest": {"id": f"cr{c}", "safety": {"blocked": c in blocked,
                                                  "reasons": ["nsfw score 0.90 ≥ 0.50"] * (c in blocked)}}}
        for c in (0, 1)])
    store.set_scores_and_arms({"cr0": (0.1, True), "cr1": (0.2, True)}, {}, strength=None)


def test_the_safety_migration_upgrades_an_older_store(store_location, monkeypatch):
    """A store made before the gate (schema 5) opens, migrates, and its creatives count
    as not blocked; the overrides table exists."""
    import studio.store.store as store_module

    where, folder = store_location
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:5])
    old = Store(where, folder=folder, create=True)
    assert old.schema_version == 5
    old.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    store = Store(where, folder=folder)
    assert store.schema_version == len(MIGRATIONS) == 6
    _creatives(store, blocked=set())
    assert [c["blocked"] for c in store.creatives()] == [0, 0]
    assert store.query("SELECT COUNT(*) FROM safety_overrides")[0][0] == 0


def test_a_blocked_creative_is_held_until_a_reviewer_overrides_it(store_location):
    where, folder = store_location
    store = Store(where, folder=folder, create=True)
    _creatives(store, blocked={1})
    assert set(store.selected_creatives().values()) == {"cr0"}
    assert [c["servable"] for c in store.creatives()] == [True, False]
    with pytest.raises(StudioError, match="unknown or blocked creative 'cr1'"):
        store.creative_image_sha("cr1")
    [held] = store.blocked_creatives()
    assert held["creative_id"] == "cr1" and held["override"] is None
    assert held["reasons"] == ["nsfw score 0.90 ≥ 0.50"]
    for args, message in ((("nope", "ann", "ok"), "unknown creative 'nope'"),
                          (("cr0", "ann", "ok"), "'cr0' is not blocked"),
                          (("cr1", " ", "ok"), "needs the reviewer's name"),
                          (("cr1", "ann", ""), "needs a reason")):
        with pytest.raises(StudioError, match=message):
            store.override_safety(*args)
    done = store.override_safety("cr1", "ann", "a statue, not a person")
    assert done["reviewer"] == "ann" and done["reason"] == "a statue, not a person"
    with pytest.raises(StudioError, match="already overridden"):
        store.override_safety("cr1", "bob", "again")
    assert set(store.selected_creatives().values()) == {"cr0", "cr1"}
    assert store.blocked_creatives()[0]["override"]["reviewer"] == "ann"
    assert store.creative_image_sha("cr1")


# ------------------------------------------------------------------ end to end
def _studio(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "studio", *args], capture_output=True, text=True,
                          env=python_env(), timeout=600)


def test_a_flagged_creative_is_blocked_recorded_and_never_served(store_dir, tmp_path):
    """The detector's real scores on the shared store's renders: a threshold between the
    highest and the next makes the highest-scoring render a flagged one. The same batch
    (same renders) with that threshold blocks it: recorded with its reason, never an arm's
    creative, never returned by /v1/select nor its image URL; `studio safety list` shows
    it; after an override and the next batch it is served."""
    from studio.serving.api import create_app
    from studio.serving.service import SelectionService

    scores = sorted((r["manifest"]["safety"]["nsfw"]["score"], r["creative_id"])
                    for r in Store(store_dir).creatives())
    (second, _), (top, flagged) = scores[-2:]
    assert top - second > 0.01, scores[-2:]  # a margin the renders' scores cannot cross
    threshold = round((top + second) / 2, 6)
    target = tmp_path / "store"
    batch = ("batch", str(REPO / "assets/demo/catalog.csv"), "--audience",
             str(store_dir.parent / "clusters.json"), "--store", str(target), "--per-cluster",
             "2", "--size", "64", "--engine", "backdrop", "--no-watermark",
             "--nsfw-threshold", str(threshold))
    assert _studio(*batch).returncode == 0

    store = Store(target)
    rows = {r["creative_id"]: r for r in store.creatives()}
    assert [c for c, r in rows.items() if r["blocked"]] == [flagged]
    row = rows[flagged]
    assert row["manifest"]["safety"]["reasons"][0].startswith(f"nsfw score {top:.2f}")
    assert row["selected"] == 0 and flagged not in store.selected_creatives().values()
    service = SelectionService.open(store)
    key = (row["product_id"], row["prompt_id"], row["format"])
    assert service.creative_of(*key) is None
    with TestClient(create_app(str(target), api_key="k")) as client:
        for i in range(60):
            response = client.post("/v1/select", headers={"Authorization": "Bearer k"},
                                   json={"product_id": row["product_id"],
                                         "cluster_id": row["cluster_id"]})
            assert response.status_code == 200 and response.json()["creative_id"] != flagged
        assert client.get(f"/v1/creatives/{flagged}").status_code == 404

    listed = _studio("safety", "list", "--store", str(target))
    assert listed.returncode == 0
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert record["creative_id"] == flagged and record["override"] is None
    assert "nsfw score" in record["reasons"][0]
    refused = _studio("safety", "override", flagged, "--store", str(target), "--reviewer",
                      "ann", "--reason", " ")
    assert refused.returncode == 2 and "needs a reason" in refused.stderr
    done = _studio("safety", "override", flagged, "--store", str(target), "--reviewer", "ann",
                   "--reason", "a product shot; the detector's score is noise")
    assert done.returncode == 0 and "after the next `studio batch`" in done.stdout
    assert flagged not in Store(target).selected_creatives().values()  # not before the batch

    assert _studio(*batch).returncode == 0
    store = Store(target)
    assert store.selected_creatives()[key] == flagged
    service = SelectionService.open(store)
    assert service.creative_of(*key) == flagged


def test_store_copy_keeps_blocks_and_overrides(tmp_path, postgres_dsn, fresh_store):
    """`studio store copy` carries the safety gate's verdicts: a blocked creative stays
    blocked in the copy, an overridden one stays overridden (with who and why)."""
    from typer.testing import CliRunner

    from studio.cli import app

    source = Store(fresh_store)
    first, second = [c["creative_id"] for c in source.creatives()][:2]
    with source.transaction() as tx:  # as if the gate had blocked both at render time
        tx.execute("UPDATE creatives SET blocked = 1 WHERE creative_id IN (?, ?)",
                   (first, second))
    source.override_safety(second, "reviewer", "a plain product shot")
    result = CliRunner().invoke(app, ["store", "copy", str(fresh_store), postgres_dsn,
                                      "--store-folder", str(tmp_path / "pg")])
    assert result.exit_code == 0, result.output
    copied = Store(postgres_dsn)
    assert copied.blocked_creatives() == source.blocked_creatives()
    held = {c["creative_id"]: c["servable"] for c in copied.creatives()}
    assert held[first] is False and held[second] is True


def test_the_demos_nearest_miss_stays_under_the_default_threshold():
    """The highest score measured on the project's own renders: the demo's bottle on a
    checked picnic blanket at feed-4:5 (0.49). The default keeps a margin above it."""
    from pipelines.engines import load_engine
    from studio.creatives.render import RenderOptions, finish, prepare, render

    engine = load_engine("backdrop")[0]
    product = load_product(REPO / "assets" / "products" / "bottle.png")
    options = RenderOptions(prompt="a bottle on a checked picnic blanket, in a sunny family "
                            "kitchen, golden hour sunlight", preset="feed-4:5", seed=0,
                            anchor="bottom", watermark=False)
    placed = prepare(product, options)
    safety = finish(render(placed, options, engine)[0], placed, product, options,
                    engine).manifest["safety"]
    assert safety["nsfw"]["score"] < DEFAULT - 0.15 and not safety["blocked"], safety
