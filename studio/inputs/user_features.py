"""One user's features as a request gives them (the selection API's ``user`` object).

A request may name only the audience's columns: unknown keys are refused before any
work (one set difference, however many there are), numbers must be finite and within
±``MAX_FEATURE_ABS``, text is bounded, interests are bounded in number and length. What
passes is exactly what ``encode`` can turn into the audience's feature vector.
"""

from __future__ import annotations

from itertools import islice

import numpy as np

from ..errors import StudioError
from .tables import TAG_SPLIT, DEFAULT_IGNORE, INTERESTS, USER_ID

#: Bounds on the features of one user sent for assignment (e.g. the API's ``user``).
MAX_FEATURE_ABS = 1e9      # |number|
MAX_FEATURE_TEXT = 1_000   # characters of a text value (and of the joined interests)
MAX_TAGS = 100             # interest tags of one user
_SHOWN = 5                 # unknown keys named in an error


def feature_schema(encoding: dict, *, ignore=DEFAULT_IGNORE) -> dict[str, str]:
    """The keys one user's features may have, for a fitted encoding: column → kind.

    ``numeric``, ``categorical`` and ``interests`` are encoded; ``unused`` keys
    (``user_id``, the ignored columns, ``interests`` when the audience has no tags) are
    accepted, checked for bounds and dropped. Any other key is refused.
    """
    schema = {USER_ID: "unused", INTERESTS: "unused"}
    schema.update({column: "unused" for column in ignore})
    schema.update({spec["column"]: "numeric" for spec in encoding["numeric"]})
    schema.update({spec["column"]: "categorical" for spec in encoding["categorical"]})
    if encoding.get("interests") is not None:
        schema[INTERESTS] = "interests"
    return schema


def check_user_features(user, encoding: dict, *, ignore=DEFAULT_IGNORE) -> dict:
    """Validate one user's features against a fitted encoding; return the ones it uses.

    Rules (each violation is a ``StudioError`` that names the key): ``user`` is an
    object whose keys are in ``feature_schema`` (unknown keys are refused — they are
    never turned into columns); every numeric and categorical column of the encoding
    is present (``null`` imputes it: the median, or ``"missing"``); ``interests`` may
    be left out (no tags). Numbers are finite with ``|x| <= MAX_FEATURE_ABS`` (booleans
    are not numbers); text is at most ``MAX_FEATURE_TEXT`` characters; ``interests`` is
    text (tags separated by ``;`` or ``|``) or a list of text tags, at most ``MAX_TAGS``
    tags. Nested objects are refused.
    """
    if not isinstance(user, dict):
        raise StudioError("user: must be an object of feature values")
    schema = feature_schema(encoding, ignore=ignore)
    # Unknown keys first, with set arithmetic in C: a body with thousands of extra keys
    # is refused before any per-value work.
    unknown = user.keys() - schema.keys()
    if unknown:
        shown = list(islice((key for key in user if key in unknown), _SHOWN))
        names = ", ".join(repr(str(k) if len(str(k)) <= 40 else str(k)[:40] + "…")
                          for k in shown)
        more = f" and {len(unknown) - len(shown)} more" if len(unknown) > len(shown) else ""
        raise StudioError(f"user: unknown feature{'s' if len(unknown) > 1 else ''} "
                          f"{names}{more}; known: {', '.join(schema)}")
    missing = [c for c, kind in schema.items()
               if kind in ("numeric", "categorical") and c not in user]
    if missing:
        raise StudioError(f"user: missing feature{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(map(repr, missing))} (send null to impute a value)")
    used = {}
    for key, value in user.items():
        kind = schema[key]
        if kind == "numeric":
            value = _check_number(key, value, strict=True)
        elif key == INTERESTS:
            value = _check_tags(key, value)
        else:
            value = _check_scalar(key, value)
        if kind != "unused":
            used[key] = value
    return used


_NOT_A_NUMBER = object()


def _check_number(key: str, value, *, strict: bool = False):
    """A bounded finite number, or None; anything else is an error when ``strict``,
    else ``_NOT_A_NUMBER``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        if strict:
            raise StudioError(f"user.{key}: must be a number or null, got {type(value).__name__}")
        return _NOT_A_NUMBER
    if isinstance(value, (int, np.integer)):
        # Compare as integers: float() of a 400-digit integer overflows.
        if abs(int(value)) > MAX_FEATURE_ABS:
            raise StudioError(f"user.{key}: must be within ±{MAX_FEATURE_ABS:g}")
        return int(value)
    if not np.isfinite(value):
        raise StudioError(f"user.{key}: must be a finite number, got {value}")
    if abs(value) > MAX_FEATURE_ABS:
        raise StudioError(f"user.{key}: must be within ±{MAX_FEATURE_ABS:g}, got {value:g}")
    return float(value)


def _check_scalar(key: str, value):
    """A categorical (or unused) value: null, text, a boolean or a bounded number."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_FEATURE_TEXT:
            raise StudioError(f"user.{key}: text longer than {MAX_FEATURE_TEXT} characters")
        return _check_encodable(key, value)
    number = _check_number(key, value)
    if number is _NOT_A_NUMBER:
        raise StudioError(f"user.{key}: must be text, a number, a boolean or null, got "
                          f"{type(value).__name__}")
    return number


def _check_tags(key: str, value) -> str:
    """Interest tags as one ``;``-joined string."""
    if value is None:
        return ""
    if isinstance(value, list):
        if len(value) > MAX_TAGS:
            raise StudioError(f"user.{key}: at most {MAX_TAGS} tags, got {len(value)}")
        if not all(isinstance(tag, str) for tag in value):
            raise StudioError(f"user.{key}: tags must be text")
        value = ";".join(value)
    if not isinstance(value, str):
        raise StudioError(f"user.{key}: must be text tags separated by ';' or a list of tags")
    if len(value) > MAX_FEATURE_TEXT:
        raise StudioError(f"user.{key}: longer than {MAX_FEATURE_TEXT} characters")
    if len(TAG_SPLIT.split(value)) > MAX_TAGS:
        raise StudioError(f"user.{key}: at most {MAX_TAGS} tags")
    return _check_encodable(key, value)


def _check_encodable(key: str, value: str) -> str:
    """Text the store and JSON can hold: valid Unicode (no lone surrogate, which JSON's
    \\ud800 escape can carry but UTF-8 cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StudioError(f"user.{key}: text that is not valid Unicode (a lone surrogate)") from None
    return value
