"""The learning loop in the world: a fixed pool against evolving ones, at equal arms and an
equal, counted budget of impressions.

Every pool starts as a copy of the campaign store with the arms this world's past reward
model chose. Each round serves the same stream of impressions (same users, products,
slots and coins) to every pool through the served bandit (``ServingConfig``, built by the
service's own ``new_model`` and ``arm_prior``, learning across rounds); round *r* spans
the world's campaign time [r/R, (r+1)/R], so tastes drift under every pool alike. Between
rounds each evolving pool goes through ``studio evolve`` (``learning.evolve``) with its
own ``EvolveSettings`` (the ablation compares several), fed the clicks its own rounds
earned so far — the only clicks any pool ever sees. Candidates are rendered and scored,
never shown to the world before they are arms: the budgets are equal and all counted.

Per round the loop also judges each pool's scorer (the past model for the fixed pool,
the refitted model where a variant refits) on held-out creatives — prompts no pool
serves — against the world's oracle (``past.judge_on_heldout``), and records what each
round retired and added, and why.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..learning.evolve import EvolveSettings, catalog_images, evolve
from ..serving.config import ServingConfig, arm_prior
from ..store import Store
from .arena import Arena
from .campaign import run_campaign
from .past import Creatives, judge_on_heldout
from .policies import BanditChoice
from .stage import Prepared, Stage

#: The ablation: what each part of the loop buys, each variant adding one part.
ABLATION = {
    "longer rounds only": EvolveSettings(candidates=2, rule="lowest", min_arms=1, refit=False,
                                         breeding="recombine"),
    "+ confident retirement": EvolveSettings(candidates=2, refit=False, breeding="recombine"),
    "+ refit reward model": EvolveSettings(candidates=2, breeding="recombine"),
    "+ inheritance and mutation": EvolveSettings(),
}
#: The loop as ``studio evolve`` runs it by default.
DEFAULT_VARIANT = "+ inheritance and mutation"


class _Recorder:
    """A policy that also counts, per (cluster, arm, creative), the impressions and clicks
    of its own choices: what ``studio evolve`` reads from a store's event log."""

    def __init__(self, policy, arena: Arena):
        self.policy, self.arena = policy, arena
        self.counts: dict[tuple, list[float]] = {}

    def choose(self, batch):
        return self.policy.choose(batch)

    def learn(self, batch, chosen, rewards) -> None:
        self.policy.learn(batch, chosen, rewards)
        table = self.arena.pool_creatives[batch.pool]
        rows = batch.products * len(self.arena.placements) + batch.placements
        creatives = table[rows, chosen]
        for k, creative in set(zip(chosen.tolist(), creatives.tolist())):
            mine = (chosen == k) & (creatives == creative)
            key = (int(batch.pool[1]), batch.arms[k], self.arena.creative_ids[creative])
            total = self.counts.setdefault(key, [0.0, 0.0])
            total[0] += float(mine.sum())
            total[1] += float(rewards[mine].sum())

    def clicks(self) -> list[dict]:
        return [{"cluster_id": c, "arm_id": a, "creative_id": i, "impressions": int(n),
                 "clicks": k} for (c, a, i), (n, k) in sorted(self.counts.items())]


