"""Policies in the hidden-truth world: the served bandit against greedy-on-prior when the
prior is wrong, common random numbers, the oracles, and off-policy estimates on the
served log checked against the world's truth."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from studio.inputs.tables import load_users
from studio.serving.config import ServingConfig
from studio.simulation.arena import Arena
from studio.simulation.campaign import regret_at, run_campaign
from studio.simulation.evaluation import check_ope, paired_interval
from studio.simulation.policies import make_policies
from studio.simulation.world import SEGMENTS, World

#: The served policy overtakes greedy-on-prior within this many impressions when the
#: prior ranks every pool backwards (README, "Evidence").
HORIZON = 40_000
PROMPTS = ["a mug on a mossy rock in a forest", "a mug on white marble, gold light",
           "a mug in a sunny family kitchen with balloons", "a mug on a concrete plinth, overcast",
           "a mug on a linen cloth in a greenhouse", "a mug at a candlelit gala table",
           "a mug on a rocky riverbank at dawn", "a mug on recycled kraft paper, leaves"]


@pytest.fixture(scope="module")
def users():
    return load_users(REPO / "assets" / "demo" / "users.csv").iloc[:2000]


def make_arena(users, world: World, *, prior: str, strength: float = 100.0, arms: int = 4,
               seed: int = 0) -> Arena:
    """Two products of one category, one pool of ``arms`` prompts per segment (users are
    clustered by their planted segment), and priors that rank each pool truly
    (``prior="right"``: the true means) or backwards (``"wrong"``), each counted as
    ``strength`` impressions."""
    rng = np.random.default_rng(seed)
    products, pools, prompts, images, ids = ["mug", "cup"], {}, [], [], []
    table = {}
    for cluster in range(len(SEGMENTS)):
        chosen = rng.choice(len(PROMPTS), arms, replace=False)
        pools[("kitchenware", cluster)] = [f"arm{cluster}-{k}" for k in range(arms)]
        table[("kitchenware", cluster)] = np.zeros((2, arms), dtype=np.int64)
        for p, product in enumerate(products):
            for k, j in enumerate(chosen):
                table[("kitchenware", cluster)][p, k] = len(ids)
                ids.append(f"{product}-{cluster}-{k}")
                prompts.append(PROMPTS[j])
                images.append(np.full((32, 32, 3), rng.integers(0, 256, 3), np.uint8))
    clusters = np.array([SEGMENTS.index(s) for s in users["segment"]])
    seen = world.read(ids, prompts, images, ["1:1"] * len(ids))
    truth = world.population(users).ctr_matrix(seen)
    priors = {}
    for (category, cluster), names in pools.items():
        value = truth[clusters == cluster][:, table[(category, cluster)]].mean(axis=(0, 1))
        rank = np.argsort(np.argsort(value))  # 0 = the truly worst arm
        for k, name in enumerate(names):
            priors[name] = float(value[k] if prior == "right" else np.sort(value)[::-1][rank[k]])
    return Arena(store=None, users=users.reset_index(drop=True), placements=("1:1",),
                 products=products, category={p: "kitchenware" for p in products},
                 creative_ids=ids, prompts=prompts, images=images, formats=["1:1"] * len(ids),
                 rewards=np.zeros(len(ids)), pools=pools, prior=priors,
                 prior_impressions={name: strength for names in pools.values() for name in names},
                 pool_creatives=table, static=np.array([[0], [arms]]), clusters=clusters,
                 contexts=np.zeros((1, len(users), 3)), cluster_ids=list(range(len(SEGMENTS))))


def test_the_served_bandit_overtakes_a_wrong_prior(users):
    world = World(11)
    arena = make_arena(users, world, prior="wrong")
    policies = make_policies(arena, ServingConfig(), names=["greedy_prior", "served", "random"])
    result = run_campaign(arena, world, policies, impressions=HORIZON, seed=3, progress=False)
    served, greedy = result.value["served"], result.value["greedy_prior"]
    late = slice(HORIZON // 2, None)
    assert served[late].mean() > greedy[late].mean() * 1.05  # clearly better once learned
    assert served.mean() > greedy.mean()  # and ahead over the whole horizon
    # Regret against the per-cluster oracle grows more slowly as the bandit learns.
    regret = list(regret_at(result, "served").values())
    assert regret[3] - regret[2] < regret[0]  # the last quarter costs less than the first
    assert result.ctr()["oracle_cluster"] >= max(result.ctr()[p] for p in ("served", "random"))


def test_with_a_right_prior_the_bandit_costs_little(users):
    world = World(12)
    # A prior this accurate calibrates to the strongest trust (studio.simulation.past).
    arena = make_arena(users, world, prior="right", strength=20_000.0)
    policies = make_policies(arena, ServingConfig(), names=["greedy_prior", "served"])
    ctr = run_campaign(arena, world, policies, impressions=HORIZON, seed=4, progress=False).ctr()
    assert ctr["served"] >= ctr["greedy_prior"] * 0.97


def test_policies_face_the_same_stream_with_common_random_numbers(users):
    world = World(13)
    arena = make_arena(users, world, prior="wrong")
    twice = [run_campaign(arena, world, make_policies(arena, ServingConfig(), names=["greedy_prior"]),
                          impressions=3000, seed=5, progress=False) for _ in range(2)]
    assert np.array_equal(twice[0].value["greedy_prior"], twice[1].value["greedy_prior"])
    result = twice[0]
    # Same coin per impression: a policy serving a creative with a higher true CTR never
    # misses a click the other got.
    better = result.value["oracle_user"] >= result.value["greedy_prior"]
    assert (result.clicks["oracle_user"][better] >= result.clicks["greedy_prior"][better]).all()


def test_off_policy_estimates_on_the_served_log_cover_the_truth(users):
    world = World(14)
    arena = make_arena(users, world, prior="wrong")
    policies = make_policies(arena, ServingConfig(seed=1), names=["served"])
    result = run_campaign(arena, world, policies, impressions=60_000, seed=6,
                          log_policy="served", progress=False)
    records = check_ope(result.log, arena, chunks=10, seed=2)
    for estimator in ("ips", "snips", "dr"):
        mine = [r for r in records if r["estimator"] == estimator and "refused" not in r]
        assert len(mine) >= 25
        coverage = np.mean([r["covered"] for r in mine])
        assert coverage >= 0.85, (estimator, coverage)
        # Uniform choice overlaps the log everywhere: its intervals, honest about ~90
        # clicks per chunk, still say something (coverage alone would reward width).
        uniform = [r for r in mine if r["target"] == "random"]
        width = np.mean([(r["ci_high"] - r["ci_low"]) / 2 / r["truth"] for r in uniform])
        assert width < 1.5, (estimator, width)


def test_paired_interval():
    assert paired_interval([0.1, 0.1, 0.1])["ci_low"] == pytest.approx(0.1)
    wide = paired_interval([-0.1, 0.2, 0.05, 0.0])
    assert wide["ci_low"] < 0 < wide["ci_high"] and wide["worlds"] == 4


def test_bad_campaign_input_is_refused(users):
    from studio.errors import StudioError

    world = World(15)
    arena = make_arena(users, world, prior="wrong")
    with pytest.raises(StudioError, match="unknown policy 'oracle'"):
        make_policies(arena, ServingConfig(), names=["oracle"])
    with pytest.raises(StudioError, match="impressions must be >= 1"):
        run_campaign(arena, world, {}, impressions=0)
    with pytest.raises(StudioError, match="policy must be one of"):
        ServingConfig(policy="greedy")
    with pytest.raises(StudioError, match="context must be one of"):
        ServingConfig(context="product")
    with pytest.raises(StudioError, match="prior_impressions"):
        ServingConfig(prior_impressions=0)


def test_an_arm_that_serves_only_some_products_of_its_category(users):
    """In a category of several products an arm may have a creative of only some of them
    (each product keeps its own top prompts): the campaign offers every product only the
    arms that serve it, as the selection service does."""
    world = World(16)
    arena = make_arena(users, world, prior="wrong")
    for table in arena.pool_creatives.values():
        table[1, 2:] = -1  # the second product ("cup") is served by two arms only
    policies = make_policies(arena, ServingConfig(), names=["served", "greedy_prior", "random"])
    result = run_campaign(arena, world, policies, impressions=4000, seed=8, log_policy="served",
                          progress=False)
    assert all(v > 0 for v in result.ctr().values())
    cups = [i for i, arms in enumerate(result.log["arms"]) if len(arms) == 2]
    assert cups and (result.log["action"][cups] < 2).all()
