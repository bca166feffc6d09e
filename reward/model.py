"""CTRModel: click-through rate of a creative in a context, from impression logs.

Each impression row has three blocks of features: the *context* (who sees it: a user's
or cluster's encoded features, placement), the *image* features of the creative and the
*text* embedding of its prompt. The model standardises each block, compresses the context
and the text with PCA, and fits a logistic regression on the main effects plus every
context × creative interaction — so that what a creative is worth can depend on who
looks at it. Logistic regression on a well-specified logit is calibrated; an optional
isotonic step (fitted on held-out rows) can correct the rest.

Rows are single impressions (clicks 0/1) or aggregates (``clicks`` out of
``impressions``). scikit-learn fits the parameters; they are then exported to plain
arrays, so predictions use one numpy path, before and after ``save``/``load`` (a
versioned npz + JSON file, no pickle).

Why this module is long: ``CTRModel`` fits with scikit-learn and predicts with its own
exported arrays; the fit, the export, the numpy prediction path and ``save``/``load``
must agree on one parameter layout, so they stay in one class. The metrics after it (AUC,
log-loss, ECE, pairwise accuracy) are short and judge that model's scores.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import RewardError

FORMAT = "creative-studio/ctr-model"
VERSION = 1


class CTRModel:
    """Logistic CTR model with context × creative interactions.

    Parameters
    ----------
    context_components, text_components : PCA sizes of the context and text blocks.
    C : inverse L2 regularisation strength of the logistic regression.
    calibration : ``none`` or ``isotonic`` (fitted on ``calibration_share`` of the rows).
    seed : random seed (PCA, the calibration split).
    """

    def __init__(self, *, context_components: int = 8, text_components: int = 16,
                 C: float = 1.0, calibration: str = "none", calibration_share: float = 0.2,
                 max_iter: int = 2000, seed: int = 0):
        self.context_components = context_components
        self.text_components = text_components
        self.C = C
        self.calibration = calibration
        self.calibration_share = calibration_share
        self.max_iter = max_iter
        self.seed = seed

    # ---------------------------------------------------------------- fitting
    def fit(self, context, image, text, clicks, impressions=None, *, creative=None) -> "CTRModel":
        """Fit on rows of (context, image, text) → clicks (0/1, or out of ``impressions``).

        With ``creative`` (an index per row), ``image`` and ``text`` are tables with one
        row per creative, and row i uses ``image[creative[i]]`` and ``text[creative[i]]``
        — logs of many impressions of few creatives then cost little memory.
        """
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression

        self._check_params()
        context, image, text = self._blocks(context, image, text, fitted=False,
                                            creative=creative)
        y, weight = _targets(clicks, impressions, len(context))
        if y.min() == y.max():
            raise RewardError("the log has only clicks or only non-clicks: nothing to learn")
        rng = np.random.default_rng(self.seed)
        calibrate = self.calibration == "isotonic"
        holdout = rng.random(len(context)) < self.calibration_share if calibrate else \
            np.zeros(len(context), bool)
        train = ~holdout

        index = _row_index(creative, len(context))
        used = np.unique(index[train])
        self.blocks_ = {}
        for name, block, rows, components in (
                ("context", context, train, self.context_components),
                ("image", image, used, None), ("text", text, used, self.text_components)):
            sample = block[rows]
            mean = sample.mean(axis=0)
            scale = sample.std(axis=0)
            scale[scale < 1e-9] = 1.0
            spec = {"mean": mean, "scale": scale}
            if components is not None and block.shape[1] > components \
                    and len(sample) > components:
                pca = PCA(n_components=components, random_state=self.seed)
                pca.fit((sample - mean) / scale)
                spec["components"] = pca.components_
                spec["pca_mean"] = pca.mean_
            self.blocks_[name] = spec
        X = self._design(context, image, text, index)
        rows, labels, weights = _expand(X[train], y[train], weight[train])
        regression = LogisticRegression(C=self.C, max_iter=self.max_iter)
        regression.fit(rows, labels, sample_weight=weights)
        self.coef_ = regression.coef_[0].astype(np.float64)
        self.intercept_ = float(regression.intercept_[0])
        self.n_features_in_ = {"context": context.shape[1], "image": image.shape[1],
                               "text": text.shape[1]}
        self.metadata_ = {}  # free-form notes saved with the model (e.g. which CLIP)
        self.isotonic_ = None
        if calibrate:
            from sklearn.isotonic import IsotonicRegression

            raw = _sigmoid(X[holdout] @ self.coef_ + self.intercept_)
            rows, labels, weights = _expand(raw[:, None], y[holdout], weight[holdout])
            iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6)
            iso.fit(rows[:, 0], labels, sample_weight=weights)
            self.isotonic_ = (iso.X_thresholds_.astype(np.float64),
                              iso.y_thresholds_.astype(np.float64))
        return self

    def _check_params(self) -> None:
        if self.calibration not in ("none", "isotonic"):
            raise RewardError(f"calibration must be 'none' or 'isotonic', got {self.calibration!r}")
        if not (isinstance(self.context_components, int) and self.context_components >= 1
                and isinstance(self.text_components, int) and self.text_components >= 1):
            raise RewardError("context_components and text_components must be integers >= 1")
        if not self.C > 0:
            raise RewardError(f"C must be > 0, got {self.C}")
        if not 0 < self.calibration_share < 1:
            raise RewardError(f"calibration_share must be in (0, 1), got {self.calibration_share}")

    # ------------------------------------------------------------- predicting
    def predict_ctr(self, context, image, text, *, creative=None) -> np.ndarray:
        """Predicted click probability per row (``creative`` as in ``fit``)."""
        self._check_fitted()
        context, image, text = self._blocks(context, image, text, fitted=True,
                                            creative=creative)
        X = self._design(context, image, text, _row_index(creative, len(context)))
        p = _sigmoid(X @ self.coef_ + self.intercept_)
        if self.isotonic_ is not None:
            p = np.interp(p, *self.isotonic_)
        return p

    def evaluate(self, context, image, text, clicks, impressions=None, *, creative=None,
                 groups=None, creative_ids=None, n_bins: int = 10) -> dict:
        """AUC, log-loss, expected calibration error and, given ``groups`` (e.g. product
        × cluster) and ``creative_ids``, pairwise accuracy of creatives within groups."""
        predicted = self.predict_ctr(context, image, text, creative=creative)
        return evaluate_scores(predicted, clicks, impressions, groups=groups,
                               creative_ids=creative_ids, n_bins=n_bins)

    # -------------------------------------------------------------- internals
    def _blocks(self, context, image, text, *, fitted: bool, creative=None):
        blocks = []
        for name, block in (("context", context), ("image", image), ("text", text)):
            array = np.asarray(block, dtype=np.float64)
            if array.ndim != 2:
                raise RewardError(f"{name} features must be a 2-D array, got shape {array.shape}")
            if fitted and array.shape[1] != self.n_features_in_[name]:
                raise RewardError(f"{name} features have {array.shape[1]} columns; the model "
                                  f"was fitted on {self.n_features_in_[name]}")
            if not np.isfinite(array).all():
                raise RewardError(f"{name} features contain NaN or inf")
            blocks.append(array)
        if len(blocks[0]) == 0:
            raise RewardError("no rows")
        if creative is None:
            if not (len(blocks[0]) == len(blocks[1]) == len(blocks[2])):
                raise RewardError(f"context, image and text have different numbers of rows: "
                                  f"{len(blocks[0])}, {len(blocks[1])}, {len(blocks[2])}")
        else:
            index = np.asarray(creative)
            if index.shape != (len(blocks[0]),) or not np.issubdtype(index.dtype, np.integer):
                raise RewardError("creative must be one integer index per context row")
            if len(blocks[1]) != len(blocks[2]):
                raise RewardError("image and text tables have different numbers of creatives")
            if index.min() < 0 or index.max() >= len(blocks[1]):
                raise RewardError(f"creative indices must be in [0, {len(blocks[1])})")
        return blocks

    def _design(self, context, image, text, index: np.ndarray) -> np.ndarray:
        c = self._transform("context", context)
        per_creative = np.hstack([self._transform("image", image), self._transform("text", text)])
        v = per_creative[index]
        interactions = (c[:, :, None] * v[:, None, :]).reshape(len(c), -1)
        return np.hstack([c, v, interactions])

    def _transform(self, name: str, block: np.ndarray) -> np.ndarray:
        spec = self.blocks_[name]
        z = (block - spec["mean"]) / spec["scale"]
        if "components" in spec:
            z = (z - spec["pca_mean"]) @ spec["components"].T
        return z

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RewardError("this CTR model is not fitted yet; call fit() or load()")

    # ------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the model atomically as one versioned npz file (no pickle)."""
        self._check_fitted()
        arrays = {"coef": self.coef_}
        for name, spec in self.blocks_.items():
            for key, value in spec.items():
                arrays[f"{name}.{key}"] = value
        if self.isotonic_ is not None:
            arrays["isotonic.x"], arrays["isotonic.y"] = self.isotonic_
        meta = {"format": FORMAT, "version": VERSION, "intercept": self.intercept_,
                "n_features_in": self.n_features_in_,
                "metadata": getattr(self, "metadata_", {}),
                "params": {"context_components": self.context_components,
                           "text_components": self.text_components, "C": self.C,
                           "calibration": self.calibration,
                           "calibration_share": self.calibration_share,
                           "max_iter": self.max_iter, "seed": self.seed}}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(buffer.getvalue())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path) -> "CTRModel":
        path = Path(path)
        if not path.is_file():
            raise RewardError(f"model file {str(path)!r} does not exist")
        if not zipfile.is_zipfile(path):
            raise RewardError(f"{str(path)!r} is not a CTR model file")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode())
                arrays = {k: data[k] for k in data.files if k != "meta"}
        except (KeyError, ValueError, OSError, zipfile.BadZipFile, UnicodeDecodeError):
            raise RewardError(f"{str(path)!r} is a damaged CTR model file") from None
        if meta.get("format") != FORMAT:
            raise RewardError(f"{str(path)!r} is not a CTR model file")
        if meta.get("version") != VERSION:
            raise RewardError(f"{str(path)!r} has format version {meta.get('version')!r}; "
                              f"this library reads version {VERSION}")
        try:
            model = cls(**meta["params"])
            model.intercept_ = float(meta["intercept"])
            model.n_features_in_ = {k: int(v) for k, v in meta["n_features_in"].items()}
            model.metadata_ = dict(meta.get("metadata", {}))
            model.coef_ = arrays.pop("coef")
            iso = (arrays.pop("isotonic.x", None), arrays.pop("isotonic.y", None))
            model.isotonic_ = iso if iso[0] is not None else None
            model.blocks_ = {}
            for key, value in arrays.items():
                name, field = key.split(".", 1)
                model.blocks_.setdefault(name, {})[field] = value
            if set(model.blocks_) != {"context", "image", "text"}:
                raise KeyError("blocks")
        except (KeyError, TypeError, ValueError):
            raise RewardError(f"{str(path)!r} is a damaged CTR model file") from None
        return model


