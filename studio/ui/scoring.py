"""Which reward model scores the UI's creatives, for any audience.

The demo audience has planted segments, so its creatives are scored by the reward model
of its world's simulated past (``WorldSession.past_reward_model``), and the Campaign tab
can simulate that world. An audience of one's own has no hidden truth, but its creatives
are still scored — by a reward model trained on the bundled demo world's simulated past —
and the line that goes with the scores says so: it is a starting prior for the selection
service, not a measurement of the uploaded users.

* When the uploaded table has the demo population's feature columns, the model is trained
  with the uploaded audience's clusters (the demo past's users are assigned to them) and
  scores each creative at its own cluster's centroid.
* Otherwise the model is trained with a demo audience and scores each creative at the
  demo population's average (its clusters' centroids weighted by their share).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import StudioError
from ..inputs.audience import Audience
from ..simulation.population import make_users
from ..simulation.session import WorldSession

#: Simulated past impressions the reward model learns from (uniform policy over the
#: rendered creatives, other users, drifted tastes): under a second for ten creatives.
PAST_IMPRESSIONS = 100_000
#: Users of the simulated past (another draw of the demo population).
PAST_USERS = 5000


class PopulationAverage:
    """A reward model that scores every creative at a population's average instead of
    at the context it is given (whose features the model does not know)."""

    def __init__(self, model, audience: Audience):
        self.model, self.metadata_ = model, model.metadata_
        shares = np.array([c.share for c in audience.clusters_], float)
        self.centroids, self.weights = audience.centroids_, shares / shares.sum()

    def predict_ctr(self, context, image, text, *, creative=None) -> np.ndarray:
        n = len(context)
        creative = np.arange(n) if creative is None else np.asarray(creative)
        scores = [self.model.predict_ctr(np.repeat(c[None], n, axis=0), image, text,
                                         creative=creative) for c in self.centroids]
        return np.average(np.stack(scores), axis=0, weights=self.weights)


def train_scorer(users: pd.DataFrame, audience: Audience, records, cluster_ids, seed: int):
    """(model, world, line): the reward model that scores ``records``, the world the
    Campaign tab may simulate (None for an audience of one's own) and one line saying
    which model scored."""
    session = WorldSession(seed)
    past = dict(impressions=PAST_IMPRESSIONS, past_users=PAST_USERS)
    if "segment" in users.columns:
        model = session.past_reward_model(records, cluster_ids, audience, **past)
        return model, session, (
            f"scored by a reward model trained on {PAST_IMPRESSIONS:,} impressions of a "
            f"simulated past (world {seed}: other users, drifted tastes); its prior counts "
            f"as {model.metadata_['prior_impressions']:.0f} impressions per arm")
    try:
        make_users(1, seed=0).pipe(audience.assign)  # the demo population's columns?
    except StudioError:
        demo = Audience(5).fit(make_users(PAST_USERS, seed=20_000 + seed))
        model = session.past_reward_model(records, np.zeros(len(records), int), demo, **past)
        return PopulationAverage(model, demo), None, (
            "predicted CTR from the demo reward model (trained on a simulated past of the "
            "bundled demo audience), averaged over the demo population because your "
            "table's columns differ from the demo's: a starting prior, not a measurement "
            "of your users")
    model = session.past_reward_model(records, cluster_ids, audience, **past)
    return model, None, (
        "predicted CTR from the demo reward model (trained on a simulated past of the "
        "bundled demo audience), at your clusters' centroids: a starting prior, not a "
        "measurement of your users")
