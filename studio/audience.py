"""Audiences: load a user table, cluster it, describe each cluster, assign new users.

**User table schema** (CSV or Parquet), one row per user:

- ``user_id`` (required): unique, non-empty; read as text.
- ``interests`` (optional): interest tags separated by ``;`` or ``|``
  (``"hiking;camping"``); empty means none.
- any other column: numeric columns (ints/floats; missing values are imputed with the
  median) and categorical columns (text/booleans; missing → ``"missing"``). A text column
  with a distinct value for most users (an e-mail, a name) is refused: it is an
  identifier, not a feature. Columns named in ``ignore`` (default: ``segment``, the planted
  truth of the demo audience) are not used.

Fitting is a scikit-learn pipeline — a ColumnTransformer (median imputation + scaling for
numbers, one-hot for categories, interest tags as a multi-hot vector or as the mean
MiniLM embedding of the user's tags, each user's tag vector L2-normalised and weighted)
— followed by KMeans (MiniBatchKMeans above 20,000 users), with ``k`` given or chosen by
the silhouette score over a range. The fitted encoding is exported to plain numbers, so a
saved audience is JSON (no pickle) and new users are assigned to the nearest centroid
with the same arithmetic.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from .errors import StudioError
from .files import MAX_DATA_BYTES, MAX_TEXT_BYTES, read_bytes

USER_ID = "user_id"
INTERESTS = "interests"
DEFAULT_IGNORE = ("segment",)
FORMAT = "creative-studio/audience"
VERSION = 1
ENCODINGS = ("multi-hot", "minilm")
LARGE = 20_000  # above this many users: MiniBatchKMeans, and k chosen on a sample
#: What separates interest tags in a table cell (also in a request: ``user_features``).
TAG_SPLIT = re.compile(r"[;|]")


@dataclass
class Cluster:
    """One audience cluster, described for people (profile) and for prompts (interests)."""

    id: int
    size: int
    share: float
    top_interests: list[tuple[str, float]]
    top_values: dict[str, list[tuple[str, float]]]
    numeric_means: dict[str, float]
    profile: str
    centroid: list[float] = field(repr=False)

    @property
    def interests(self) -> list[str]:
        return [tag for tag, _ in self.top_interests]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Cluster":
        return cls(
            id=int(data["id"]), size=int(data["size"]), share=float(data["share"]),
            top_interests=[(str(t), float(s)) for t, s in data["top_interests"]],
            top_values={c: [(str(v), float(s)) for v, s in vals]
                        for c, vals in data["top_values"].items()},
            numeric_means={c: float(v) for c, v in data["numeric_means"].items()},
            profile=str(data["profile"]), centroid=[float(v) for v in data["centroid"]],
        )


# --------------------------------------------------------------------------- loading
def load_users(source, *, ignore=DEFAULT_IGNORE) -> pd.DataFrame:
    """Read and validate a user table (path to .csv/.parquet, or a DataFrame)."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".txt", ".parquet", ".pq"):
            raise StudioError(f"user table {str(path)!r}: use a .csv or .parquet file")
        data = io.BytesIO(read_bytes(path, "user table", MAX_DATA_BYTES))
        try:
            if suffix in (".csv", ".txt"):
                frame = pd.read_csv(data, dtype={USER_ID: str}, keep_default_na=True)
            else:
                frame = pd.read_parquet(data)
        except StudioError:
            raise
        except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
            raise StudioError(f"cannot read user table {str(path)!r}: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return validate_users(frame, ignore=ignore)


def validate_users(frame: pd.DataFrame, *, ignore=DEFAULT_IGNORE) -> pd.DataFrame:
    """Check the schema; return the table with ``user_id`` as text and tags normalised."""
    if frame.empty:
        raise StudioError("the user table is empty")
    if USER_ID not in frame.columns:
        raise StudioError(f"the user table has no {USER_ID!r} column (columns: "
                          f"{', '.join(map(str, frame.columns[:8]))})")
    ids = frame[USER_ID]
    if ids.isna().any() or (ids.astype(str).str.strip() == "").any():
        row = int(np.flatnonzero(ids.isna() | (ids.astype(str).str.strip() == ""))[0])
        raise StudioError(f"{USER_ID} is missing in row {row + 1}")
    frame[USER_ID] = ids.astype(str).str.strip()
    duplicated = frame[USER_ID][frame[USER_ID].duplicated()].unique()
    if len(duplicated):
        raise StudioError(f"duplicate {USER_ID}s: {', '.join(map(repr, duplicated[:3]))}"
                          + (f" and {len(duplicated) - 3} more" if len(duplicated) > 3 else ""))
    if INTERESTS in frame.columns:
        tags = frame[INTERESTS]
        bad = tags[tags.notna() & ~tags.map(lambda v: isinstance(v, str))]
        if len(bad):
            raise StudioError(f"{INTERESTS} must be text tags separated by ';' — row "
                              f"{int(bad.index[0]) + 1} has {bad.iloc[0]!r}")
        frame[INTERESTS] = tags.fillna("").map(_normalise_tags)
    feature_columns(frame, ignore=ignore)  # refuses mixed, date and identifier-like columns
    return frame


def feature_columns(frame: pd.DataFrame, *, ignore=DEFAULT_IGNORE) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns of a user table, by their values."""
    numeric, categorical = [], []
    for column in frame.columns:
        if column in (USER_ID, INTERESTS) or column in ignore:
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(values):
            numeric.append(column)
        elif pd.api.types.is_datetime64_any_dtype(values):
            raise StudioError(f"column {column!r} holds dates; turn them into numbers "
                              "(e.g. days since signup) or ignore the column")
        else:
            present = values.dropna()
            as_numbers = pd.to_numeric(present, errors="coerce")
            if as_numbers.notna().any() and as_numbers.isna().any():
                example = present[as_numbers.isna()].iloc[0]
                raise StudioError(f"column {column!r} mixes numbers and text "
                                  f"(e.g. {example!r}); fix the values or ignore the column")
            if as_numbers.notna().all() and len(present):
                raise StudioError(f"column {column!r} holds numbers stored as text; "
                                  "write them as numbers")
            distinct = present.astype(str).nunique()
            if distinct > 50 and distinct > 0.5 * len(present):
                raise StudioError(f"column {column!r} has {distinct} distinct values: it looks "
                                  "like an identifier, not a feature; drop or ignore it")
            categorical.append(column)
    return numeric, categorical


def _normalise_tags(text: str) -> str:
    tags = [t.strip().lower() for t in TAG_SPLIT.split(text)]
    return ";".join(dict.fromkeys(t for t in tags if t))


def split_tags(text: str) -> list[str]:
    """Tags of a normalised ``interests`` value."""
    return [t for t in text.split(";") if t]


# --------------------------------------------------------------------------- model
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
        from .files import write_atomic

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
            audience.centroids_ = np.array([c.centroid for c in audience.clusters_])
        except (KeyError, TypeError, ValueError) as exc:
            raise StudioError(f"{where} is a damaged clusters file ({exc})") from None
        return audience


class TagEmbedding(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: the sum of MiniLM embeddings of each user's tags (the
    following Normalizer makes it the mean direction). Input: a column of ';'-joined
    tags."""

    def fit(self, X, y=None):
        from sklearn.feature_extraction.text import CountVectorizer

        from reward.embeddings import embed

        self.vectorizer_ = CountVectorizer(tokenizer=split_tags, lowercase=False, binary=True,
                                           token_pattern=None).fit(X)
        self.embeddings_ = embed(list(self.get_feature_names_out())).astype(np.float64)
        return self

    def transform(self, X):
        return np.asarray(self.vectorizer_.transform(X) @ self.embeddings_)

    def get_feature_names_out(self, input_features=None):
        return self.vectorizer_.get_feature_names_out()


def encode(frame: pd.DataFrame, encoding: dict) -> np.ndarray:
    """Encode a validated user table with exported encoding parameters."""
    blocks = []
    for spec in encoding["numeric"]:
        column = spec["column"]
        if column not in frame:
            raise StudioError(f"the user table lacks column {column!r} used by the clusters")
        values = pd.to_numeric(frame[column], errors="coerce").fillna(spec["median"]).to_numpy(float)
        blocks.append(((values - spec["mean"]) / spec["scale"])[:, None])
    for spec in encoding["categorical"]:
        column = spec["column"]
        if column not in frame:
            raise StudioError(f"the user table lacks column {column!r} used by the clusters")
        values = frame[column].astype(object).where(frame[column].notna(), "missing").astype(str)
        index = {c: i for i, c in enumerate(spec["categories"])}
        onehot = np.zeros((len(frame), len(index)))
        rows = np.array([index.get(v, -1) for v in values])
        known = rows >= 0
        onehot[np.flatnonzero(known), rows[known]] = 1.0
        blocks.append(onehot / np.sqrt(2))
    interests = encoding["interests"]
    if interests is not None:
        vocabulary = {t: i for i, t in enumerate(interests["vocabulary"])}
        tags = frame[INTERESTS].map(split_tags) if INTERESTS in frame else pd.Series(
            [[]] * len(frame))
        multi_hot = np.zeros((len(frame), len(vocabulary)))
        for row, user_tags in enumerate(tags):
            for tag in user_tags:
                if tag in vocabulary:
                    multi_hot[row, vocabulary[tag]] = 1.0
        vectors = multi_hot
        if interests["encoding"] == "minilm":
            from reward.embeddings import embed

            vectors = multi_hot @ embed(list(interests["vocabulary"])).astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        blocks.append(vectors * interests["weight"])
    return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))


def describe(cluster: Cluster) -> str:
    """A one-sentence profile of a cluster."""
    parts = [f"Cluster {cluster.id}: {cluster.size:,} users ({cluster.share:.0%})"]
    if cluster.top_interests:
        names = [t for t, _ in cluster.top_interests[:3]]
        parts.append("into " + (", ".join(names[:-1]) + " and " + names[-1]
                                if len(names) > 1 else names[0]))
    traits = [f"{values[0][0]} {column}" for column, values in cluster.top_values.items()
              if values and values[0][1] >= 0.5]
    if traits:
        parts.append("mostly " + ", ".join(traits[:2]))
    means = [f"average {column.replace('_', ' ')} {value:.3g}"
             for column, value in list(cluster.numeric_means.items())[:2]]
    if means:
        parts.append(", ".join(means))
    return "; ".join(parts) + "."


def _tag_shares(tags: pd.Series) -> dict[str, float]:
    counts: dict[str, int] = {}
    for user_tags in tags:
        for tag in user_tags:
            counts[tag] = counts.get(tag, 0) + 1
    n = max(1, len(tags))
    return {t: c / n for t, c in counts.items()}