def evaluate_scores(scores, clicks, impressions=None, *, groups=None, creative_ids=None,
                    n_bins: int = 10) -> dict:
    """Metrics of any CTR score (the model's, or an oracle's true CTR)."""
    from sklearn.metrics import log_loss, roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    y, weight = _targets(clicks, impressions, len(scores))
    rows, labels, weights = _expand(scores[:, None], y, weight)
    p = np.clip(rows[:, 0], 1e-7, 1 - 1e-7)
    result = {
        "auc": float(roc_auc_score(labels, p, sample_weight=weights)),
        "log_loss": float(log_loss(labels, p, sample_weight=weights)),
        "ece": expected_calibration_error(scores, y, weight, n_bins=n_bins),
        "mean_predicted": float(np.average(scores, weights=weight)),
        "observed_ctr": float(np.average(y, weights=weight)),
        "impressions": int(weight.sum()),
    }
    if groups is not None and creative_ids is not None:
        result["pairwise_acc"] = pairwise_accuracy(scores, y, weight, groups, creative_ids)
    return result


def expected_calibration_error(scores, rates, weight, *, n_bins: int = 10) -> float:
    """Impression-weighted |mean predicted − observed CTR| over equal-mass score bins."""
    scores, rates, weight = (np.asarray(a, dtype=np.float64) for a in (scores, rates, weight))
    order = np.argsort(scores, kind="stable")
    cumulative = np.cumsum(weight[order])
    bins = np.minimum((cumulative / cumulative[-1] * n_bins).astype(int), n_bins - 1)
    total, error = weight.sum(), 0.0
    for b in range(n_bins):
        idx = order[bins == b]
        if len(idx):
            w = weight[idx]
            error += w.sum() / total * abs(np.average(scores[idx], weights=w)
                                           - np.average(rates[idx], weights=w))
    return float(error)


