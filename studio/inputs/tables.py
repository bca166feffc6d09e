"""User tables: read and validate them, and encode users with a fitted encoding.

**User table schema** (CSV or Parquet), one row per user:

- ``user_id`` (required): unique, non-empty; read as text.
- ``interests`` (optional): interest tags separated by ``;`` or ``|``
  (``"hiking;camping"``); empty means none.
- any other column: numeric columns (ints/floats; missing values are imputed with the
  median) and categorical columns (text/booleans; missing → ``"missing"``). A text column
  with a distinct value for most users (an e-mail, a name) is refused: it is an
  identifier, not a feature. Columns named in ``ignore`` (default: ``segment``, the planted
  truth of the demo audience) are not used.

``encode`` turns a validated table into feature vectors with the encoding an
``Audience`` exported when it was fitted (plain numbers: the same arithmetic as the
scikit-learn pipeline); ``TagEmbedding`` is that pipeline's MiniLM encoding of the tags.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from ..errors import StudioError
from ..files import MAX_DATA_BYTES, read_bytes

USER_ID = "user_id"
INTERESTS = "interests"
DEFAULT_IGNORE = ("segment",)
#: What separates interest tags in a table cell (also in a request: ``user_features``).
TAG_SPLIT = re.compile(r"[;|]")


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


# -------------------------------------------------------------------------- encoding
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

