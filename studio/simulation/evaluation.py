"""Evidence over many worlds: paired lifts, regret, reward-model quality, OPE coverage.

A figure about clicks is evidence only if it holds across independent worlds (world
seeds, not only campaign seeds), against the strongest simple baseline — serving the
reward model's top creative per cluster, never learning (``greedy_prior``) — with an
interval. For each world this module prepares the stage (the world's past reward model
chooses the arms), runs one campaign in which every policy faces the same impressions,
and checks the off-policy estimators on the served policy's log against the world's
truth. ``summarise`` turns the per-world outcomes into paired 95 % t-intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bandit import BanditError
from bandit.evaluation import BanditLog, dr, ips, snips

from ..serving.config import ServingConfig
from .campaign import regret_at, run_campaign
from .policies import make_policies
from .stage import Stage, prepare_world
from .world import World, WorldConfig

HORIZONS = (0.25, 0.5, 0.75, 1.0)
#: Off-policy targets checked on the served log: the prior's top arm, uniform choice, and
#: a mixture of both (stochastic, overlapping the log well).
OPE_TARGETS = ("greedy_prior", "random", "prior_mixture")


@dataclass
class WorldOutcome:
    seed: int
    condition: str  # "drift" or "no_drift"
    ctr: dict  # policy -> mean true CTR
    observed_ctr: dict  # policy -> clicks / impressions
    regret: dict  # policy -> {horizon: cumulative regret}
    judgement: dict  # reward model vs oracle on held-out creatives
    prior_impressions: float
    ope: list = field(default_factory=list)  # one dict per (chunk, target, estimator)


def evaluate_world(stage: Stage, seed: int, *, condition: str = "drift",
                   served: ServingConfig | None = None, impressions: int = 200_000,
                   past_impressions: int = 200_000, ope_chunks: int = 10,
                   policies=None) -> WorldOutcome:
    """One world: prepare it, run every policy, check OPE on the served log."""
    config = WorldConfig() if condition == "drift" else WorldConfig().without_drift()
    world = World(seed, config)
    prepared = prepare_world(stage, world, past_impressions=past_impressions,
                             judge_impressions=past_impressions, seed=seed)
    served = served or ServingConfig()
    chosen = make_policies(prepared.arena, served.with_changes(seed=seed), seed=seed, names=policies)
    result = run_campaign(prepared.arena, world, chosen, impressions=impressions, seed=seed,
                          log_policy="served" if "served" in chosen else None, progress=False)
    ope = check_ope(result.log, prepared.arena, chunks=ope_chunks, seed=seed) if result.log else []
    return WorldOutcome(seed, condition, result.ctr(), result.observed_ctr(),
                        {p: regret_at(result, p, HORIZONS) for p in result.value},
                        prepared.judgement, float(prepared.model.metadata_["prior_impressions"]),
                        ope)


def check_ope(log: dict, arena, *, chunks: int = 10, seed: int = 0, n_bootstrap: int = 200) -> list:
    """IPS, SNIPS and DR estimates of ``OPE_TARGETS`` on consecutive chunks of the served
    log, each with the target's true value on the chunk's impressions. DR's reward model
    is the arms' prior CTR (the reward model's prediction: fitted on the past, not on the
    log). A refused estimate (thin overlap) is recorded as refused."""
    n, width = log["true"].shape
    valid = np.arange(width)[None, :] < log["n_arms"][:, None]
    targets = {
        "greedy_prior": np.eye(width)[log["prior_best"]],
        "random": valid / log["n_arms"][:, None],
    }
    targets["prior_mixture"] = 0.8 * targets["greedy_prior"] + 0.2 * targets["random"]
    prior = np.array([[_prior(arena, arms, k) for k in range(width)] for arms in log["arms"]])
    records = []
    for c, rows in enumerate(np.array_split(np.arange(n), chunks)):
        bandit_log = BanditLog(np.zeros((len(rows), 1)), log["action"][rows], log["reward"][rows],
                               log["propensity"][rows], width)
        for target, dist in targets.items():
            truth = float((dist[rows] * log["true"][rows]).sum(axis=1).mean())
            for name, estimate in (
                    ("ips", lambda: ips(bandit_log, dist[rows], n_bootstrap=n_bootstrap, seed=seed + c)),
                    ("snips", lambda: snips(bandit_log, dist[rows], n_bootstrap=n_bootstrap, seed=seed + c)),
                    ("dr", lambda: dr(bandit_log, dist[rows], prior[rows], n_bootstrap=n_bootstrap,
                                      seed=seed + c))):
                try:
                    e = estimate()
                except BanditError as exc:
                    records.append({"chunk": c, "target": target, "estimator": name,
                                    "truth": truth, "refused": str(exc)})
                    continue
                records.append({"chunk": c, "target": target, "estimator": name, "truth": truth,
                                "value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high,
                                "covered": bool(e.ci_low <= truth <= e.ci_high)})
    return records


def _prior(arena, arms: tuple, k: int) -> float:
    """The prior CTR of the row's k-th candidate (0 past the candidates or without one)."""
    if k >= len(arms) or arena.prior[arms[k]] is None:
        return 0.0
    return float(arena.prior[arms[k]])