def pairwise_accuracy(scores, rates, weight, groups, creative_ids) -> float:
    """Within each group, the share of creative pairs with different observed CTR that
    the scores order the same way (creatives aggregated over their impressions)."""
    import pandas as pd

    frame = pd.DataFrame({"group": np.asarray(groups), "creative": np.asarray(creative_ids),
                          "score": np.asarray(scores) * weight, "clicks": np.asarray(rates) * weight,
                          "weight": weight})
    per = frame.groupby(["group", "creative"], sort=False).sum()
    agree = total = 0
    for _, block in per.groupby(level=0):
        score = (block["score"] / block["weight"]).to_numpy()
        ctr = (block["clicks"] / block["weight"]).to_numpy()
        ds = np.sign(score[:, None] - score[None, :])
        dc = np.sign(ctr[:, None] - ctr[None, :])
        upper = np.triu(np.ones_like(dc, dtype=bool), 1) & (dc != 0)
        agree += int((ds[upper] == dc[upper]).sum())
        total += int(upper.sum())
    return float(agree / total) if total else float("nan")


def _row_index(creative, n: int) -> np.ndarray:
    """Row → creative-table index (identity when rows carry their own features)."""
    return np.arange(n) if creative is None else np.asarray(creative, dtype=np.int64)


def _targets(clicks, impressions, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Observed CTR per row and its weight (impressions)."""
    clicks = np.asarray(clicks, dtype=np.float64).reshape(-1)
    if len(clicks) != n:
        raise RewardError(f"clicks has {len(clicks)} rows, the features {n}")
    if impressions is None:
        if not np.isin(clicks, (0.0, 1.0)).all():
            raise RewardError("without impressions, clicks must be 0 or 1 per row")
        return clicks, np.ones(n)
    impressions = np.asarray(impressions, dtype=np.float64).reshape(-1)
    if len(impressions) != n:
        raise RewardError(f"impressions has {len(impressions)} rows, the features {n}")
    if (impressions <= 0).any() or (clicks < 0).any() or (clicks > impressions).any() \
            or not np.isfinite(clicks).all() or not np.isfinite(impressions).all():
        raise RewardError("need 0 <= clicks <= impressions and impressions > 0 on every row")
    return clicks / impressions, impressions


def _expand(X: np.ndarray, rate: np.ndarray, weight: np.ndarray):
    """Rows with a click rate become a clicked and a not-clicked row, weighted."""
    clicked, missed = rate * weight, (1 - rate) * weight
    keep_c, keep_m = clicked > 0, missed > 0
    rows = np.vstack([X[keep_c], X[keep_m]])
    labels = np.concatenate([np.ones(keep_c.sum()), np.zeros(keep_m.sum())])
    return rows, labels, np.concatenate([clicked[keep_c], missed[keep_m]])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))
