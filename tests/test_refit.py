"""Refitting a CTR model on new clicks, warm-started from it (reward.refit)."""

from __future__ import annotations

import numpy as np
import pytest

from reward import CTRModel, RewardError, refit


def _world(seed=0, n_creatives=12):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n_creatives, 13))
    text = rng.normal(size=(n_creatives, 24))
    contexts = rng.normal(size=(3, 6))
    return image, text, contexts


def _past_model(image, text, contexts, seed=0):
    rng = np.random.default_rng(seed)
    creative = rng.integers(0, len(image), 30_000)
    cluster = rng.integers(0, len(contexts), 30_000)
    logit = -3.5 + 0.4 * image[creative, 0]
    clicks = (rng.random(30_000) < 1 / (1 + np.exp(-logit))).astype(float)
    return CTRModel(context_components=3, text_components=4).fit(
        contexts[cluster], image, text, clicks, creative=creative)


def _rows(contexts, creatives, rates, impressions):
    cluster = np.zeros(len(creatives), dtype=np.int64)
    shown = np.full(len(creatives), float(impressions))
    return contexts[cluster], np.asarray(creatives), np.round(np.asarray(rates) * shown), shown


def test_refit_moves_the_ranking_to_what_the_new_clicks_say():
    image, text, contexts = _world()
    past = _past_model(image, text, contexts)
    scores = past.predict_ctr(contexts[[0] * 12], image, text, creative=np.arange(12))
    best, worst = int(np.argmax(scores)), int(np.argmin(scores))
    # The campaign says the opposite: the past model's worst creative is the best now.
    context, creative, clicks, shown = _rows(contexts, [best, worst], [0.01, 0.05], 5000)
    new = refit(past, context, image, text, clicks, shown, creative=creative,
                groups=["g", "g"], pairwise_weight=1.0)
    after = new.predict_ctr(contexts[[0, 0]], image, text, creative=np.array([best, worst]))
    assert after[1] > after[0]
    assert new.metadata_["refit"]["pairs"] == 1 and new.metadata_["refit"]["impressions"] == 10_000
    assert np.array_equal(past.coef_, _past_model(image, text, contexts).coef_)  # past untouched


def test_refit_stays_near_the_past_model_when_the_clicks_agree():
    image, text, contexts = _world(1)
    past = _past_model(image, text, contexts, seed=1)
    creatives = np.arange(12)
    expected = past.predict_ctr(contexts[[0] * 12], image, text, creative=creatives)
    context, creative, clicks, shown = _rows(contexts, creatives, expected, 2000)
    new = refit(past, context, image, text, clicks, shown, creative=creative,
                groups=["g"] * 12)
    after = new.predict_ctr(contexts[[0] * 12], image, text, creative=creatives)
    assert np.corrcoef(after, expected)[0, 1] > 0.95
    assert np.abs(after - expected).max() < 0.01


def test_the_pairwise_term_learns_order_within_a_group_not_the_level():
    image, text, contexts = _world(2)
    past = _past_model(image, text, contexts, seed=2)
    scores = past.predict_ctr(contexts[[0] * 12], image, text, creative=np.arange(12))
    order = np.argsort(scores)
    pair = np.array([int(order[-1]), int(order[0])])
    before = past.predict_ctr(contexts[[0, 0]], image, text, creative=pair)
    # The campaign's clicks flip the pair's order, at a level three times the past's.
    level = 3 * before.mean()
    context, creative, clicks, shown = _rows(contexts, pair, [0.8 * level, 1.2 * level], 4000)
    fitted = {}
    for name, weights in (("pairwise", (1.0, 0.0)), ("pointwise", (0.0, 1.0))):
        new = refit(past, context, image, text, clicks, shown, creative=creative,
                    groups=["g", "g"], pairwise_weight=weights[0], pointwise_weight=weights[1])
        fitted[name] = new.predict_ctr(contexts[[0, 0]], image, text, creative=pair)
    assert fitted["pairwise"][1] > fitted["pairwise"][0]  # the order is learnt
    assert abs(fitted["pairwise"].mean() - before.mean()) < 0.5 * abs(fitted["pointwise"].mean()
                                                                      - before.mean())


