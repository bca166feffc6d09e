"""The learning loop: rounds retire (only what the clicks condemn), breed, refit, add and
warm-start arms as recorded; rollback; the loop in the world at equal arms."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import REPO
from reward import CTRModel
from typer.testing import CliRunner
from studio.cli import app
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.learning.batch import BatchSettings, run_batch
from studio.errors import StudioError
from studio.learning.evolve import EvolveSettings, catalog_images, evolve, rollback, rounds
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
    record = evolve(store, catalog_images=catalog_images(CATALOG),
                    settings=EvolveSettings(candidates=2, rule="lowest", min_arms=1, refit=False),
                    engine="backdrop", size="64", reward_model=str(reward_model),
                    echo=lambda m: None)
    after = _active(store)
    assert record["round"] == 1 and len(record["pools"]) == 25
    for pool in record["pools"]:
        assert len(pool["retired"]) == 1 and len(pool["added"]) == 1
        assert pool["retired"][0] not in after and pool["added"][0] in after
        # The lowest posterior mean goes (prior pseudo-impressions plus the clicks).
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


LOWEST = EvolveSettings(candidates=2, rule="lowest", min_arms=1)


def test_rollback_restores_the_previous_pool(store):
    before = _active(store)
    images = catalog_images(CATALOG)
    evolve(store, catalog_images=images, settings=LOWEST, engine="backdrop", size="64",
           echo=lambda m: None)
    after_one = _active(store)
    evolve(store, catalog_images=images, settings=LOWEST, engine="backdrop", size="64",
           echo=lambda m: None)
    assert _active(store) != after_one
    assert rollback(store, 1) == 25 and _active(store) == after_one
    assert rollback(store, 0) == 25 and _active(store) == before
    assert rounds(store) == []


def test_guidelines_hold_for_every_evolved_prompt(store):
    rules = Guidelines.from_dict({"banned_words": ["mossy rock", "marble"],
                                  "required_words": ["handcrafted"], "max_length": 200})
    record = evolve(store, catalog_images=catalog_images(CATALOG), settings=LOWEST,
                    engine="backdrop", size="64", guidelines=rules, echo=lambda m: None)
    added = [a for pool in record["pools"] for a in pool["candidate_scores"]]
    texts = [store.query("SELECT text FROM prompts WHERE prompt_id = ?", (a,))[0][0] for a in added]
    assert texts and all(rules.violations(t) == [] for t in texts)


def test_bad_settings_and_missing_images_fail_clearly(store):
    before = _active(store)
    for bad, message in (({"candidates": 0}, "candidates must be"), ({"rule": "worst"}, "rule must"),
                         ({"min_impressions": -1}, "min-impressions"), ({"mutation": 1.5}, "mutation"),
                         ({"breeding": "clone"}, "breeding must"), ({"min_arms": 0}, "min-arms"),
                         ({"pairwise_weight": float("nan")}, "pairwise-weight")):
        with pytest.raises(StudioError, match=message):
            EvolveSettings(**bad)
    with pytest.raises(StudioError, match="no image for product"):
        evolve(store, catalog_images={}, engine="backdrop")
    assert _active(store) == before and rounds(store) == []
    result = CliRunner().invoke(app, ["evolve", "--store", str(store.root), "--rule", "worst",
                                      "--engine", "backdrop"])
    assert result.exit_code == 2 and "rule must be one of" in result.stderr
    assert _active(store) == before and rounds(store) == []


def test_blocked_candidates_are_never_added(store, reward_model):
    """With the safety gate set to block everything, every new creative is held: no
    candidate becomes an arm, no arm retires for lack of a replacement, and none of the
    round's creatives is selected."""
    from studio.creatives.safety import SafetySettings

    before = _active(store)
    record = evolve(store, catalog_images=catalog_images(CATALOG),
                    settings=EvolveSettings(candidates=1, rule="lowest", min_arms=1),
                    engine="backdrop", size="64", reward_model=str(reward_model),
                    safety=SafetySettings(0.0), echo=lambda m: None)
    assert all(pool["added"] == [] and pool["retired"] == [] for pool in record["pools"])
    assert _active(store) == before
    new = [c for c in store.creatives() if c["job_key"].startswith("evolve|")]
    assert new and all(not c["servable"] and not c["selected"] for c in new)
    result = CliRunner().invoke(app, ["evolve", "--store", str(store.root), "--nsfw-threshold",
                                      "2", "--engine", "backdrop"])
    assert result.exit_code == 2 and "from 0 to 1" in result.stderr


