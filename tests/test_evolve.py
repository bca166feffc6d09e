"""The learning loop: rounds retire, add and warm-start arms as recorded; rollback."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO
from reward import CTRModel
from typer.testing import CliRunner
from studio.cli import app
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.learning.batch import BatchSettings, run_batch
from studio.errors import StudioError
from studio.learning.evolve import catalog_images, evolve, rollback, rounds
from studio.inputs.guidelines import Guidelines
from studio.serving.service import SelectionService
from studio.store import Store

CATALOG = REPO / "assets" / "demo" / "catalog.csv"
USERS = REPO / "assets" / "demo" / "users.csv"


@pytest.fixture(scope="module")
def base_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("evolve")
    clusters = root / "clusters.json"
    Audience(5).fit(load_users(USERS)).save(clusters)
    run_batch(CATALOG, clusters, root / "store",
              BatchSettings(per_cluster=3, top_m=3, size="64", engine="backdrop", watermark=False),
              echo=lambda m: None)
    return root / "store"


@pytest.fixture(scope="module")
def reward_model(base_store, tmp_path_factory):
    """A reward model of a simulated past (other users of a drifted world)."""
    from studio.simulation.past import Creatives, train_past_model
    from studio.simulation.population import make_users
    from studio.simulation.world import World

    store = Store(base_store)
    model = train_past_model(World(0), Creatives.from_store(store), make_users(2000, seed=5),
                             store.audience(), impressions=50_000)
    path = tmp_path_factory.mktemp("model") / "reward.npz"
    model.save(path)
    return path


@pytest.fixture
def store(base_store, tmp_path):
    shutil.copytree(base_store, tmp_path / "store")
    return Store(tmp_path / "store")


def _active(store):
    return {r[0] for r in store.query("SELECT arm_id FROM arms WHERE active = 1")}


def test_a_round_retires_adds_and_warm_starts_as_recorded(store, reward_model):
    service = SelectionService.open(store)
    for i in range(40):  # some traffic so that the learned means differ
        chosen = service.select("mug", cluster_id=i % 5)
        service.feedback(chosen.event_id, float(i % 3 == 0))
    service.snapshot()
    before = _active(store)
    record = evolve(store, catalog_images=catalog_images(CATALOG), per_cluster=2, retire=1,
                    engine="backdrop", size="64", reward_model=str(reward_model),
                    echo=lambda m: None)
    after = _active(store)
    assert record["round"] == 1 and len(record["pools"]) == 25
    for pool in record["pools"]:
        assert len(pool["retired"]) == 1 and len(pool["added"]) == 1
        assert pool["retired"][0] not in after and pool["added"][0] in after
        # The lowest learned mean goes (unplayed arms without a prior tie at 0).
        assert pool["values"][pool["retired"][0]] == min(pool["values"].values())
        best_new = max(pool["candidate_scores"], key=pool["candidate_scores"].get)
        assert pool["added"] == [best_new]
        prior, strength = store.query("SELECT prior_ctr, prior_impressions FROM arms "
                                      "WHERE arm_id = ?", (best_new,))[0]
        assert prior == pytest.approx(pool["candidate_scores"][best_new])  # warm start
        assert strength == pytest.approx(CTRModel.load(reward_model).metadata_["prior_impressions"])
    assert len(after) == len(before)  # one out, one in per pool
    # The retired arms keep their logged events; the service serves the new pool.
    assert store.counts()["events"] == 40
    restarted = SelectionService.open(store)
    assert set(restarted.arms) == after
    category = restarted.products["mug"]
    new_arm = next(p["added"][0] for p in record["pools"] if p["category"] == category)
    _, expected, _ = restarted.cluster_estimate(
        category, next(p["cluster_id"] for p in record["pools"] if p["added"][0] == new_arm),
        [new_arm])
    assert expected[0] == pytest.approx(
        store.query("SELECT prior_ctr FROM arms WHERE arm_id = ?", (new_arm,))[0][0], rel=0.2)
    assert [r["round"] for r in rounds(store)] == [1] * 25
    # Every pool serves every one of its active arms for every product of its category
    # (each pool's new creatives are selected, whatever the order of the pools).
    for product, category in restarted.products.items():
        for cluster in restarted.clusters:
            active = {a for a, arm in restarted.arms.items()
                      if arm["category"] == category and arm["cluster_id"] == cluster}
            assert set(restarted.candidates(product, cluster, "1:1")) == active


def test_rollback_restores_the_previous_pool(store):
    before = _active(store)
    images = catalog_images(CATALOG)
    evolve(store, catalog_images=images, engine="backdrop", size="64", echo=lambda m: None)
    after_one = _active(store)
    evolve(store, catalog_images=images, engine="backdrop", size="64", echo=lambda m: None)
    assert _active(store) != after_one
    assert rollback(store, 1) == 25 and _active(store) == after_one
    assert rollback(store, 0) == 25 and _active(store) == before
    assert rounds(store) == []


def test_guidelines_hold_for_every_evolved_prompt(store):
    rules = Guidelines.from_dict({"banned_words": ["mossy rock", "marble"],
                                  "required_words": ["handcrafted"], "max_length": 200})
    record = evolve(store, catalog_images=catalog_images(CATALOG), engine="backdrop", size="64",
                    guidelines=rules, echo=lambda m: None)
    added = [a for pool in record["pools"] for a in pool["candidate_scores"]]
    texts = [store.query("SELECT text FROM prompts WHERE prompt_id = ?", (a,))[0][0] for a in added]
    assert texts and all(rules.violations(t) == [] for t in texts)


def test_bad_settings_and_missing_images_fail_clearly(store):
    with pytest.raises(StudioError, match="per-cluster >= 1"):
        evolve(store, catalog_images={}, per_cluster=0)
    with pytest.raises(StudioError, match="no image for product"):
        evolve(store, catalog_images={}, engine="backdrop")


def test_blocked_candidates_are_never_added(store, reward_model):
    """With the safety gate set to block everything, every new creative is held: no
    candidate becomes an arm, no arm retires for lack of a replacement, and none of the
    round's creatives is selected."""
    from studio.creatives.safety import SafetySettings

    before = _active(store)
    record = evolve(store, catalog_images=catalog_images(CATALOG), per_cluster=1, retire=1,
                    engine="backdrop", size="64", reward_model=str(reward_model),
                    safety=SafetySettings(0.0), echo=lambda m: None)
    assert all(pool["added"] == [] and pool["retired"] == [] for pool in record["pools"])
    assert _active(store) == before
    new = [c for c in store.creatives() if c["job_key"].startswith("evolve|")]
    assert new and all(not c["servable"] and not c["selected"] for c in new)
    result = CliRunner().invoke(app, ["evolve", "--store", str(store.root), "--nsfw-threshold",
                                      "2", "--engine", "backdrop"])
    assert result.exit_code == 2 and "from 0 to 1" in result.stderr