def test_a_refit_model_saves_and_loads_like_any_other(tmp_path):
    image, text, contexts = _world(3)
    past = _past_model(image, text, contexts, seed=3)
    context, creative, clicks, shown = _rows(contexts, [0, 1, 2], [0.01, 0.02, 0.04], 3000)
    new = refit(past, context, image, text, clicks, shown, creative=creative, groups=["g"] * 3)
    new.save(tmp_path / "refit.npz")
    loaded = CTRModel.load(tmp_path / "refit.npz")
    rows = np.arange(12)
    assert np.allclose(loaded.predict_ctr(contexts[[1] * 12], image, text, creative=rows),
                       new.predict_ctr(contexts[[1] * 12], image, text, creative=rows))
    assert loaded.metadata_["refit"]["rows"] == 3


def test_bad_refit_input_fails_clearly():
    image, text, contexts = _world(4)
    past = _past_model(image, text, contexts, seed=4)
    before = past.coef_.copy()
    context, creative, clicks, shown = _rows(contexts, [0, 1], [0.01, 0.02], 1000)
    cases = [
        (dict(clicks=[5.0, 2000.0]), "clicks <= impressions"),
        (dict(impressions=[1000.0, 0.0]), "impressions > 0"),
        (dict(clicks=[np.nan, 1.0]), "clicks <= impressions"),
        (dict(pairwise_weight=-1.0), "must be finite numbers >= 0"),
        (dict(pairwise_weight=0.0, pointwise_weight=0.0), "cannot both be 0"),
        (dict(groups=["g"]), "groups has 1 labels"),
        (dict(clicks=[1.0]), "differ in rows"),
    ]
    for change, message in cases:
        kwargs = dict(clicks=clicks, impressions=shown, creative=creative, groups=["g", "g"])
        kwargs.update(change)
        with pytest.raises(RewardError, match=message):
            refit(past, context, image, text, kwargs.pop("clicks"), kwargs.pop("impressions"),
                  **kwargs)
    with pytest.raises(RewardError, match="not fitted"):
        refit(CTRModel(), context, image, text, clicks, shown, creative=creative)
    assert np.array_equal(past.coef_, before)


def test_the_campaign_refit_moves_only_as_far_as_held_out_creatives_support():
    """``learning.refit``: a signal that holds across creatives (bright creatives are
    clicked more) is validated on held-out creatives and kept (scale > 0); the scale
    tried on held-out creatives is recorded."""
    from studio.creatives.records import CreativeRecord
    from studio.inputs.audience import Audience
    from studio.inputs.tables import load_users
    from studio.learning.refit import SCALES, refit_on_clicks
    from studio.learning.scoring import creative_tables
    from conftest import REPO

    users = load_users(REPO / "assets" / "demo" / "users.csv").head(400)
    audience = Audience(2).fit(users)
    rng = np.random.default_rng(0)
    records = {}
    for i in range(16):
        level = int(30 + 14 * i)
        image = np.full((48, 48, 3), level, np.uint8)
        mask = np.zeros((48, 48), bool)
        mask[16:32, 16:32] = True
        records[f"c{i}"] = CreativeRecord(f"c{i}", "mug", "1:1", f"a mug in scene {i % 4}", image, mask)
    image, text = creative_tables(list(records.values()))
    # A past model that knows nothing of brightness: trained on clicks independent of it.
    index = rng.integers(0, 16, 20_000)
    cluster = rng.integers(0, 2, 20_000)
    past = CTRModel(context_components=2, text_components=2).fit(
        audience.centroids_[cluster], image, text, (rng.random(20_000) < 0.02).astype(float),
        creative=index)
    clicks = [{"cluster_id": c, "arm_id": key, "creative_id": key, "impressions": 6000,
               "clicks": float(rng.binomial(6000, 0.005 + 0.0025 * i))}
              for c in (0, 1) for i, key in enumerate(records)]
    new = refit_on_clicks(past, clicks, records, audience)
    assert new.metadata_["refit"]["scale"] in SCALES and new.metadata_["refit"]["scale"] > 0
    assert set(new.metadata_["refit"]["held_out_log_likelihood"]) == {str(s) for s in SCALES}
    scores = new.predict_ctr(audience.centroids_[[0] * 16], image, text, creative=np.arange(16))
    assert np.corrcoef(scores, np.arange(16))[0, 1] > 0.8
    assert refit_on_clicks(past, [], records, audience) is past