# ---------------------------------------------------------------- retirement rule
def _arm(name, impressions, clicks, prior=0.02, strength=100.0):
    from studio.learning.retirement import ArmEvidence

    return ArmEvidence(name, impressions, clicks, prior, strength)


def test_an_arm_retires_only_where_its_clicks_condemn_it():
    from studio.learning.retirement import choose_retirements

    # Few impressions: nothing is known, nothing retires (the old rule retired anyway).
    thin = [_arm("a", 300, 9), _arm("b", 250, 4), _arm("c", 100, 1), _arm("d", 80, 2)]
    assert choose_retirements(thin, min_impressions=2000) == []
    assert [a for a, _ in choose_retirements(thin, rule="lowest")] == ["c"]
    # A confident gap: c's upper bound is below a's lower bound.
    gap = [_arm("a", 20_000, 800), _arm("b", 3000, 90), _arm("c", 4000, 20), _arm("d", 100, 2)]
    (retired, why), = choose_retirements(gap, min_impressions=10**6)
    assert retired == "c" and "upper bound" in why and "lower bound" in why
    # Given its chance: the last of the arms with min_impressions goes; a newer arm with a
    # lower mean (d, 100 impressions) is not judged yet.
    chance = [_arm("a", 5000, 150), _arm("b", 3000, 80), _arm("c", 2500, 55), _arm("d", 100, 1)]
    (retired, why), = choose_retirements(chance, min_impressions=2000)
    assert retired == "c" and "2000+ impressions" in why
    # The best never retires, the pool never drops below min_arms, at most `retire` go.
    assert choose_retirements(gap[:2], min_arms=2) == []
    two = choose_retirements([_arm("a", 50_000, 2000), _arm("b", 9000, 10), _arm("c", 9000, 12)],
                             retire=5, min_arms=1, min_impressions=0)
    assert {a for a, _ in two} == {"b", "c"}
    with pytest.raises(ValueError, match="rule must be one of"):
        choose_retirements(thin, rule="worst")


def test_posterior_mean_counts_the_prior_as_impressions():
    arm = _arm("a", 900, 45, prior=0.02, strength=100.0)
    assert arm.posterior_mean == pytest.approx((100 * 0.02 + 45) / 1000)
    low, high = arm.bounds(1.96)
    assert low < 45 / 900 < high and 0 <= low and high <= 1


# --------------------------------------------------------------------- breeding
def test_children_inherit_the_winners_slots_and_carry_their_lineage(store):
    from studio.learning.breeding import breed
    from studio.prompts import SLOTS

    rows = store.prompt_records()
    arm = next(iter(store.active_arms()))
    category, cluster_id = rows[arm]["category"], rows[arm]["cluster_id"]
    winners = [(a, json.loads(rows[a]["tags"])) for a, r in rows.items()
               if r["category"] == category and r["cluster_id"] == cluster_id][:2]
    cluster = next(c for c in store.audience().clusters_ if c.id == cluster_id)
    existing = {r["text"] for r in rows.values()}
    children = breed(category, cluster, winners, existing, 4, Guidelines(), mutation=0.0, seed=1)
    assert len(children) == 4 and len({t for t, _ in children}) == 4
    bred = [(t, tags) for t, tags in children if tags["parents"]]
    assert bred  # two winners have few new mixes: the rest are fresh template prompts
    for text, tags in children:
        assert text not in existing and tags["mutated"] == []
    for text, tags in bred:
        for slot in SLOTS:  # every slot comes from a parent named in the lineage
            assert tags[slot] in {w[1][slot] for w in winners if w[0] in tags["parents"]}
    mutated = breed(category, cluster, winners, existing, 6, Guidelines(), mutation=1.0, seed=2)
    assert all(set(tags["mutated"]) == set(SLOTS) for _, tags in mutated)
    # A winner without slot tags (a hand-written prompt) cannot be bred: fresh prompts.
    fresh = breed(category, cluster, [("x", {"writer": "llm"})], existing, 2, Guidelines(), seed=3)
    assert len(fresh) == 2 and all(tags["parents"] == [] for _, tags in fresh)
    with pytest.raises(ValueError, match="breeding must be one of"):
        breed(category, cluster, winners, existing, 2, Guidelines(), how="clone")


