"""Audiences: cluster a user table, describe each cluster, assign new users.

Fitting is a scikit-learn pipeline — a ColumnTransformer (median imputation + scaling for
numbers, one-hot for categories, interest tags as a multi-hot vector or as the mean
MiniLM embedding of the user's tags, each user's tag vector L2-normalised and weighted)
— followed by KMeans (MiniBatchKMeans above 20,000 users), with ``k`` given or chosen by
the silhouette score over a range. The fitted encoding is exported to plain numbers, so a
saved audience is JSON (no pickle) and new users are assigned to the nearest centroid
with the same arithmetic (``tables.encode``). The user table schema is in ``tables``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import StudioError
from ..files import MAX_TEXT_BYTES, read_bytes
from .clusters import Cluster, describe, name_clusters
from .tables import (DEFAULT_IGNORE, INTERESTS, USER_ID, TagEmbedding, encode, feature_columns,
                     load_users, split_tags)

FORMAT = "creative-studio/audience"
VERSION = 1
ENCODINGS = ("multi-hot", "minilm")
LARGE = 20_000  # above this many users: MiniBatchKMeans, and k chosen on a sample


class Audience:
    """Cluster a user table; scikit-learn style: ``fit`` returns self, learned
    attributes end in ``_``.

    Parameters
    ----------
    k : number of clusters, or None to choose it by silhouette over ``k_range``.
    k_range : (low, high) inclusive range of k tried when ``k`` is None.
    interest_encoding : ``multi-hot`` or ``minilm`` (mean MiniLM embedding of the tags).
    interest_weight : weight of the (unit-length) interest vector against the scaled
        numeric and one-hot columns. Interests drive the prompts, so they dominate by
        default (on the demo audience, 6 lets the silhouette find the five segments).
    ignore : columns not used for clustering.
    seed : random seed of KMeans and sampling.
    """

    def __init__(self, k: int | None = None, *, k_range: tuple[int, int] = (2, 10),
                 interest_encoding: str = "multi-hot", interest_weight: float = 6.0,
                 ignore: tuple[str, ...] = DEFAULT_IGNORE, seed: int = 0):
        self.k = k
        self.k_range = k_range
        self.interest_encoding = interest_encoding
        self.interest_weight = interest_weight
        self.ignore = tuple(ignore)
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def fit(self, users) -> "Audience":
        self._check_params()
        frame = load_users(users, ignore=self.ignore)
        numeric, categorical = feature_columns(frame, ignore=self.ignore)
        has_tags = INTERESTS in frame.columns and frame[INTERESTS].str.len().gt(0).any()
        if not (numeric or categorical or has_tags):
            raise StudioError("the user table has no feature columns to cluster on")
        if self.k is not None and self.k > len(frame):
            raise StudioError(f"k={self.k} is more than the {len(frame)} users")
        pipeline = self._pipeline(numeric, categorical, has_tags)
        X = np.asarray(pipeline.fit_transform(frame), dtype=np.float64)
        self.encoding_ = self._export(pipeline, numeric, categorical, has_tags)
        self.silhouette_ = {}
        k = self.k if self.k is not None else self._choose_k(X)
        model = self._kmeans(k, len(X)).fit(X)
        self.k_ = k
        self.labels_ = model.labels_.astype(np.int64)
        self.centroids_ = model.cluster_centers_
        self.clusters_ = self._describe(frame, numeric, categorical, has_tags)
        self.user_ids_ = frame[USER_ID].to_numpy()
        return self

    def _check_params(self) -> None:
        if self.interest_encoding not in ENCODINGS:
            raise StudioError(f"interest_encoding must be one of {ENCODINGS}, got "
                              f"{self.interest_encoding!r}")
        if self.k is not None and (not isinstance(self.k, (int, np.integer)) or self.k < 1):
            raise StudioError(f"k must be a positive integer, got {self.k!r}")
        low, high = self.k_range
        if not (2 <= low <= high):
            raise StudioError(f"k_range must satisfy 2 <= low <= high, got {self.k_range}")
        if not self.interest_weight > 0:
            raise StudioError(f"interest_weight must be > 0, got {self.interest_weight}")

    def _pipeline(self, numeric, categorical, has_tags):
        from sklearn.compose import ColumnTransformer
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer, OneHotEncoder, StandardScaler

        parts, weights = [], {}
        if numeric:
            parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median"),
                                                   StandardScaler()), numeric))
        if categorical:
            parts.append(("categorical", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="missing"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical))
            weights["categorical"] = 1 / np.sqrt(2)  # a one-hot column spans distance √2
        if has_tags:
            tags = (TagEmbedding() if self.interest_encoding == "minilm" else
                    CountVectorizer(tokenizer=split_tags, lowercase=False, binary=True,
                                    token_pattern=None))
            parts.append(("interests", make_pipeline(tags, Normalizer()), INTERESTS))
            weights["interests"] = self.interest_weight
        return ColumnTransformer(parts, transformer_weights=weights, sparse_threshold=0.0)

    def _export(self, pipeline, numeric, categorical, has_tags) -> dict:
        """The fitted encoding as plain numbers (JSON-able), enough to encode new users."""
        encoding = {"numeric": [], "categorical": [], "interests": None}
        named = pipeline.named_transformers_
        if numeric:
            imputer, scaler = named["numeric"].steps[0][1], named["numeric"].steps[1][1]
            encoding["numeric"] = [
                {"column": c, "median": float(m), "mean": float(mu), "scale": float(s)}
                for c, m, mu, s in zip(numeric, imputer.statistics_, scaler.mean_, scaler.scale_)]
        if categorical:
            onehot = named["categorical"].steps[1][1]
            encoding["categorical"] = [
                {"column": c, "categories": [str(v) for v in cats]}
                for c, cats in zip(categorical, onehot.categories_)]
        if has_tags:
            vocabulary = [str(t) for t in named["interests"].steps[0][1].get_feature_names_out()]
            encoding["interests"] = {"vocabulary": vocabulary, "encoding": self.interest_encoding,
                                     "weight": float(self.interest_weight)}
        return encoding

    def _choose_k(self, X: np.ndarray) -> int:
        from sklearn.metrics import silhouette_score

        low, high = self.k_range
        rng = np.random.default_rng(self.seed)
        sample = X if len(X) <= LARGE else X[rng.choice(len(X), LARGE // 2, replace=False)]
        high = min(high, len(sample) - 1)
        if high < low:
            raise StudioError(f"too few users ({len(X)}) to choose k in {self.k_range}")
        for k in range(low, high + 1):
            labels = self._kmeans(k, len(sample)).fit_predict(sample)
            self.silhouette_[k] = float(silhouette_score(
                sample, labels, sample_size=min(3000, len(sample)), random_state=self.seed))
        return max(self.silhouette_, key=self.silhouette_.get)

    def _kmeans(self, k: int, n: int):
        from sklearn.cluster import KMeans, MiniBatchKMeans

        if n > LARGE:
            return MiniBatchKMeans(n_clusters=k, random_state=self.seed, n_init=3,
                                   batch_size=4096)
        return KMeans(n_clusters=k, random_state=self.seed, n_init=10)

    # --------------------------------------------------------------- describing
    def _describe(self, frame, numeric, categorical, has_tags) -> list[Cluster]:
        labels, n = self.labels_, len(frame)
        tags = frame[INTERESTS].map(split_tags) if has_tags else None
        overall = _tag_shares(tags) if has_tags else {}
        clusters = []
        for c in range(self.k_):
            members = labels == c
            size = int(members.sum())
            interests = []
            if has_tags:
                shares = _tag_shares(tags[members])
                lifted = sorted(((shares[t] - overall[t], t) for t in shares), reverse=True)
                interests = [(t, round(shares[t], 3)) for gain, t in lifted[:6] if gain > 0][:5]
            top_values = {}
            for column in categorical:
                counts = frame.loc[members, column].fillna("missing").astype(str).value_counts(
                    normalize=True)
                top_values[column] = [(str(v), round(float(s), 3)) for v, s in counts.head(2).items()]
            means = {col: round(float(frame.loc[members, col].mean()), 2) for col in numeric}
            cluster = Cluster(c, size, round(size / n, 4), interests, top_values, means, "",
                              [float(v) for v in self.centroids_[c]])
            cluster.profile = describe(cluster)
            clusters.append(cluster)
        for cluster, name in zip(clusters, name_clusters(clusters)):
            cluster.name = name
        return clusters

    # -------------------------------------------------------------- assignment
    def transform(self, users) -> np.ndarray:
        """Encode users with the fitted encoding (the same numbers as the pipeline)."""
        self._check_fitted()
        return encode(load_users(users, ignore=self.ignore), self.encoding_)

    def assign(self, users) -> np.ndarray:
        """Nearest-centroid cluster id of each user."""
        X = self.transform(users)
        distances = ((X[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)
        return distances.argmin(axis=1)

    def cluster(self, cluster_id: int) -> Cluster:
        self._check_fitted()
        for cluster in self.clusters_:
            if cluster.id == cluster_id:
                return cluster
        raise StudioError(f"no cluster {cluster_id}; clusters are 0..{self.k_ - 1}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "clusters_"):
            raise StudioError("this audience is not fitted yet; call fit() or load()")

    # -------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the fitted audience as JSON (no pickle), atomically."""
        from ..files import write_atomic

        write_atomic(Path(path), json.dumps(self.to_document(), indent=1).encode() + b"\n")

    def to_document(self) -> dict:
        """The fitted audience as a JSON-able document."""
        self._check_fitted()
        return {
            "format": FORMAT, "version": VERSION,
            "params": {"k": self.k, "k_range": list(self.k_range),
                       "interest_encoding": self.interest_encoding,
                       "interest_weight": self.interest_weight, "ignore": list(self.ignore),
                       "seed": self.seed},
            "k": self.k_, "silhouette": {str(k): v for k, v in self.silhouette_.items()},
            "encoding": self.encoding_,
            "clusters": [c.as_dict() for c in self.clusters_],
        }

    @classmethod
    def load(cls, path) -> "Audience":
        path = Path(path)
        data = read_bytes(path, "clusters file", MAX_TEXT_BYTES)
        try:
            document = json.loads(data.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StudioError(f"{str(path)!r} is not a clusters file ({exc})") from None
        return cls.from_document(document, where=repr(str(path)))

    @classmethod
    def from_document(cls, document, *, where: str = "the clusters document") -> "Audience":
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise StudioError(f"{where} is not a clusters file written by `studio audience fit`")
        if document.get("version") != VERSION:
            raise StudioError(f"{where} has version {document.get('version')!r}; this "
                              f"studio reads version {VERSION}")
        try:
            params = document["params"]
            audience = cls(params["k"], k_range=tuple(params["k_range"]),
                           interest_encoding=params["interest_encoding"],
                           interest_weight=params["interest_weight"],
                           ignore=tuple(params["ignore"]), seed=params["seed"])
            audience.k_ = int(document["k"])
            audience.silhouette_ = {int(k): float(v) for k, v in document["silhouette"].items()}
            audience.encoding_ = document["encoding"]
            audience.clusters_ = [Cluster.from_dict(c) for c in document["clusters"]]
            if not all(c.get("name") for c in document["clusters"]):
                # Written before clusters had names: name them as a whole, so they are
                # unique (profiles are kept as written).
                for cluster, name in zip(audience.clusters_, name_clusters(audience.clusters_)):
                    cluster.name = name
            audience.centroids_ = np.array([c.centroid for c in audience.clusters_])
        except (KeyError, TypeError, ValueError) as exc:
            raise StudioError(f"{where} is a damaged clusters file ({exc})") from None
        return audience



def _tag_shares(tags: pd.Series) -> dict[str, float]:
    counts: dict[str, int] = {}
    for user_tags in tags:
        for tag in user_tags:
            counts[tag] = counts.get(tag, 0) + 1
    n = max(1, len(tags))
    return {t: c / n for t, c in counts.items()}