def paired_interval(differences, level: float = 0.95) -> dict:
    """Mean and t-interval of per-world differences (paired: same world, same stream)."""
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "worlds": len(d)}
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "worlds": len(d)}


def summarise(outcomes: list[WorldOutcome], *, served: str = "served",
              baseline: str = "greedy_prior") -> dict:
    """Per condition: mean CTR per policy, relative lift of every policy over the
    baseline with a paired 95 % interval, regret at the horizons (served, random, ratio),
    reward-model quality, and OPE bias and coverage per estimator."""
    summary = {}
    for condition in sorted({o.condition for o in outcomes}):
        mine = [o for o in outcomes if o.condition == condition]
        policies = list(mine[0].ctr)
        lift = {p: paired_interval([o.ctr[p] / o.ctr[baseline] - 1 for o in mine])
                for p in policies if p != baseline}
        regret = {p: {h: float(np.mean([o.regret[p][h] for o in mine])) for h in mine[0].regret[p]}
                  for p in (served, "random", baseline) if p in mine[0].regret}
        ratio = [o.regret[served]["1"] / o.regret["random"]["1"] for o in mine
                 if served in o.regret and o.regret["random"]["1"] > 0]
        judged = _judged(mine)
        summary[condition] = {
            "worlds": len(mine),
            "ctr": {p: float(np.mean([o.ctr[p] for o in mine])) for p in policies},
            "observed_ctr": {p: float(np.mean([o.observed_ctr[p] for o in mine])) for p in policies},
            "lift_vs_greedy_prior": lift,
            "regret": regret,
            "regret_ratio": {"mean": float(np.mean(ratio)) if ratio else float("nan"),
                             "max": float(np.max(ratio)) if ratio else float("nan")},
            "reward_model": judged,
            "prior_impressions": float(np.median([o.prior_impressions for o in mine])),
            "ope": _ope_summary([r for o in mine for r in o.ope]),
        }
    return summary


def _judged(outcomes: list[WorldOutcome]) -> dict:
    keys = ("auc", "log_loss", "ece", "pairwise_acc")
    result = {f"{who}_{k}": float(np.mean([o.judgement[who][k] for o in outcomes]))
              for who in ("model", "oracle") for k in keys}
    result["pairwise_ratio"] = float(np.mean([o.judgement["pairwise_ratio"] for o in outcomes]))
    return result


def _ope_summary(records: list[dict]) -> dict:
    """Per estimator (and per estimator × target): coverage of the 95 % intervals among
    the estimates given, mean bias, and how many were refused."""
    result = {}
    for name in ("ips", "snips", "dr"):
        mine = [r for r in records if r["estimator"] == name]
        result[name] = _coverage(mine)
        result[name]["by_target"] = {t: _coverage([r for r in mine if r["target"] == t])
                                     for t in OPE_TARGETS}
    return result


def _coverage(records: list[dict]) -> dict:
    given = [r for r in records if "refused" not in r]
    return {"coverage": float(np.mean([r["covered"] for r in given])) if given else float("nan"),
            "bias": float(np.mean([r["value"] - r["truth"] for r in given])) if given else float("nan"),
            "relative_bias": float(np.mean([(r["value"] - r["truth"]) / r["truth"] for r in given
                                            if r["truth"] > 0])) if given else float("nan"),
            "estimates": len(given), "refused": len(records) - len(given)}