# ------------------------------------------------------------- a round from clicks
def _clicks_condemning_one_arm(store, pool_index=0):
    """Clicks in which one pool's best-prior arm is clearly best and another clearly last."""
    arms = store.active_arms()
    pools = {}
    for arm_id, arm in arms.items():
        pools.setdefault((arm["category"], arm["cluster_id"]), []).append(arm_id)
    (category, cluster_id), members = sorted(pools.items())[pool_index]
    creative = {r["prompt_id"]: r["creative_id"] for r in store.creatives(selected_only=True)}
    good, bad = members[0], members[1]
    rows = [{"cluster_id": cluster_id, "arm_id": good, "creative_id": creative[good],
             "impressions": 20_000, "clicks": 900.0},
            {"cluster_id": cluster_id, "arm_id": bad, "creative_id": creative[bad],
             "impressions": 5000, "clicks": 25.0}]
    return rows, (category, cluster_id), good, bad


def test_a_confident_round_replaces_only_the_condemned_arm(store, reward_model, tmp_path):
    clicks, pool_key, good, bad = _clicks_condemning_one_arm(store)
    before = _active(store)
    out = tmp_path / "refit.npz"
    record = evolve(store, catalog_images=catalog_images(CATALOG), settings=EvolveSettings(candidates=3),
                    engine="backdrop", size="64", reward_model=reward_model, clicks=clicks,
                    refit_out=out, echo=lambda m: None)
    changed = [p for p in record["pools"] if p["retired"]]
    assert [(p["category"], p["cluster_id"]) for p in changed] == [pool_key]
    entry = changed[0]
    assert entry["retired"] == [bad] and "upper bound" in entry["reasons"][bad]
    assert good in entry["kept"] and entry["evidence"][bad] == [5000, 25.0]
    assert len(entry["candidate_scores"]) == 3 and len(entry["added"]) == 1
    # Only the changed pool rendered candidates; the others kept every arm, with a reason.
    new = [c for c in store.creatives() if c["job_key"].startswith("evolve|")]
    assert {c["cluster_id"] for c in new} == {pool_key[1]} and len(new) == 3
    assert all("no arm is condemned" in p["reason"] for p in record["pools"] if not p["retired"])
    assert _active(store) == before - {bad} | set(entry["added"])
    # The candidates were scored by the refitted model, saved where asked; it warm-starts the arm.
    assert record["scorer"] == "refit" and out.is_file()
    refitted, past = CTRModel.load(out), CTRModel.load(reward_model)
    assert refitted.metadata_["refit"]["impressions"] == 25_000
    # Two creatives are too few to validate a refit on held-out creatives: it is scaled
    # to nothing and the past model's coefficients come back.
    assert refitted.metadata_["refit"]["scale"] == 0.0
    assert np.allclose(refitted.coef_, past.coef_)
    added = entry["added"][0]
    prior = store.query("SELECT prior_ctr FROM arms WHERE arm_id = ?", (added,))[0][0]
    assert prior == pytest.approx(entry["candidate_scores"][added])
    # The child carries its slots and lineage: it can be a parent next round.
    tags = json.loads(store.prompt_records()[added]["tags"])
    assert tags["round"] == 1 and "parents" in tags and "scene" in tags


def test_the_cli_evolves_from_the_store_log_and_saves_the_refit(store, reward_model, tmp_path):
    service = SelectionService.open(store)
    for i in range(30):
        chosen = service.select("mug", cluster_id=i % 5)
        service.feedback(chosen.event_id, float(i % 4 == 0))
    logged = store.creative_clicks()
    assert sum(r["impressions"] for r in logged) == 30
    model = tmp_path / "ctr.npz"
    shutil.copy(reward_model, model)
    result = CliRunner().invoke(app, ["evolve", "--store", str(store.root), "--engine", "backdrop",
                                      "--size", "64", "--reward-model", str(model), "--rule",
                                      "lowest", "--min-arms", "1", "--candidates", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ctr.round-1.npz").is_file() and "refitted reward model" in result.output
    shown = CliRunner().invoke(app, ["evolve", "--store", str(store.root), "--show"])
    assert "lowest posterior mean" in shown.output
