"""Commands about audience clusters: ``studio audience fit`` and ``studio audience show``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import cli_errors

app = typer.Typer(help="Fit and inspect audience clusters.", no_args_is_help=True)


@app.command("fit")
def audience_fit(
    users: Path = typer.Argument(..., help="User table (.csv or .parquet): user_id, numeric and "
                                 "categorical columns, interests (tags separated by ';')."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the clusters (JSON)."),
    k: Optional[int] = typer.Option(None, "--k", help="Number of clusters (default: chosen by "
                                    "silhouette over --k-min..--k-max)."),
    k_min: int = typer.Option(2, help="Smallest k tried."),
    k_max: int = typer.Option(10, help="Largest k tried."),
    interests: str = typer.Option("multi-hot", help="Interest encoding: multi-hot or minilm."),
    interest_weight: float = typer.Option(6.0, help="Weight of interests against other columns."),
    ignore: str = typer.Option("segment", help="Comma-separated columns not to use."),
    assignments: Optional[Path] = typer.Option(None, help="Also write user_id,cluster_id here."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Cluster a user table and describe each cluster."""
    import pandas as pd

    from ..inputs.audience import Audience
    from ..files import write_atomic

    with cli_errors():
        ignored = tuple(c.strip() for c in ignore.split(",") if c.strip())
        audience = Audience(k, k_range=(k_min, k_max), interest_encoding=interests,
                            interest_weight=interest_weight, ignore=ignored, seed=seed)
        audience.fit(users)
        audience.save(out)
        if assignments is not None:
            table = pd.DataFrame({"user_id": audience.user_ids_, "cluster_id": audience.labels_})
            write_atomic(assignments, table.to_csv(index=False).encode())
    _print_clusters(audience)
    typer.echo(f"wrote {out}" + (f" and {assignments}" if assignments else ""))


@app.command("show")
def audience_show(clusters: Path = typer.Argument(..., help="A clusters file from `audience fit`.")):
    """Print the clusters of a clusters file."""
    from ..inputs.audience import Audience

    with cli_errors():
        audience = Audience.load(clusters)
    _print_clusters(audience)


def _print_clusters(audience) -> None:
    scores = ", ".join(f"k={k}: {v:.3f}" for k, v in sorted(audience.silhouette_.items()))
    typer.echo(f"{audience.k_} clusters" + (f" (silhouette {scores})" if scores else ""))
    for cluster in audience.clusters_:
        interests = ", ".join(f"{t} {s:.0%}" for t, s in cluster.top_interests)
        typer.echo(f"  [{cluster.id}] {cluster.size:>7,} users  {cluster.share:>5.1%}  {interests}")
        typer.echo(f"       {cluster.profile}")
