"""The policies a simulated campaign compares, all choosing among the same arms.

Every policy sees a ``Batch`` of impressions of one (category, cluster) pool — the arms
in a fixed order and the service's context of each impression — and returns the index
of the arm it serves and the probability it had of serving it. Learning policies then
get the clicks of their own choices. Baselines (Czapp et al. compare LinUCB with random;
a sceptical reviewer asks for more):

- ``random``: uniform within the cluster's pool.
- ``greedy_prior``: the arm the reward model scores best for the cluster, never learning
  — the strongest simple baseline: a bandit must beat its own prior.
- ``epsilon_greedy``: LinUCB's ridge estimates with no confidence bonus, ε-uniform.
- ``linucb``: the service's LinUCB with the UCB rule (α from the config).
- ``thompson``: linear Thompson sampling on the same estimates.
- ``served``: exactly what the selection service runs (``ServingConfig``: rule, α, ε,
  priors and their strength) — through the same model factory and priors.
- ``service``: the real ``SelectionService`` (``select`` + ``feedback``, one request at a
  time, into the store's event log): what the API does, for the demo.

The ``static`` creative (one best-scored creative per product and placement for
everybody) and the per-cluster and per-user oracles are computed by the campaign.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import StudioError
from ..serving.config import ServingConfig, arm_prior, model_features, new_model
from ..serving.service import SelectionService
from .arena import Arena


@dataclass
class Batch:
    """Impressions of one pool: row i is user ``users[i]`` seeing ``products[i]`` (index
    into ``arena.products``) in ``placements[i]`` (index into ``arena.placements``)."""

    pool: tuple  # (category, cluster)
    arms: list
    users: np.ndarray
    products: np.ndarray
    placements: np.ndarray
    contexts: np.ndarray  # (n, dim)

    def __len__(self) -> int:
        return len(self.users)


class RandomChoice:
    """Uniform within the cluster's pool."""

    def __init__(self, arena: Arena, seed: int = 0):
        self._rng = np.random.default_rng([seed, 11])

    def choose(self, batch: Batch):
        k = len(batch.arms)
        return self._rng.integers(0, k, len(batch)), np.full(len(batch), 1.0 / k)

    def learn(self, batch: Batch, chosen, rewards) -> None:
        """Random choice learns nothing."""


class GreedyOnPrior:
    """The reward model's top arm for the cluster; never learns."""

    def __init__(self, arena: Arena, seed: int = 0):
        self.prior = arena.prior

    def choose(self, batch: Batch):
        best = int(np.argmax([_score(self.prior[a]) for a in batch.arms]))
        return np.full(len(batch), best), np.ones(len(batch))

    def learn(self, batch: Batch, chosen, rewards) -> None:
        """Greedy-on-prior never learns."""


class BanditChoice:
    """One bandit per category built exactly as the selection service builds it
    (``new_model`` + ``arm_prior``), fed through LinUCB's batch path."""

    def __init__(self, arena: Arena, config: ServingConfig):
        self.config = config
        self.models = {}
        for (category, _), arms in sorted(arena.pools.items()):
            model = self.models.setdefault(category, new_model(arena.dim, config))
            for arm in arms:
                model.add_arm(arm, prior=arm_prior(arena.prior[arm], arena.prior_impressions[arm],
                                                   config))

    def choose(self, batch: Batch):
        features = model_features(batch.contexts, self.config)
        decision = self.models[batch.pool[0]].select_batch(features, arms=batch.arms)
        return decision.chosen, decision.propensity

    def learn(self, batch: Batch, chosen, rewards) -> None:
        self.models[batch.pool[0]].update_batch([batch.arms[i] for i in chosen],
                                                model_features(batch.contexts, self.config), rewards)


class ServiceChoice:
    """The real selection service: one ``select`` per impression, ``feedback`` for each
    click or miss, everything logged in the store."""

    def __init__(self, arena: Arena, service: SelectionService):
        self.arena = arena
        self.service = service
        self._encoded = service.audience.transform(arena.users)
        self._events: list = []

    def choose(self, batch: Batch):
        chosen, propensity, self._events = [], [], []
        arena = self.arena
        for u, p, q in zip(batch.users, batch.products, batch.placements):
            selection = self.service.select(arena.products[p], encoded=self._encoded[u],
                                            placement=arena.placements[q])
            chosen.append(batch.arms.index(selection.arm_id))
            propensity.append(selection.propensity)
            self._events.append(selection.event_id)
        return np.array(chosen, dtype=np.int64), np.array(propensity)

    def learn(self, batch: Batch, chosen, rewards) -> None:
        for event_id, reward in zip(self._events, rewards):
            self.service.feedback(event_id, float(reward))


def baseline_configs(served: ServingConfig) -> dict:
    """The learning baselines' configs: the served one with another decision rule."""
    return {
        "epsilon_greedy": served.with_changes(policy="epsilon", alpha=0.0, epsilon=0.1),
        "linucb": served.with_changes(policy="ucb"),
        "thompson": served.with_changes(policy="thompson"),
    }


def make_policies(arena: Arena, served: ServingConfig, *, seed: int = 0,
                  names=None, service: SelectionService | None = None) -> dict:
    """The compared policies by name (``names``: a subset, in the order given)."""
    factories = {
        "random": lambda: RandomChoice(arena, seed),
        "greedy_prior": lambda: GreedyOnPrior(arena, seed),
        **{name: (lambda c=c: BanditChoice(arena, c)) for name, c in baseline_configs(served).items()},
        "served": lambda: BanditChoice(arena, served),
    }
    if service is not None:
        factories["service"] = lambda: ServiceChoice(arena, service)
    names = list(names) if names is not None else list(factories)
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise StudioError(f"unknown policy {unknown[0]!r}; choose from {', '.join(factories)}")
    return {name: factories[name]() for name in names}


def _score(prior) -> float:
    return -np.inf if prior is None else float(prior)
