"""Reward features, the CTR model, its persistence and metrics, data loaders, CLIP."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reward import (IMAGE_FEATURES, CTRModel, FeatureCache, RewardError, evaluate_scores,
                    expected_calibration_error, image_features, pairwise_accuracy)
from reward.creative_ranking import load_creative_ranking

RANGES = {"brightness": (0, 1), "contrast": (0, 1), "saturation": (0, 1),
          "colourfulness": (0, 1), "warmth": (-1, 1), "hue_cos": (-1, 1), "hue_sin": (-1, 1),
          "edge_density": (0, 1), "clutter": (0, 1), "product_area": (0, 1),
          "product_x": (0, 1), "product_y": (0, 1), "aspect": (0, 10)}


def _creative(colour=(200, 120, 60), size=(96, 128), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    h, w = size
    image = np.empty((h, w, 3), np.float64)
    image[...] = colour
    image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), bool)
    mask[h // 3: 2 * h // 3, w // 3: 2 * w // 3] = True
    image[mask] = (20, 20, 200)
    return image, mask


def test_features_are_named_deterministic_and_in_range():
    assert len(IMAGE_FEATURES) == len(RANGES) and set(IMAGE_FEATURES) == set(RANGES)
    for colour, noise in [((250, 250, 250), 0), ((10, 10, 10), 0), ((200, 60, 30), 40),
                          ((30, 90, 220), 80)]:
        image, mask = _creative(colour, noise=noise)
        a, b = image_features(image, mask), image_features(image.copy(), mask.copy())
        assert np.array_equal(a, b)
        for name, value in zip(IMAGE_FEATURES, a):
            low, high = RANGES[name]
            assert low <= value <= high, (name, value)
    values = dict(zip(IMAGE_FEATURES, image_features(*_creative())))
    assert values["product_area"] == pytest.approx(1 / 9, abs=0.01)
    assert values["product_x"] == pytest.approx(0.5, abs=0.02)
    assert values["aspect"] == pytest.approx(128 / 96)


def test_features_respond_to_what_is_in_the_pixels():
    warm = dict(zip(IMAGE_FEATURES, image_features(*_creative((220, 140, 60)))))
    cool = dict(zip(IMAGE_FEATURES, image_features(*_creative((60, 140, 220)))))
    busy = dict(zip(IMAGE_FEATURES, image_features(*_creative((128, 128, 128), noise=60))))
    calm = dict(zip(IMAGE_FEATURES, image_features(*_creative((128, 128, 128)))))
    assert warm["warmth"] > 0.3 > -0.3 > cool["warmth"]
    assert busy["clutter"] > calm["clutter"] and busy["edge_density"] >= calm["edge_density"]


@pytest.mark.parametrize("image,mask,pattern", [
    (np.zeros((32, 32, 3), np.float32), np.ones((32, 32), bool), "uint8"),
    (np.zeros((32, 32), np.uint8), np.ones((32, 32), bool), "HxWx3"),
    (np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), bool), "too small"),
    (np.zeros((32, 32, 3), np.uint8), np.ones((16, 32), bool), "mask is"),
    (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), bool), "empty"),
    (np.zeros((32, 32, 3), np.uint8), np.ones((32, 32), bool), "whole image"),
])
def test_bad_images_and_masks_are_refused(image, mask, pattern):
    with pytest.raises(RewardError, match=pattern):
        image_features(image, mask)


def test_feature_cache_returns_the_same_values():
    cache = FeatureCache()
    image, mask = _creative(noise=10)
    first = cache.image(image, mask)
    assert cache.image(image, mask) is first
    assert np.array_equal(first, image_features(image, mask))


def _synthetic(n=20_000, seed=0, creatives=30):
    """Contexts × creatives with a known logit: taste · creative attributes."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(4, 3))
    users = rng.integers(0, 4, n)
    context = np.eye(4)[users] + rng.normal(0, 0.05, (n, 4))
    image = rng.normal(size=(creatives, 5))
    text = rng.normal(size=(creatives, 20))
    creative = rng.integers(0, creatives, n)
    attributes = np.hstack([image[:, :2], text[:, :1]])
    logit = -2.5 + (taste[users] * attributes[creative]).sum(axis=1)
    truth = 1 / (1 + np.exp(-logit))
    clicks = (rng.random(n) < truth).astype(float)
    return context, image, text, creative, clicks, truth, users


