"""Commands about the audience and its prompts: audience fit/show, prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


from ..cli import _choice, _cli_errors, app


audience_app = typer.Typer(help="Fit and inspect audience clusters.", no_args_is_help=True)
app.add_typer(audience_app, name="audience")


@audience_app.command("fit")
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

    from ..audience import Audience
    from ..files import write_atomic

    with _cli_errors():
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


@audience_app.command("show")
def audience_show(clusters: Path = typer.Argument(..., help="A clusters file from `audience fit`.")):
    """Print the clusters of a clusters file."""
    from ..audience import Audience

    with _cli_errors():
        audience = Audience.load(clusters)
    _print_clusters(audience)


def _print_clusters(audience) -> None:
    scores = ", ".join(f"k={k}: {v:.3f}" for k, v in sorted(audience.silhouette_.items()))
    typer.echo(f"{audience.k_} clusters" + (f" (silhouette {scores})" if scores else ""))
    for cluster in audience.clusters_:
        interests = ", ".join(f"{t} {s:.0%}" for t, s in cluster.top_interests)
        typer.echo(f"  [{cluster.id}] {cluster.size:>7,} users  {cluster.share:>5.1%}  {interests}")
        typer.echo(f"       {cluster.profile}")


@app.command()
def prompts(
    product: Path = typer.Option(..., "--product", "-p", help="Product image (its category and "
                                 "title come from the demo catalog for bundled samples)."),
    clusters: Path = typer.Option(..., help="Clusters file from `studio audience fit`."),
    n: int = typer.Option(4, "--n", "-n", help="Prompts per cluster."),
    generator: str = typer.Option("template", help="template, llm or openai."),
    guidelines: Optional[Path] = typer.Option(None, help="Brand guidelines (YAML)."),
    category: Optional[str] = typer.Option(None, help="Product category: generic or the name "
                                           "of a vocabulary file in assets/prompts "
                                           "(e.g. kitchenware)."),
    title: Optional[str] = typer.Option(None, help="Product title used in the prompt."),
    model: Optional[str] = typer.Option(None, help="llm: model id or folder; openai: model name."),
    base_url: Optional[str] = typer.Option(None, help="openai: endpoint, e.g. "
                                           "http://localhost:11434/v1 (key from OPENAI_API_KEY)."),
    cluster: Optional[int] = typer.Option(None, help="Only this cluster id."),
    seed: int = typer.Option(0, help="Seed (same seed, same prompts)."),
    out: Optional[Path] = typer.Option(None, help="Also write the prompts as JSON here."),
) -> None:
    """Write prompts for a product, for each audience cluster."""
    from ..audience import Audience
    from ..catalog import product_info
    from ..files import write_atomic
    from ..guidelines import Guidelines
    from ..prompts import make_generator

    with _cli_errors():
        _choice(generator, ("template", "llm", "openai"), "generator")
        info = product_info(product, category=category, title=title)
        audience = Audience.load(clusters)
        rules = Guidelines.load(guidelines) if guidelines else None
        writer = make_generator(generator, guidelines=rules, model=model, base_url=base_url)
        chosen = [audience.cluster(cluster)] if cluster is not None else audience.clusters_
        written = []
        for group in chosen:
            typer.echo(f"[{group.id}] {group.profile}")
            for prompt in writer.generate(info, group, n, seed):
                note = f"  (fallback: {prompt.fallback})" if prompt.fallback else ""
                typer.echo(f"    - {prompt.text}{note}")
                written.append(prompt.as_dict())
        if out is not None:
            write_atomic(out, json.dumps(written, indent=1).encode() + b"\n")
            typer.echo(f"wrote {len(written)} prompts to {out}")
