"""The reward model refitted on a campaign's own clicks (``reward.refit`` on the store's log).

The past model is the prior; the campaign's rewarded impressions per (cluster, creative)
move it, pointwise and pairwise within each (product, cluster) — the comparison that
ranks an arm's candidates. A round refits from the *past* model on every click so far,
so rounds never compound one another's errors.

How far the refit may move the model is chosen on the campaign's own data (as ARROW-CB
chooses the weight of a supervised source by validation on the bandit's data): the
creatives are split in two halves by creative; each half is predicted by a refit on the
other, with its change from the past model scaled by each of ``SCALES``; the scale with
the best held-out binomial log-likelihood is applied to the refit on all the clicks. A
refit that does not predict new creatives better than the past model is scaled to 0 —
the past model comes back. The chosen scale is in ``metadata_["refit"]["scale"]``.
"""

from __future__ import annotations

import numpy as np

from reward import CTRModel, refit

from ..creatives.records import CreativeRecord
from ..inputs.audience import Audience
from .scoring import creative_tables


#: Shares of the refit's change from the past model tried on held-out creatives.
SCALES = (0.0, 0.25, 0.5, 1.0)


def refit_on_clicks(model: CTRModel, clicks: list[dict], records: dict[str, CreativeRecord],
                    audience: Audience, *, pairwise_weight: float = 1.0, seed: int = 0) -> CTRModel:
    """``model`` refitted on ``clicks`` (rows of ``cluster_id``, ``creative_id``,
    ``impressions``, ``clicks``, as ``Store.creative_clicks`` gives them) of the creatives
    in ``records`` (creative id → record); rows of other creatives are ignored. Without a
    rewarded impression, the model comes back unchanged."""
    totals: dict[tuple[int, str], list[float]] = {}
    for row in clicks:
        if row["impressions"] > 0 and row["creative_id"] in records:
            key = (int(row["cluster_id"]), row["creative_id"])
            total = totals.setdefault(key, [0.0, 0.0])
            total[0] += float(row["clicks"])
            total[1] += float(row["impressions"])
    if not totals:
        return model
    ids = sorted({creative for _, creative in totals})
    index = {creative: i for i, creative in enumerate(ids)}
    image, text = creative_tables([records[c] for c in ids], clip=model.metadata_.get("clip"))
    keys = sorted(totals)
    context = audience.centroids_[np.array([k[0] for k in keys])]
    clicked = np.array([totals[k][0] for k in keys])
    shown = np.array([totals[k][1] for k in keys])
    creative = np.array([index[k[1]] for k in keys])
    groups = np.array([f"{records[k[1]].product_id}|{k[0]}" for k in keys])

    def fitted(rows):
        return refit(model, context[rows], image, text, clicked[rows], shown[rows],
                     creative=creative[rows], groups=groups[rows],
                     pairwise_weight=pairwise_weight)

    half = np.random.default_rng(seed).permutation(len(ids)) % 2
    held_out = np.zeros(len(SCALES))
    if len(ids) >= 4:
        for fold in (0, 1):
            test = half[creative] == fold
            trained = fitted(~test)
            for k, scale in enumerate(SCALES):
                p = _scaled(model, trained, scale).predict_ctr(
                    context[test], image, text, creative=creative[test])
                p = np.clip(p, 1e-7, 1 - 1e-7)
                held_out[k] += float(np.sum(clicked[test] * np.log(p)
                                            + (shown[test] - clicked[test]) * np.log1p(-p)))
    scale = SCALES[int(np.argmax(held_out))] if len(ids) >= 4 else 0.0
    new = _scaled(model, fitted(np.ones(len(keys), bool)), scale)
    new.metadata_["refit"]["scale"] = scale
    new.metadata_["refit"]["held_out_log_likelihood"] = dict(zip(map(str, SCALES), held_out.tolist()))
    return new


def _scaled(past: CTRModel, refitted: CTRModel, scale: float) -> CTRModel:
    """``refitted`` with its change from ``past`` multiplied by ``scale``."""
    import copy

    new = copy.copy(refitted)
    new.metadata_ = {**refitted.metadata_, "refit": dict(refitted.metadata_["refit"])}
    new.coef_ = past.coef_ + scale * (refitted.coef_ - past.coef_)
    new.intercept_ = past.intercept_ + scale * (refitted.intercept_ - past.intercept_)
    return new
