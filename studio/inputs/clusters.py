"""Audience clusters, described for people (a profile and a short name) and for prompts
(interests).

People read the profile and the name in the UI and the CLI, and the profile goes into the
prompt writer's brief, so both are written as a marketer would say them: recognised
gender codes become "men"/"women", other categories say which column they come from
("device: mostly mobile (60 %)"), numbers are rounded for reading ("average income
66,100", never "6.61e+04") and shares are whole percentages ("38 %").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

#: The longest cluster name (it is a tab label and a table cell in the UI).
MAX_NAME_CHARS = 40
#: A categorical value is a trait of a cluster when at least this share of it has it.
MOSTLY = 0.5
#: A numeric mean is "high"/"low" in a name when it is this far from the audience's mean.
CONTRAST = 0.15
_GENDER_COLUMNS = {"gender", "sex"}
_GENDER_WORDS = {"m": "men", "male": "men", "man": "men", "men": "men",
                 "f": "women", "female": "women", "woman": "women", "women": "women"}
_BOOLEAN_WORDS = {"true": "yes", "false": "no"}
_AGE_BANDS = ((18, "under 18"), (25, "18–24"), (35, "25–34"), (45, "35–44"), (55, "45–54"),
              (65, "55–64"), (math.inf, "65+"))


@dataclass
class Cluster:
    """One audience cluster, described for people (profile, name) and for prompts
    (interests). ``name`` is short (≤ ``MAX_NAME_CHARS``) and unique within its audience
    (``name_clusters``); left empty, it is derived from this cluster alone."""

    id: int
    size: int
    share: float
    top_interests: list[tuple[str, float]]
    top_values: dict[str, list[tuple[str, float]]]
    numeric_means: dict[str, float]
    profile: str
    centroid: list[float] = field(repr=False)
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = name_clusters([self])[0]

    @property
    def interests(self) -> list[str]:
        return [tag for tag, _ in self.top_interests]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Cluster":
        """The cluster of ``as_dict``. Files written before clusters had names have no
        ``name``: it is derived from the cluster (``Audience.from_document`` then makes
        the names of the whole audience unique)."""
        return cls(
            id=int(data["id"]), size=int(data["size"]), share=float(data["share"]),
            top_interests=[(str(t), float(s)) for t, s in data["top_interests"]],
            top_values={c: [(str(v), float(s)) for v, s in vals]
                        for c, vals in data["top_values"].items()},
            numeric_means={c: float(v) for c, v in data["numeric_means"].items()},
            profile=str(data["profile"]), centroid=[float(v) for v in data["centroid"]],
            name=str(data.get("name") or ""),
        )


def describe(cluster: Cluster) -> str:
    """A one-sentence profile of a cluster, e.g. ``Cluster 2: 1,040 users (21 %); into
    hiking, camping and mountains; mostly men (72 %), device: mostly mobile (60 %);
    average age 34, average income 66,100.``"""
    parts = [f"Cluster {cluster.id}: {cluster.size:,} users ({percent(cluster.share)})"]
    if cluster.top_interests:
        names = [t for t, _ in cluster.top_interests[:3]]
        parts.append("into " + (", ".join(names[:-1]) + " and " + names[-1]
                                if len(names) > 1 else names[0]))
    traits = [_trait(column, values[0][0], values[0][1])
              for column, values in cluster.top_values.items()
              if values and values[0][1] >= MOSTLY]
    if traits:
        parts.append(", ".join(traits[:2]))
    means = [f"average {_label(column)} {_amount(column, value)}"
             for column, value in list(cluster.numeric_means.items())[:2]]
    if means:
        parts.append(", ".join(means))
    return "; ".join(parts) + "."


def name_clusters(clusters: list[Cluster]) -> list[str]:
    """Short names of an audience's clusters, in order: who (gender, age band), what
    (top interests) and what stands out (a numeric column ≥ 15 % above or below the
    audience's size-weighted mean: "high income"), e.g. ``Men 25–34 · hiking & camping``.
    Parts are dropped, least telling first, until the name fits ``MAX_NAME_CHARS``;
    names that collide get a number (``… 2``), so every name is unique."""
    total = sum(c.size for c in clusters) or 1
    columns = {column for c in clusters for column in c.numeric_means}
    overall = {column: sum(c.size * c.numeric_means.get(column, 0.0) for c in clusters) / total
               for column in columns}
    names: list[str] = []
    for cluster in clusters:
        base = _name(cluster, overall)
        name, n = base, 1
        while name in names:
            n += 1
            suffix = f" {n}"
            name = base[:MAX_NAME_CHARS - len(suffix)].rstrip(" ·") + suffix
        names.append(name)
    return names


def _name(cluster: Cluster, overall: dict[str, float]) -> str:
    """One cluster's name before collisions are resolved (see ``name_clusters``)."""
    who = [word for column, values in cluster.top_values.items()
           if values and values[0][1] >= 0.6
           for word in [_gender_word(column, values[0][0])] if word][:1]
    age = next((c for c in cluster.numeric_means if c.lower() in ("age", "age_years")), None)
    if age is not None:
        who.append(_age_band(cluster.numeric_means[age]) if who else
                   "ages " + _age_band(cluster.numeric_means[age]))
    what = " & ".join(cluster.interests[:2])
    if len(what) > MAX_NAME_CHARS and cluster.interests:
        what = cluster.interests[0]
    stands_out = ""
    contrasts = [(abs(value / overall[column] - 1), column, value)
                 for column, value in cluster.numeric_means.items()
                 if column != age and overall.get(column, 0) > 0]
    if contrasts:
        gap, column, value = max(contrasts)
        if gap >= CONTRAST:
            stands_out = ("high " if value > overall[column] else "low ") + _label(column)
    # Priority: interests, then who, then the contrast; shown as who · what · contrast.
    parts = {"who": " ".join(who), "what": what, "stands_out": stands_out}
    for drop in ("stands_out", "who", None):
        shown = [p for p in (parts["who"], parts["what"], parts["stands_out"]) if p]
        text = " · ".join(shown)
        if len(text) <= MAX_NAME_CHARS or drop is None:
            break
        parts[drop] = ""
    if not text:
        text = f"Cluster {cluster.id}"
    if len(text) > MAX_NAME_CHARS:
        text = text[:MAX_NAME_CHARS - 1].rstrip() + "…"
    return text[0].upper() + text[1:]


def percent(share: float) -> str:
    """A share in [0, 1] as people write it: ``38 %`` (``<1 %`` for a sliver)."""
    if 0 < share < 0.005:
        return "<1 %"
    return f"{share * 100:.0f} %"


def _trait(column: str, value: str, share: float) -> str:
    """``mostly men (72 %)`` for a recognised gender code, ``device: mostly mobile (60 %)``
    for any other category (booleans read yes/no)."""
    gender = _gender_word(column, value)
    if gender:
        return f"mostly {gender} ({percent(share)})"
    shown = _BOOLEAN_WORDS.get(value.strip().lower(), value)
    return f"{_label(column)}: mostly {shown} ({percent(share)})"


def _gender_word(column: str, value: str) -> str | None:
    """``men``/``women`` for a recognised gender code, else None. Codes are read in a
    column named gender/sex; elsewhere only unambiguous words (``female``) count, since
    a bare ``m`` may be a size."""
    key = value.strip().lower()
    if column.strip().lower() in _GENDER_COLUMNS or len(key) > 1:
        return _GENDER_WORDS.get(key)
    return None


def _label(column: str) -> str:
    """A column name for reading: ``income_k`` → ``income``, ``sessions_per_week`` →
    ``sessions per week``."""
    name = column.strip()
    for suffix in ("_k", "_pct", "_percent"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name.replace("_", " ")


def _amount(column: str, value: float) -> str:
    """A column's mean for reading: thousands (``_k``) written out, percentages
    (``_pct``) with ``%``."""
    lowered = column.strip().lower()
    if lowered.endswith("_k"):
        return _number(value * 1000)
    if lowered.endswith(("_pct", "_percent")):
        return f"{_number(value)} %"
    return _number(value)


def _number(value: float) -> str:
    """A number rounded for people, never in scientific notation: three significant
    digits with thousands separators from 1,000 (``56,700``), whole from 10 (``34``),
    one decimal from 1 (``3.9``), two significant digits below (``0.35``)."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 1000:
        digits = int(math.floor(math.log10(size))) - 2
        return f"{round(value, -digits):,.0f}"
    if size >= 10:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:.1f}".removesuffix(".0")
    if size == 0:
        return "0"
    decimals = 1 - int(math.floor(math.log10(size)))
    return f"{value:.{decimals}f}"


def _age_band(age: float) -> str:
    """The marketing age band of a (mean) age: ``25–34``."""
    return next(label for upper, label in _AGE_BANDS if age < upper)
