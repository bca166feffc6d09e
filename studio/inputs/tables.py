"""User tables: read and validate them, and encode users with a fitted encoding.

**User table schema** (CSV/TSV or Parquet), one row per user. Text files (.csv, .tsv,
.txt) are UTF-8, delimited by ``,``, ``;`` or a tab (read from the header line); a ``;``-
or tab-delimited file may write decimals with a comma (``66,1``). Other files (an image,
a spreadsheet) are refused by name.

- ``user_id`` (required): unique, non-empty; read as text.
- ``interests`` (optional): interest tags separated by ``;`` or ``|``
  (``"hiking;camping"``; quoted in a ``;``-delimited file); empty means none.
- any other column: numeric columns (ints/floats; missing values are imputed with the
  median) and categorical columns (text/booleans; missing → ``"missing"``). A text column
  with a distinct value for most users (an e-mail, a name) is refused: it is an
  identifier, not a feature. A column of dates (typed, or text such as ``2024-03-01``)
  is refused: turn it into a number (an age, days since). Columns named in ``ignore``
  (default: ``segment``, the planted truth of the demo audience) are not used.

``encode`` turns a validated table into feature vectors with the encoding an
``Audience`` exported when it was fitted (plain numbers: the same arithmetic as the
scikit-learn pipeline); ``TagEmbedding`` is that pipeline's MiniLM encoding of the tags.
"""

from __future__ import annotations

import csv
import datetime
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
#: File name endings read as delimited text, and as Parquet.
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Delimiters a text table may use (``|`` is not one: it separates interest tags).
DELIMITERS = (",", ";", "\t")
_SAMPLE_BYTES = 64 * 1024
#: How other files start (images, PDF, zip-based Office files, Parquet): never a text table.
_BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"%PDF", b"PK\x03\x04",
                 b"PAR1", b"\xd0\xcf\x11\xe0")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_DECIMAL_POINT = re.compile(r"^[+-]?\d*\.\d+$")


def load_users(source, *, ignore=DEFAULT_IGNORE) -> pd.DataFrame:
    """Read and validate a user table: a path to a delimited text file (.csv, .tsv, .txt:
    ``,``, ``;`` or tab, see ``sniff_delimiter``) or a Parquet file (.parquet, .pq), or a
    DataFrame. Anything else (an image, a spreadsheet, binary content under a .csv name)
    is refused by name rather than read as garbage."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix not in TEXT_SUFFIXES + PARQUET_SUFFIXES:
            raise StudioError(_not_a_table(path))
        raw = read_bytes(path, "user table", MAX_DATA_BYTES)
        try:
            if suffix in TEXT_SUFFIXES:
                frame = _read_text_table(path, raw)
            else:
                frame = pd.read_parquet(io.BytesIO(raw))
        except StudioError:
            raise
        except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
            raise StudioError(f"cannot read user table {str(path)!r}: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return validate_users(frame, ignore=ignore)


def _not_a_table(path: Path) -> str:
    return (f"{path.name} is not a user table (CSV, TSV or Parquet); export the users as "
            ".csv, .tsv or .parquet with a user_id column")


def _read_text_table(path: Path, raw: bytes) -> pd.DataFrame:
    """A delimited text table: binary content is refused, the delimiter is sniffed and a
    decimal comma (``66,1``) is read as a number where the file uses it throughout."""
    head = raw[:_SAMPLE_BYTES]
    if head.startswith(_BINARY_MAGIC) or b"\x00" in head:
        raise StudioError(_not_a_table(path))
    if len(raw) > len(head):
        head = head[:head.rfind(b"\n") + 1]  # whole lines only
    try:
        sample = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StudioError(f"user table {str(path)!r} is not UTF-8 text; save it as UTF-8 "
                          "CSV") from None
    delimiter = sniff_delimiter(sample)
    decimal = _sniff_decimal(sample, delimiter)
    return pd.read_csv(io.BytesIO(raw), sep=delimiter, decimal=decimal, dtype={USER_ID: str},
                       keep_default_na=True, encoding="utf-8-sig")


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a text table, from its header: the one of ``DELIMITERS`` that
    makes ``user_id`` a column name, else the one that splits the header the most (a
    table without ``user_id`` is then refused by name in ``validate_users``). The header
    decides because cells may hold the other delimiters (``hiking;camping``)."""
    lines = sample.splitlines()
    header = lines[0] if lines else ""
    fields = {d: next(csv.reader([header], delimiter=d), []) for d in DELIMITERS}
    for delimiter, names in fields.items():
        if USER_ID in (name.strip() for name in names):
            return delimiter
    return max(DELIMITERS, key=lambda d: len(fields[d]))


def _sniff_decimal(sample: str, delimiter: str) -> str:
    """``,`` when a ``;``- or tab-delimited sample writes decimals with a comma and never
    with a point (a European export), else ``.``. Mixed styles stay text and are refused
    by ``feature_columns`` with an example."""
    if delimiter == ",":
        return "."
    lines = sample.splitlines()[1:]
    cells = [cell.strip() for row in csv.reader(lines, delimiter=delimiter) for cell in row]
    comma = any(_DECIMAL_COMMA.match(cell) for cell in cells)
    point = any(_DECIMAL_POINT.match(cell) for cell in cells)
    return "," if comma and not point else "."


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
            raise StudioError(_dates_error(column, values.dropna()))
        else:
            present = values.dropna()
            head = present.iloc[:_DATE_PROBE]  # enough to tell, bounded on big tables
            dates = head.map(_looks_like_date).astype(bool)
            if len(head) and dates.mean() > 0.5:
                raise StudioError(_dates_error(column, head[dates]))
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


#: Values of a text column looked at to tell whether it holds dates.
_DATE_PROBE = 1000
#: Text that is a date (ISO ``2024-03-01`` with an optional time, ``01/03/2024``,
#: ``1.3.24``), as CSV files hold them.
_DATE_TEXT = re.compile(r"^\s*(\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"
                        r"(Z|[+-]\d{2}:?\d{2})?)?|\d{4}/\d{1,2}/\d{1,2}"
                        r"|\d{1,2}[/.]\d{1,2}[/.]\d{2}(\d{2})?)\s*$")


def _looks_like_date(value) -> bool:
    """A date or time value (Parquet ``date`` objects) or text written as a date."""
    if isinstance(value, (datetime.date, datetime.time)):
        return True
    return isinstance(value, str) and bool(_DATE_TEXT.match(value))


def _dates_error(column: str, dates: pd.Series) -> str:
    """Dates are refused: a date is not a number nor a category KMeans can use."""
    example = f" (e.g. {str(dates.iloc[0])!r})" if len(dates) else ""
    return (f"column {column!r} holds dates{example}; user tables take no date columns: "
            f"turn it into a number (an age, or days since {column.replace('_', ' ')}) or "
            "ignore the column")


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

