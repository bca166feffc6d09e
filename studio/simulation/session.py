"""A hidden-truth world for an interactive session (the web UI's workspace).

The workspace never touches the world itself (nothing outside ``studio.simulation``
imports it): it asks this session for the reward model of the world's simulated past
and to continue the campaign, call after call. ``CAMPAIGN_LENGTH`` impressions span the
world's campaign time [0, 1] (its tastes drift meanwhile); past the end, time stays at 1.
"""

from __future__ import annotations

import numpy as np

from ..creatives.records import CreativeRecord
from ..inputs.audience import Audience
from .arena import Arena
from .campaign import CampaignResult, run_campaign
from .past import Creatives, train_past_model
from .population import make_users
from .world import World

#: Simulated impressions over which the campaign time runs from 0 to 1, as in the default
#: ``studio demo`` campaign.
CAMPAIGN_LENGTH = 50_000


class WorldSession:
    """``World(seed)`` with its default drift, as ``studio demo`` uses it."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self._world = World(self.seed)

    def past_reward_model(self, records: list[CreativeRecord], cluster_ids, audience: Audience, *,
                          impressions: int = 100_000, past_users: int = 5000):
        """A reward model of the world's past: other users (``make_users(past_users,
        10_000 + seed)``) with drifted tastes saw ``records`` under a uniform policy."""
        return train_past_model(self._world, Creatives(records, np.asarray(cluster_ids)),
                                make_users(past_users, seed=10_000 + self.seed), audience,
                                impressions=impressions, seed=self.seed)

    def campaign(self, arena: Arena, policies: dict, *, impressions: int, seed: int,
                 done: int) -> CampaignResult:
        """The next ``impressions`` of the campaign after ``done`` (a new stream: ``seed``)."""
        return run_campaign(arena, self._world, policies, impressions=impressions, seed=seed,
                            window=campaign_window(done, impressions), progress=False)


def campaign_window(done: int, impressions: int) -> tuple[float, float]:
    """The campaign time spanned by the next ``impressions`` after ``done``: time stops
    at 1 (a call that crosses the end is spread over what is left)."""
    return (min(done / CAMPAIGN_LENGTH, 1.0), min((done + impressions) / CAMPAIGN_LENGTH, 1.0))
