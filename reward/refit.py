"""Refit a fitted CTRModel on new clicks, warm-started from it (CG4CTR's per-iteration retraining).

A campaign's own clicks say what this audience likes *now*; the model trained on the past
says what it liked before, on many more creatives. ``refit`` keeps the past model as the
prior: it minimises, over the change Δ of the coefficients (and intercept),

    pointwise_weight · Σ_rows binomial NLL(clicks | impressions, σ(x·(w + Δ)))
    + pairwise_weight · Σ_pairs m_ij · CE(P_ij, σ(s_i − s_j))
    + ½ · ‖Δ‖² / C

where the pairs are the creatives of one group (e.g. one product shown to one cluster)
and s the logits. The pairwise term is a Bradley–Terry likelihood over clicks: of the
clicks the pair would get at equal impressions, the share ``P_ij = r_i / (r_i + r_j)``
went to *i* (observed rates, smoothed by half a click), and at CTRs far below 1
σ(s_i − s_j) ≈ p_i / (p_i + p_j) is the model's share — so it agrees with the pointwise
term instead of stretching the scores apart, as a "which is better" target would.
``m_ij`` is the pair's clicks at the harmonic mean of their impressions (the pairwise and
pointwise terms are on one scale), and C is the model's own regularisation. The pairwise
term is what ranks creatives within a (product, cluster) — the question the arms ask —
rather than the overall CTR level, which the pointwise term keeps calibrated. With no new
data the refit returns the old coefficients.

The model's standardisation and PCA (``blocks_``) stay as fitted: Δ lives in the same
design space, so a refit model saves, loads and predicts exactly like any CTRModel.
"""

from __future__ import annotations

import copy

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from .errors import RewardError
from .model import CTRModel, _row_index


def refit(model: CTRModel, context, image, text, clicks, impressions, *, creative=None,
          groups=None, pairwise_weight: float = 1.0, pointwise_weight: float = 1.0,
          max_iter: int = 500) -> CTRModel:
    """A new CTRModel: ``model`` refitted on aggregated rows (``clicks`` of
    ``impressions`` per row of context × creative; ``creative`` as in ``CTRModel.fit``).
    ``groups`` (one label per row) enables the pairwise term within each group."""
    model._check_fitted()
    if not (np.isfinite(pairwise_weight) and pairwise_weight >= 0
            and np.isfinite(pointwise_weight) and pointwise_weight >= 0):
        raise RewardError("pairwise_weight and pointwise_weight must be finite numbers >= 0")
    if pairwise_weight == 0 and pointwise_weight == 0:
        raise RewardError("pairwise_weight and pointwise_weight cannot both be 0")
    context, image, text = model._blocks(context, image, text, fitted=True, creative=creative)
    clicks = np.asarray(clicks, dtype=np.float64).reshape(-1)
    shown = np.asarray(impressions, dtype=np.float64).reshape(-1)
    if not (len(clicks) == len(shown) == len(context)):
        raise RewardError(f"clicks, impressions and the features differ in rows: "
                          f"{len(clicks)}, {len(shown)}, {len(context)}")
    if (not np.isfinite(clicks).all() or not np.isfinite(shown).all() or (shown <= 0).any()
            or (clicks < 0).any() or (clicks > shown).any()):
        raise RewardError("need 0 <= clicks <= impressions and impressions > 0 on every row")
    X = np.hstack([model._design(context, image, text, _row_index(creative, len(context))),
                   np.ones((len(context), 1))])
    start = np.append(model.coef_, model.intercept_)
    pairs = _pairs(groups, clicks, shown) if groups is not None and pairwise_weight > 0 else None
    l2 = 1.0 / model.C

    def objective(delta):
        z = X @ (start + delta)
        loss = pointwise_weight * float(np.sum(shown * -log_expit(-z) - clicks * z))
        grad_z = pointwise_weight * (shown * expit(z) - clicks)
        if pairs is not None:
            i, j, target, mass = pairs
            d = z[i] - z[j]
            loss += pairwise_weight * float(np.sum(mass * -(target * log_expit(d)
                                                            + (1 - target) * log_expit(-d))))
            g = pairwise_weight * mass * (expit(d) - target)
            grad_z = grad_z + np.bincount(i, g, len(z)) - np.bincount(j, g, len(z))
        return loss + 0.5 * l2 * float(delta @ delta), X.T @ grad_z + l2 * delta

    result = minimize(objective, np.zeros_like(start), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter})
    new = copy.deepcopy(model)
    new.coef_ = start[:-1] + result.x[:-1]
    new.intercept_ = float(start[-1] + result.x[-1])
    new.isotonic_ = None  # the old calibration map belongs to the old coefficients
    new.metadata_ = {**(model.metadata_ or {}),
                     "refit": {"rows": int(len(clicks)), "impressions": float(shown.sum()),
                               "clicks": float(clicks.sum()),
                               "pairs": 0 if pairs is None else int(len(pairs[0])),
                               "pairwise_weight": float(pairwise_weight),
                               "pointwise_weight": float(pointwise_weight),
                               "change": float(np.linalg.norm(result.x))}}
    return new


def _pairs(groups, clicks, shown):
    """Every pair of rows within a group: (i, j, i's share of the pair's clicks, the
    pair's clicks at equal impressions)."""
    groups = np.asarray(groups)
    if len(groups) != len(clicks):
        raise RewardError(f"groups has {len(groups)} labels for {len(clicks)} rows")
    rate = (clicks + 0.5) / (shown + 1.0)
    i_all, j_all = [], []
    for label in np.unique(groups):
        rows = np.flatnonzero(groups == label)
        if len(rows) < 2:
            continue
        a, b = np.triu_indices(len(rows), 1)
        i_all.append(rows[a])
        j_all.append(rows[b])
    if not i_all:
        return None
    i, j = np.concatenate(i_all), np.concatenate(j_all)
    target = rate[i] / (rate[i] + rate[j])
    mass = 2 * shown[i] * shown[j] / (shown[i] + shown[j]) * (rate[i] + rate[j])
    return i, j, target, mass
