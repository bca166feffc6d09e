"""Commands of the CTR reward model: ``studio reward train`` and ``studio reward score``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pipelines import InputError

from .errors import cli_errors

app = typer.Typer(help="Train and apply the CTR reward model.", no_args_is_help=True)


@app.command("train")
def reward_train(
    logs: Path = typer.Argument(..., help="Impression log (CSV): creative_id, click (or clicks "
                                "and impressions), and user_id or cluster_id."),
    creatives: Path = typer.Option(..., help="Folder of the logged creatives."),
    clusters: Path = typer.Option(..., help="Clusters file (its encoding gives the context)."),
    users: Optional[Path] = typer.Option(None, help="User table, when the log has user_id."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the model (.npz)."),
    clip: Optional[str] = typer.Option(None, help="CLIP model id or folder for image embeddings."),
    calibration: str = typer.Option("none", help="none or isotonic."),
    test_share: float = typer.Option(0.2, help="Last share of the log held out for metrics."),
) -> None:
    """Train the CTR model on an impression log; prints held-out metrics."""
    from ..creatives.records import load_creatives
    from ..learning.scoring import (creative_tables, load_audience_and_users, log_contexts,
                                    read_log, train_reward_model)

    with cli_errors():
        if not 0 <= test_share < 1:
            raise InputError(f"test share must be in [0, 1), got {test_share}")
        log = read_log(logs)
        audience, table = load_audience_and_users(clusters, users)
        records = load_creatives(creatives)
        split = int(len(log) * (1 - test_share))
        model = train_reward_model(log.iloc[:split], records, audience, table, clip=clip,
                                   calibration=calibration)
        model.save(out)
        if split < len(log):
            test = log.iloc[split:]
            image, text = creative_tables(records, clip=clip)
            index = {r.creative_id: i for i, r in enumerate(records)}
            metrics = model.evaluate(
                log_contexts(test, audience, table), image, text,
                test["clicks"] if "clicks" in test else test["click"],
                test["impressions"] if "clicks" in test else None,
                creative=test["creative_id"].map(index).to_numpy())
            typer.echo("held-out: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else
                                               f"{k} {v}" for k, v in metrics.items()))
    typer.echo(f"wrote {out}")


@app.command("score")
def reward_score(
    model: Path = typer.Argument(..., help="A model from `studio reward train`."),
    creatives: Path = typer.Option(..., help="Folder of creatives to score."),
    clusters: Path = typer.Option(..., help="Clusters file (centroids are the contexts)."),
    out: Optional[Path] = typer.Option(None, help="Also write the scores (CSV)."),
    top: int = typer.Option(3, help="Show the best N creatives per cluster and product."),
) -> None:
    """Predict the CTR of every creative for every cluster."""
    from reward import CTRModel

    from ..creatives.records import load_creatives
    from ..files import write_atomic
    from ..inputs.audience import Audience
    from ..learning.scoring import score_for_clusters

    with cli_errors():
        scores = score_for_clusters(CTRModel.load(model), load_creatives(creatives),
                                    Audience.load(clusters))
        if out is not None:
            write_atomic(out, scores.to_csv(index=False).encode())
    for (cluster_id, product_id), block in scores.groupby(["cluster_id", "product_id"]):
        best = block.nlargest(top, "predicted_ctr")
        listed = ", ".join(f"{c} {p:.2%}" for c, p in zip(best["creative_id"], best["predicted_ctr"]))
        typer.echo(f"cluster {cluster_id} · {product_id}: {listed}")
