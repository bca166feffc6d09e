"""Audience clusters, described for people (a profile) and for prompts (interests)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
