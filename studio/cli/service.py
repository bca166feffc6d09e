"""Commands of the service: batch, serve, evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from pipelines import InputError
from pipelines.engines import ENGINE_NAMES

from .errors import choice, cli_errors
from .options import store_folder_option, store_option

app = typer.Typer()


@app.command()
def batch(
    catalog: Path = typer.Argument(..., help="Catalog CSV: product_id, image, category, title "
                                   "(e.g. assets/demo/catalog.csv)."),
    audience: Path = typer.Option(..., help="User table (fitted on the first run) or a "
                                  "clusters file from `studio audience fit`."),
    store: str = store_option("Store (created on the first run)"),
    store_folder: Optional[Path] = store_folder_option(),
    per_cluster: int = typer.Option(4, help="Prompts per category and cluster."),
    formats: str = typer.Option("1:1", help="Comma-separated ad formats."),
    seeds: str = typer.Option("0", help="Comma-separated seeds per prompt."),
    engine: str = typer.Option("auto", "--engine", "-e", help="auto, sd, tiny or backdrop."),
    size: Optional[str] = typer.Option(None, help="Canvas long side or WxH (at most 2048 px: "
                                       "STUDIO_MAX_SIZE)."),
    top_m: int = typer.Option(2, help="Prompts per (product, cluster) kept as arms."),
    k: Optional[int] = typer.Option(None, "--k", help="Clusters (default: by silhouette)."),
    max_bytes: Optional[float] = typer.Option(None, help="Refuse to run when the store would "
                                              "grow past this many bytes (e.g. 5e8)."),
    reward_model: Optional[Path] = typer.Option(None, help="CTR model from `studio reward train`."),
    watermark: bool = typer.Option(True, "--watermark/--no-watermark"),
    executor: str = typer.Option("local", help="local: this process (split the jobs over "
                                 "processes with `torchrun --nproc_per_node N -m studio "
                                 "batch ...`); ray: a Ray Data actor pool."),
    workers: Optional[int] = typer.Option(None, help="Ray actors, each loading the engine "
                                          "once (default: one per GPU, else the CPUs less "
                                          "one)."),
    ray_address: Optional[str] = typer.Option(None, help="A running Ray cluster, e.g. "
                                              "ray://head:10001 or auto (default: start Ray "
                                              "on this machine)."),
    copies: int = typer.Option(0, help="Ad copies (headline + CTA) per cluster, laid over "
                               "the creatives and read back with OCR; each prompt is paired "
                               "with each copy, so the arms are (scene, copy) pairs."),
    brand_kit: Optional[Path] = typer.Option(None, help="Brand kit for the copy (default: "
                                             "assets/brand/kit.yaml)."),
    nsfw_threshold: float = typer.Option(0.7, help="Safety gate: a creative this run renders "
                                         "whose NSFW score (0..1) is at or over this is "
                                         "blocked, never an arm, never served (`studio "
                                         "safety list`)."),
    signing: Optional[Path] = typer.Option(None, envvar="STUDIO_SIGNING", help="Sign every "
                                           "creative with C2PA content credentials (a folder "
                                           "from `studio keys init`); the API then serves the "
                                           "signed files. Default: $STUDIO_SIGNING."),
) -> None:
    """Render a catalog for an audience into a store; rerun to resume."""
    from ..learning.batch import EXECUTORS, BatchSettings, run_batch

    with cli_errors():
        choice(engine, ENGINE_NAMES, "engine")
        choice(executor, EXECUTORS, "executor")
        try:
            seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
        except ValueError:
            raise InputError(f"seeds must be integers separated by commas, got {seeds!r}") from None
        settings = BatchSettings(
            per_cluster=per_cluster, formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
            seeds=seed_list, engine=engine, size=size, top_m=top_m, k=k,
            max_bytes=int(max_bytes) if max_bytes is not None else None,
            reward_model=str(reward_model) if reward_model else None, watermark=watermark,
            executor=executor, workers=workers, ray_address=ray_address, copies=copies,
            brand_kit=str(brand_kit) if brand_kit else None, nsfw_threshold=nsfw_threshold,
            signing=str(signing) if signing else None)
        summary = run_batch(catalog, audience, store, settings, echo=typer.echo,
                            store_folder=store_folder)
    if summary:
        typer.echo(json.dumps(summary))


@app.command()
def serve(
    store: str = store_option("Store built by `studio batch`"),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    api_key: Optional[str] = typer.Option(None, help="API key for writes (default: "
                                          "$STUDIO_API_KEY)."),
    max_body_bytes: int = typer.Option(64 * 1024, help="Largest request body accepted "
                                       "(larger: 413)."),
    retain_days: Optional[float] = typer.Option(None, help="Delete events this many days "
                                                "after their feedback window once their "
                                                "rewards are in a bandit snapshot (default: "
                                                "keep every event)."),
    min_free_mb: float = typer.Option(32.0, help="Free disk space below which /readyz "
                                      "answers 503 and new selections are refused (503)."),
    replicas: int = typer.Option(1, help="Worker processes on the port, each a replica "
                                 "learning from the store's reward log (several machines: "
                                 "run `studio serve` on each, same --store DSN)."),
) -> None:
    """Serve the selection API (OpenAPI docs at /docs).

    /healthz answers liveness, /readyz readiness (the store takes a write)."""
    from ..serving.api import serve as run_server

    with cli_errors():
        if max_body_bytes < 1:
            raise InputError(f"--max-body-bytes must be >= 1, got {max_body_bytes}")
        if retain_days is not None and not 0 <= retain_days < 1e6:
            raise InputError(f"--retain-days must be >= 0, got {retain_days}")
        if not 0 <= min_free_mb < 1e9:
            raise InputError(f"--min-free-mb must be >= 0, got {min_free_mb}")
        if not 1 <= replicas <= 64:
            raise InputError(f"--replicas must be from 1 to 64, got {replicas}")
        from ..store import redact

        typer.echo(f"serving {redact(store)} on http://{host}:{port} (docs: http://{host}:{port}/docs)")
        run_server(store, host=host, port=port, api_key=api_key, max_body_bytes=max_body_bytes,
                   retention_s=retain_days * 86400 if retain_days is not None else None,
                   min_free_bytes=int(min_free_mb * 1024 * 1024), replicas=replicas)


@app.command()
def evaluate(
    store: str = store_option("Store with a served event log"),
    policy: str = typer.Option("bandit", help="Candidate: bandit (the service's, with "
                               "--alpha/--rule), greedy_prior (the reward model's top arm, no "
                               "learning) or random."),
    alpha: Optional[float] = typer.Option(None, help="The bandit's exploration width "
                                          "(default: the service's)."),
    rule: Optional[str] = typer.Option(None, help="The bandit's decision rule: ucb, epsilon, "
                                       "softmax or thompson (default: the service's)."),
    train_share: float = typer.Option(0.5, help="Share of events (oldest first) the bandit "
                                      "learns from; the rest are scored."),
) -> None:
    """Off-policy evaluation (IPS, SNIPS, DR) of a candidate policy on the event log.

    Intervals stay honest when clicks are rare; an estimate is refused when the
    candidate overlaps the log too little."""
    from ..learning.offline import evaluate_policy
    from ..store import Store

    with cli_errors():
        report = evaluate_policy(Store(store), policy=policy, alpha=alpha, rule=rule,
                                 train_share=train_share)
    typer.echo(f"{report['test_events']} test events (learned from {report['train_events']}); "
               f"logged policy reward {report['logged_reward']:.4f}")
    for name in ("ips", "snips", "dr"):
        e = report[name]
        if "refused" in e:
            typer.echo(f"  {name:>5}: refused — {e['refused']}")
            continue
        note = f"  ({e['warning']})" if e.get("warning") else ""
        typer.echo(f"  {name:>5}: {e['value']:.4f}  [{e['ci_low']:.4f}, {e['ci_high']:.4f}]  "
                   f"effective sample size {e['ess']:.0f}{note}")
    typer.echo(json.dumps(report))