def test_model_beats_a_constant_baseline_and_is_calibrated():
    context, image, text, creative, clicks, truth, users = _synthetic()
    train, test = slice(0, 15_000), slice(15_000, None)
    model = CTRModel(context_components=4, text_components=4).fit(
        context[train], image, text, clicks[train], creative=creative[train])
    metrics = model.evaluate(context[test], image, text, clicks[test], creative=creative[test],
                             groups=users[test], creative_ids=creative[test])
    constant = evaluate_scores(np.full(5000, clicks[train].mean()), clicks[test])
    oracle = evaluate_scores(truth[test], clicks[test])
    assert metrics["auc"] > constant["auc"] + 0.15
    assert metrics["auc"] > 0.9 * oracle["auc"]
    assert metrics["log_loss"] < constant["log_loss"]
    assert metrics["ece"] < 0.02
    assert metrics["pairwise_acc"] > 0.6


def test_aggregated_rows_equal_expanded_impressions():
    context, image, text, creative, clicks, *_ = _synthetic(4000)
    # The same data as (context row, creative) aggregates with clicks out of impressions.
    model_rows = CTRModel(context_components=2, text_components=2).fit(
        context, image, text, clicks, creative=creative)
    doubled = CTRModel(context_components=2, text_components=2).fit(
        context, image, text, clicks * 2, np.full(4000, 2.0), creative=creative)
    p1 = model_rows.predict_ctr(context[:50], image, text, creative=creative[:50])
    p2 = doubled.predict_ctr(context[:50], image, text, creative=creative[:50])
    np.testing.assert_allclose(p1, p2, atol=0.02)


@pytest.mark.parametrize("calibration", ["none", "isotonic"])
def test_save_load_gives_identical_predictions(tmp_path, calibration):
    context, image, text, creative, clicks, *_ = _synthetic(6000)
    model = CTRModel(calibration=calibration).fit(context, image, text, clicks, creative=creative)
    model.metadata_ = {"clip": None, "note": "test"}
    path = tmp_path / "ctr.npz"
    model.save(path)
    loaded = CTRModel.load(path)
    a = model.predict_ctr(context, image, text, creative=creative)
    b = loaded.predict_ctr(context, image, text, creative=creative)
    assert np.array_equal(a, b) and loaded.metadata_["note"] == "test"


def test_foreign_and_damaged_model_files_are_refused(tmp_path):
    context, image, text, creative, clicks, *_ = _synthetic(3000)
    path = tmp_path / "ctr.npz"
    CTRModel().fit(context, image, text, clicks, creative=creative).save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["version"] = 7
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    other = tmp_path / "v7.npz"
    np.savez(other, **arrays)
    text_file = tmp_path / "x.npz"
    text_file.write_text("nope")
    partial = tmp_path / "partial.npz"
    np.savez(partial, meta=np.frombuffer(json.dumps({**meta, "version": 1}).encode(), np.uint8))
    for bad, pattern in [(other, "format version 7"), (text_file, "not a CTR model"),
                         (partial, "damaged"), (tmp_path / "none.npz", "does not exist")]:
        with pytest.raises(RewardError, match=pattern):
            CTRModel.load(bad)


def test_bad_training_input_fails_clearly():
    context, image, text, creative, clicks, *_ = _synthetic(500)
    cases = [
        (lambda: CTRModel().fit(context, image, text, np.zeros(500), creative=creative),
         "only clicks or only non-clicks"),
        (lambda: CTRModel().fit(context, image, text, clicks * 2, creative=creative),
         "must be 0 or 1"),
        (lambda: CTRModel().fit(context, image, text, clicks, np.zeros(500), creative=creative),
         "impressions > 0"),
        (lambda: CTRModel().fit(context[:10], image, text, clicks, creative=creative),
         "one integer index per context row"),
        (lambda: CTRModel().fit(context, image, text, clicks, creative=creative + 100),
         "creative indices"),
        (lambda: CTRModel().fit(context * np.nan, image, text, clicks, creative=creative),
         "NaN or inf"),
        (lambda: CTRModel(calibration="platt").fit(context, image, text, clicks,
                                                   creative=creative), "calibration"),
        (lambda: CTRModel().predict_ctr(context, image, text), "not fitted"),
    ]
    for call, pattern in cases:
        with pytest.raises(RewardError, match=pattern):
            call()
    model = CTRModel().fit(context, image, text, clicks, creative=creative)
    with pytest.raises(RewardError, match="fitted on 4"):
        model.predict_ctr(context[:, :3], image, text, creative=creative)


