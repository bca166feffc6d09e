"""A simulated campaign: one stream of impressions, every policy, the world's truth.

The stream — a uniformly random campaign user seeing a uniformly random product in a
random placement and ad slot, at campaign time t — is drawn once per seed, and every
policy faces the same stream with the same uniform number per impression (common random
numbers): a click is ``coin < true CTR of the creative served``, so policies differ only
in their choices. The value of a policy is the mean *true* CTR of what it served (the
clicks it would get in expectation); its clicks are what it learns from. Feedback is
delayed by up to one block of impressions (``block``): learning policies choose a block
with what they knew at its start, then learn its clicks — as a service with a reward
delay does, and the reason the bandit library's batch path makes 200,000 impressions a
matter of seconds.

Regret is measured against the per-cluster oracle (the arm of the cluster's pool with
the best mean true CTR over the cluster's users, for this product and placement, at this
time): what a perfect learner of the served model class could do. The per-user oracle
(the best arm for this very user) is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import StudioError
from ..progress import item_progress
from .arena import Arena
from .policies import Batch
from .world import World


@dataclass
class CampaignResult:
    """Per-impression arrays for every policy (and the oracles and the static creative)."""

    impressions: int
    value: dict = field(default_factory=dict)  # policy -> true CTR of what it served
    clicks: dict = field(default_factory=dict)  # policy -> 0/1
    regret: dict = field(default_factory=dict)  # policy -> per-cluster oracle − value
    log: dict = field(default_factory=dict)  # the logged policy's decisions (for OPE)

    def ctr(self) -> dict:
        """Mean true CTR per policy."""
        return {p: float(np.mean(v)) for p, v in self.value.items()}

    def observed_ctr(self) -> dict:
        """Clicks per impression per policy."""
        return {p: float(np.mean(c)) for p, c in self.clicks.items()}


def run_campaign(arena: Arena, world: World, policies: dict, *, impressions: int,
                 seed: int = 0, block: int = 1000, log_policy: str | None = None,
                 oracle_every: int = 10_000, window: tuple[float, float] = (0.0, 1.0),
                 progress: bool = True) -> CampaignResult:
    """Serve ``impressions`` simulated impressions to every policy of ``policies``
    (name → policy with ``choose``/``learn``); with ``log_policy``, keep that policy's
    decisions, propensities, clicks and the true CTR of every candidate (for OPE).
    ``window``: the part of the world's campaign time these impressions span (a round
    of a longer campaign)."""
    if impressions < 1:
        raise StudioError(f"impressions must be >= 1, got {impressions}")
    population = world.population(arena.users, "campaign")
    creatives = arena.read(world)
    rng = np.random.default_rng([seed, 7])
    users = rng.integers(0, len(arena.users), impressions)
    products = rng.integers(0, len(arena.products), impressions)
    placements = rng.integers(0, len(arena.placements), impressions)
    positions = rng.integers(1, world.config.slots + 1, impressions)
    coins = rng.random(impressions)
    names = list(policies) + ["static", "oracle_cluster", "oracle_user"]
    result = CampaignResult(impressions, {n: np.zeros(impressions) for n in names},
                            {n: np.zeros(impressions, dtype=np.int8) for n in names})
    log = {"arms": [], "index": [], "action": [], "propensity": [], "reward": [], "true": [],
           "prior_best": []} if log_policy else None
    n_placements = len(arena.placements)
    categories = np.array([arena.category[p] for p in arena.products])
    cluster_means, refreshed = None, -oracle_every
    blocks = range(0, impressions, block)
    for start in item_progress(blocks, "campaign", "block") if progress else blocks:
        stop = min(start + block, impressions)
        t = window[0] + (window[1] - window[0]) * (start + stop) / 2 / impressions
        if start - refreshed >= oracle_every:
            cluster_means = _cluster_means(population, creatives, arena, t)
            refreshed = start
        rows = np.arange(start, stop)
        u, p, q = users[rows], products[rows], placements[rows]
        static = arena.static[p, q]
        value = population.ctr(u, creatives, static, t=t, position=positions[rows])
        result.value["static"][rows] = value
        result.clicks["static"][rows] = coins[rows] < value
        # One group per (category, cluster, product, placement): the candidates are the
        # pool's arms with a creative of this product in this placement (in a category
        # of several products, an arm may serve only some of them — as in the service).
        keys = list(zip(categories[p], arena.clusters[u].tolist(), p.tolist(), q.tolist()))
        for key in sorted(set(keys), key=str):
            mine = rows[[k == key for k in keys]]
            pool_key = (str(key[0]), int(key[1]))
            table_row = arena.pool_creatives.get(pool_key, np.empty((0, 0)))
            table_row = table_row[key[2] * n_placements + key[3]] if len(table_row) else table_row
            columns = np.flatnonzero(table_row >= 0) if len(table_row) else []
            if not len(columns):
                continue  # nothing to serve this product in this cluster: no policy can
            arms = [arena.pools[pool_key][k] for k in columns]
            um, pm, qm = users[mine], products[mine], placements[mine]
            candidates = np.broadcast_to(table_row[columns], (len(mine), len(columns)))
            true = population.ctr(um, creatives, candidates, t=t, position=positions[mine][:, None])
            cluster_best = cluster_means[pool_key[1]][candidates].argmax(axis=1)
            oracle = true[np.arange(len(mine)), cluster_best]
            for name, chosen_value in (("oracle_cluster", oracle), ("oracle_user", true.max(axis=1))):
                result.value[name][mine] = chosen_value
                result.clicks[name][mine] = coins[mine] < chosen_value
            batch = Batch(pool_key, arms, um, pm, qm, arena.contexts[qm, um])
            for name, policy in policies.items():
                chosen, propensity = policy.choose(batch)
                served = true[np.arange(len(mine)), chosen]
                clicks = (coins[mine] < served).astype(np.int8)
                result.value[name][mine] = served
                result.clicks[name][mine] = clicks
                policy.learn(batch, chosen, clicks.astype(np.float64))
                if name == log_policy:
                    log["arms"] += [tuple(arms)] * len(mine)
                    log["index"].append(mine)
                    log["action"].append(chosen)
                    log["propensity"].append(propensity)
                    log["reward"].append(clicks.astype(np.float64))
                    log["true"].append(true)
                    prior = [arena.prior[a] for a in arms]
                    best = int(np.argmax([-np.inf if v is None else v for v in prior]))
                    log["prior_best"].append(np.full(len(mine), best))
    for name in names:
        result.regret[name] = result.value["oracle_cluster"] - result.value[name]
    if log is not None:
        order = np.argsort(np.concatenate(log["index"]), kind="stable")
        result.log = {"arms": [log["arms"][i] for i in order]}
        for key in ("index", "action", "propensity", "reward", "prior_best"):
            result.log[key] = np.concatenate(log[key])[order]
        width = max(t.shape[1] for t in log["true"])  # pools may differ in size: pad
        result.log["true"] = np.concatenate(
            [np.pad(t, ((0, 0), (0, width - t.shape[1]))) for t in log["true"]])[order]
        result.log["n_arms"] = np.array([len(arms) for arms in result.log["arms"]])
    return result


def _cluster_means(population, creatives, arena: Arena, t: float) -> dict:
    """cluster → mean true CTR (slot 1) of every creative over the cluster's users."""
    matrix = population.ctr_matrix(creatives, t=t)
    return {c: matrix[arena.clusters == c].mean(axis=0) if (arena.clusters == c).any()
            else np.zeros(len(creatives)) for c in arena.cluster_ids}


def regret_at(result: CampaignResult, policy: str, horizons=(0.25, 0.5, 0.75, 1.0)) -> dict:
    """Cumulative regret of ``policy`` at fractions of the horizon."""
    cumulative = np.cumsum(result.regret[policy])
    return {f"{h:g}": float(cumulative[max(0, int(round(h * result.impressions)) - 1)])
            for h in horizons}