def run_loop(stage: Stage, prepared: Prepared, work: Path, *, rounds: int = 5,
             impressions: int = 100_000, variants: dict | None = None, engine: str = "backdrop",
             size: str | None = None, served: ServingConfig | None = None,
             heldout: Creatives | None = None, judge_impressions: int = 100_000, seed: int = 0,
             echo=print) -> dict:
    """Per round: the mean true CTR of the fixed pool and of each evolving variant
    (``variants``: name → EvolveSettings; default the full loop), their arm counts, what
    each round did, and (with ``heldout``) each scorer's held-out pairwise accuracy."""
    if rounds < 1 or impressions < 1:
        raise ValueError("rounds and impressions must be >= 1")
    work = Path(work)
    served = (served or ServingConfig()).with_changes(seed=seed)
    variants = dict(variants) if variants is not None else {DEFAULT_VARIANT: EvolveSettings()}
    work.mkdir(parents=True, exist_ok=True)
    images = catalog_images(stage.catalog)
    pools = {}
    for name in ["fixed", *variants]:
        folder = work / _slug(name)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(stage.campaign_store.root, folder)
        store = Store(folder)
        store.clear_campaign()
        arena = Arena.from_store(store, stage.campaign_users, stage.placements)
        pools[name] = {"store": store, "arena": arena, "model": prepared.model,
                       "policy": _Recorder(BanditChoice(arena, served), arena)}
    result = {"impressions_per_round": impressions, "rounds": rounds,
              "ctr": {n: [] for n in pools}, "arms": {n: [] for n in pools},
              "judgement": {n: [] for n in pools}, "log": {n: [] for n in variants},
              "settings": {n: asdict(s) for n, s in variants.items()}}
    for r in range(rounds):
        window = (r / rounds, (r + 1) / rounds)
        for name, pool in pools.items():
            arena = pool["arena"]
            campaign = run_campaign(arena, prepared.world, {"served": pool["policy"]},
                                    impressions=impressions, seed=seed * 1000 + r, window=window,
                                    progress=False)
            result["ctr"][name].append(campaign.ctr()["served"])
            result["arms"][name].append(int(sum(len(a) for a in arena.pools.values())))
            if heldout is not None:
                result["judgement"][name].append(_judge(pool, prepared, stage, heldout, window,
                                                        judge_impressions, seed + r))
        echo(f"round {r + 1}: " + ", ".join(f"{n} {result['ctr'][n][-1]:.3%}" for n in pools))
        if r == rounds - 1:
            break
        for name, settings in variants.items():
            pool = pools[name]
            refit_path = pool["store"].root / f"reward-model.round-{r + 1}.npz"
            record = evolve(pool["store"], catalog_images=images, settings=settings,
                            engine=engine, size=size, reward_model=prepared.model,
                            seed=seed + r, clicks=pool["policy"].clicks(),
                            refit_out=refit_path if settings.refit else None,
                            echo=lambda message: None)
            if refit_path.exists():
                from reward import CTRModel

                pool["model"] = CTRModel.load(refit_path)
            _apply_round(pool, record, stage, served)
            result["log"][name].append(_summary(record, pool["store"]))
    names = list(variants)
    result["difference"] = {n: [(e - f) / f for e, f in zip(result["ctr"][n], result["ctr"]["fixed"])]
                            for n in names}
    return result


def _apply_round(pool: dict, record: dict, stage: Stage, served: ServingConfig) -> None:
    """The evolved store's pool into the running bandit: retired arms out, new arms in
    with their prior (as the service does when it reloads the store's arms)."""
    arena = Arena.from_store(pool["store"], stage.campaign_users, stage.placements)
    bandit = pool["policy"].policy
    for entry in record["pools"]:
        model = bandit.models[entry["category"]]
        for arm in entry["retired"]:
            model.remove_arm(arm)
        for arm in entry["added"]:
            model.add_arm(arm, prior=arm_prior(arena.prior[arm], arena.prior_impressions[arm], served))
    pool["arena"] = arena
    pool["policy"].arena = arena


def _judge(pool, prepared, stage, heldout: Creatives, window, impressions, seed) -> dict:
    """The pool's scorer on held-out creatives whose prompts no pool of its store has."""
    texts = {" ".join(r["text"].lower().split()) for r in pool["store"].prompt_records().values()}
    keep = [" ".join(r.prompt.lower().split()) not in texts for r in heldout.records]
    judged = judge_on_heldout(pool["model"], prepared.world, heldout.subset(keep),
                              stage.campaign_users, stage.campaign_store.audience(),
                              impressions=impressions, seed=seed, t=float(np.mean(window)))
    return {"pairwise_ratio": judged["pairwise_ratio"],
            "model_pairwise_acc": judged["model"]["pairwise_acc"],
            "oracle_pairwise_acc": judged["oracle"]["pairwise_acc"]}


def _summary(record: dict, store: Store) -> dict:
    """What a round did, in numbers and words (for the report and the UI)."""
    texts = store.prompt_texts()
    pools = record["pools"]
    retired = [(p, a) for p in pools for a in p["retired"]]
    return {"round": record["round"], "scorer": record["scorer"], "retired": len(retired),
            "added": sum(len(p["added"]) for p in pools),
            "pools_changed": sum(bool(p["added"]) for p in pools), "pools": len(pools),
            "examples": [{"pool": f"{p['category']} · cluster {p['cluster_id']}",
                          "retired": texts.get(a, a), "why": p["reasons"][a],
                          "added": texts.get(p["added"][p["retired"].index(a)], "")}
                         for p, a in retired[:3]]}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-") or "pool"