def test_metrics_on_known_cases():
    rates = np.array([0.1, 0.1, 0.5, 0.5])
    assert expected_calibration_error(rates, rates, np.ones(4), n_bins=2) == pytest.approx(0)
    assert expected_calibration_error(rates + 0.1, rates, np.ones(4), n_bins=2) == pytest.approx(0.1)
    groups = ["p", "p", "p", "q"]
    ids = ["a", "b", "c", "d"]
    assert pairwise_accuracy([0.1, 0.2, 0.3, 0.5], [0.0, 0.5, 1.0, 1.0], np.ones(4), groups, ids) == 1.0
    assert pairwise_accuracy([0.3, 0.2, 0.1, 0.5], [0.0, 0.5, 1.0, 1.0], np.ones(4), groups, ids) == 0.0


def test_creative_ranking_loader(tmp_path):
    path = tmp_path / "creative_ranking.csv"
    path.write_text("item_id\timage\tds\tpv\tclk\n"
                    "1001\t1001_a.jpg\t20200301\t120\t6\n"
                    "1001\t1001_a.jpg\t20200302\t80\t2\n"
                    "1001\t1001_b.jpg\t20200301\t100\t9\n"
                    "1002\t1002_a.jpg\t20200301\t50\t0\n")
    log = load_creative_ranking(path, images_dir=tmp_path / "images")
    assert list(log.columns) == ["product_id", "image", "day", "impressions", "clicks", "ctr",
                                 "image_path"]
    assert len(log) == 4 and log["ctr"].iloc[0] == pytest.approx(0.05)
    per_creative = load_creative_ranking(path, aggregate=True)
    assert len(per_creative) == 3
    row = per_creative[per_creative["image"] == "1001_a.jpg"].iloc[0]
    assert (row["impressions"], row["clicks"]) == (200, 8)
    accuracy = pairwise_accuracy(per_creative["ctr"], per_creative["ctr"],
                                 np.ones(len(per_creative)), per_creative["product_id"],
                                 per_creative["image"])
    assert accuracy == 1.0
    for content, pattern in [("item_id,image,ds,pv\n1,a,20200101,3\n", "lacks CreativeRanking columns: clk"),
                             ("item_id,image,ds,pv,clk\n1,a,20200101,3,5\n", "need 0 <= clk <= pv"),
                             ("item_id,image,ds,pv,clk\n1,a,2020-1,3,1\n", "not a YYYYMMDD date"),
                             ("item_id,image,ds,pv,clk\n1,a,20200101,x,1\n", "pv is not a number")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(content)
        with pytest.raises(RewardError, match=pattern):
            load_creative_ranking(bad)
    with pytest.raises(RewardError, match="images are missing"):
        load_creative_ranking(path, images_dir=tmp_path, check_images=True)


def test_clip_image_embeddings_from_a_local_model(tmp_path):
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig,
                              CLIPVisionConfig)

    from reward.clip import ClipImageEmbedder

    config = CLIPConfig(
        text_config=CLIPTextConfig(vocab_size=99, hidden_size=32, intermediate_size=37,
                                   num_hidden_layers=2, num_attention_heads=4).to_dict(),
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                       num_attention_heads=4, image_size=32,
                                       patch_size=8).to_dict(), projection_dim=16)
    CLIPModel(config).save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    embedder = ClipImageEmbedder(str(tmp_path))
    vectors = embedder([_creative()[0], _creative((20, 200, 20))[0]])
    assert vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert not np.allclose(vectors[0], vectors[1])
    with pytest.raises(RewardError, match="cannot load CLIP"):
        ClipImageEmbedder(str(tmp_path / "missing"))
