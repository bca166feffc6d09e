"""The ``studio`` command line (also ``python -m studio``).

Each command is a thin face over ``studio`` functions. Bad input ends with exit code 2
and a one-line ``error:`` message; an engine that cannot run ends with exit code 1.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from pipelines import InputError, format_names
from pipelines.compositing import MODES
from pipelines.engines import (
    DEFAULT_CONTROLNET_ID,
    DEFAULT_LCM_LORA_ID,
    DEFAULT_MODEL_ID,
    ENGINE_NAMES,
    SCHEDULERS,
    EngineUnavailableError,
    RenderCancelled,
)

from .render import DEFAULT_NEGATIVE_PROMPT

app = typer.Typer(
    name="studio",
    help="Creative Studio: personalised ad creatives with the product kept pixel-fixed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"creative-studio {version('creative-studio')}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Creative Studio: personalised ad creatives with the product kept pixel-fixed."""


@contextmanager
def _cli_errors() -> Iterator[None]:
    """Turn the library's errors into one line on stderr and an exit code."""
    try:
        yield
    except (InputError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except EngineUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except RenderCancelled as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(130) from None


def _choice(value: str, allowed, what: str) -> str:
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")
    return value


@app.command()
def render(
    product: Path = typer.Argument(..., help="Product photo (PNG, JPEG or WebP). Transparency "
                                   "is the product mask; without it see --mask."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="What the scene around the product "
                               "should look like."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <id>.png, <id>.json (manifest) "
                             "and <id>.mask.png."),
    mask: Optional[Path] = typer.Option(None, help="Mask file, white = product. Default: the "
                                        "image's alpha, else an automatic mask."),
    mode: str = typer.Option("inpaint", help="inpaint: new background around the product; "
                             "outpaint: keep the whole photo, fill the new canvas area."),
    format: str = typer.Option("1:1", "--format", "-f", help="Ad format: "
                               f"{', '.join(format_names())} (keep = the input canvas as is)."),
    size: Optional[str] = typer.Option(None, help="Canvas long side (768) or exact WxH, "
                                       "multiples of 8. Default long side 512."),
    engine: str = typer.Option("auto", "--engine", "-e", help="auto (sd when weights load, "
                               "else backdrop), sd, tiny (test model), backdrop (no weights)."),
    seed: int = typer.Option(0, help="Seed of the first image; image i uses seed + i."),
    n: int = typer.Option(1, "--n", "-n", help="Images per prompt, rendered in one batched call."),
    steps: Optional[int] = typer.Option(None, help="Denoising steps (default: 30, 6 with --lcm, "
                                        "4 for tiny)."),
    guidance: Optional[float] = typer.Option(None, help="Classifier-free guidance (default 7.5, "
                                             "1.5 with --lcm)."),
    negative_prompt: str = typer.Option(DEFAULT_NEGATIVE_PROMPT, help="What to avoid."),
    scheduler: Optional[str] = typer.Option(None, help=f"One of: {', '.join(SCHEDULERS)}."),
    controlnet: bool = typer.Option(False, "--controlnet", help="Hold the product's contours "
                                    "with a Canny ControlNet."),
    lcm: bool = typer.Option(False, "--lcm", help="LCM-LoRA for 4-8 steps (usable on a CPU)."),
    model: str = typer.Option(DEFAULT_MODEL_ID, help="Inpainting model id or local folder (sd)."),
    controlnet_model: str = typer.Option(DEFAULT_CONTROLNET_ID, help="Canny ControlNet id/folder."),
    lcm_lora: str = typer.Option(DEFAULT_LCM_LORA_ID, help="LCM-LoRA id or folder."),
    lora: Optional[str] = typer.Option(None, help="A LoRA (e.g. from `studio finetune`) fused "
                                       "into the UNet."),
    device: Optional[str] = typer.Option(None, help="cuda, mps or cpu (default: best available)."),
    area: float = typer.Option(0.3, help="Fraction of the canvas the product's box covers."),
    anchor: str = typer.Option("center", help="center, bottom, top, left or right."),
    feather: Optional[int] = typer.Option(None, help="Soft edge outside the product, pixels."),
    max_expansion: Optional[float] = typer.Option(None, help="Reject and re-seed a creative "
                                                  "whose object expansion exceeds this fraction "
                                                  "of the product area."),
    max_attempts: int = typer.Option(3, help="Renders per creative when re-seeding."),
    watermark: bool = typer.Option(True, "--watermark/--no-watermark",
                                   help="Invisible provenance watermark outside the product."),
) -> None:
    """Render creatives of one product for one prompt."""
    from pipelines import load_product
    from pipelines.engines import load_engine

    from .progress import step_progress
    from .render import RenderOptions, prepare, publish
    from .render import render as render_creatives

    with _cli_errors():
        _choice(mode, MODES, "mode")
        _choice(format, format_names(), "format")
        _choice(engine, ENGINE_NAMES, "engine")
        if scheduler is not None:
            _choice(scheduler, SCHEDULERS, "scheduler")
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {str(out)!r} exists and is not a folder")
        options = RenderOptions(
            prompt=prompt, negative_prompt=negative_prompt, mode=mode, format=format,
            size=size, area=area, anchor=anchor, seed=seed, n=n, steps=steps,
            guidance=guidance, feather=feather, max_expansion=max_expansion,
            max_attempts=max_attempts, watermark=watermark,
        )
        item = load_product(product, mask=mask)
        placed = prepare(item, options)  # bad input fails here, before the engine loads
        chosen, notice = load_engine(engine, model_id=model, controlnet=controlnet,
                                     controlnet_id=controlnet_model, lcm=lcm,
                                     lcm_lora_id=lcm_lora, scheduler=scheduler, device=device,
                                     lora_id=lora)
        if notice:
            typer.echo(notice, err=True)
        with step_progress(f"render ({chosen.name})") as callback:
            creatives = render_creatives(placed, options, chosen, callback=callback)
        for creative in creatives:
            path = out / publish(creative, placed, item, options, chosen, out)["image"]
            flag = "" if creative.passed else "  (over --max-expansion after all attempts)"
            typer.echo(f"{path}  seed={creative.seed} expansion={creative.scores['expansion']:.3f}"
                       f"{flag}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Where to write the results."),
    engine: str = typer.Option("auto", "--engine", "-e", help="auto, sd, backdrop or tiny."),
    impressions: int = typer.Option(20_000, help="Simulated impressions in the campaign."),
    formats: str = typer.Option("1:1,9:16", help="Comma-separated ad formats to render."),
    per_cluster: int = typer.Option(3, help="Prompts per category and cluster."),
    size: Optional[str] = typer.Option(None, help="Canvas long side (default 512)."),
    rounds: int = typer.Option(2, help="Evolution rounds of the learning loop (0: skip it)."),
    seed: int = typer.Option(0, help="Seed of the whole run."),
) -> None:
    """The whole flow on the bundled assets: audience, prompts, renders, reward model,
    arms, a simulated campaign (LinUCB vs static vs random), the learning loop (fixed vs
    evolving pool) and a report."""
    from .demo import run_demo

    with _cli_errors():
        _choice(engine, ENGINE_NAMES, "engine")
        wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
        for fmt in wanted:
            _choice(fmt, format_names()[1:], "format")
        if impressions < 1:
            raise InputError(f"impressions must be at least 1, got {impressions}")
        if rounds < 0:
            raise InputError(f"rounds must be >= 0, got {rounds}")
        result = run_demo(out, engine=engine, formats=wanted, impressions=impressions,
                          per_cluster=per_cluster, size=size, rounds=rounds, seed=seed,
                          echo=typer.echo)
    typer.echo(json.dumps(result))


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

    from .audience import Audience
    from .files import write_atomic

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
    from .audience import Audience

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
    category: Optional[str] = typer.Option(None, help="Product category (vocabulary file)."),
    title: Optional[str] = typer.Option(None, help="Product title used in the prompt."),
    model: Optional[str] = typer.Option(None, help="llm: model id or folder; openai: model name."),
    base_url: Optional[str] = typer.Option(None, help="openai: endpoint, e.g. "
                                           "http://localhost:11434/v1 (key from OPENAI_API_KEY)."),
    cluster: Optional[int] = typer.Option(None, help="Only this cluster id."),
    seed: int = typer.Option(0, help="Seed (same seed, same prompts)."),
    out: Optional[Path] = typer.Option(None, help="Also write the prompts as JSON here."),
) -> None:
    """Write prompts for a product, for each audience cluster."""
    from .audience import Audience
    from .catalog import product_info
    from .files import write_atomic
    from .guidelines import Guidelines
    from .prompts import make_generator

    with _cli_errors():
        _choice(generator, ("template", "llm", "openai"), "generator")
        audience = Audience.load(clusters)
        rules = Guidelines.load(guidelines) if guidelines else None
        info = product_info(product, category=category, title=title)
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


@app.command()
def simulate(
    creatives: Path = typer.Option(..., help="Folder of published creatives (png + json + mask)."),
    users: Path = typer.Option(..., help="User table with planted segments, e.g. "
                               "assets/demo/users.csv."),
    impressions: int = typer.Option(10_000, help="Number of impressions to simulate."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the log (CSV)."),
    seed: int = typer.Option(0, help="Seed of the users' tastes and of the draws."),
) -> None:
    """Simulate an audience seeing the creatives: a log of impressions and clicks."""
    from .audience import load_users
    from .files import write_atomic
    from .scoring import load_creatives
    from .simulate import AudienceSimulator, SimulatedCreative, creative_attributes

    with _cli_errors():
        records = load_creatives(creatives)
        simulator = AudienceSimulator(load_users(users), seed=seed)
        pool = [SimulatedCreative(r.creative_id, r.product_id, r.format,
                                  creative_attributes(r.image, r.mask, r.prompt)) for r in records]
        log = simulator.simulate(pool, impressions, seed=seed)
        columns = ["impression", "user_id", "creative_id", "product_id", "format", "click",
                   "true_ctr"]
        write_atomic(out, log[columns].to_csv(index=False).encode())
    typer.echo(f"wrote {len(log)} impressions ({log['click'].sum()} clicks, CTR "
               f"{log['click'].mean():.2%}) over {len(records)} creatives to {out}")


reward_app = typer.Typer(help="Train and apply the CTR reward model.", no_args_is_help=True)
app.add_typer(reward_app, name="reward")


@reward_app.command("train")
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
    from .scoring import (creative_tables, load_audience_and_users, load_creatives,
                          log_contexts, read_log, train_reward_model)

    with _cli_errors():
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


@reward_app.command("score")
def reward_score(
    model: Path = typer.Argument(..., help="A model from `studio reward train`."),
    creatives: Path = typer.Option(..., help="Folder of creatives to score."),
    clusters: Path = typer.Option(..., help="Clusters file (centroids are the contexts)."),
    out: Optional[Path] = typer.Option(None, help="Also write the scores (CSV)."),
    top: int = typer.Option(3, help="Show the best N creatives per cluster and product."),
) -> None:
    """Predict the CTR of every creative for every cluster."""
    from reward import CTRModel

    from .audience import Audience
    from .files import write_atomic
    from .scoring import load_creatives, score_for_clusters

    with _cli_errors():
        scores = score_for_clusters(CTRModel.load(model), load_creatives(creatives),
                                    Audience.load(clusters))
        if out is not None:
            write_atomic(out, scores.to_csv(index=False).encode())
    for (cluster_id, product_id), block in scores.groupby(["cluster_id", "product_id"]):
        best = block.nlargest(top, "predicted_ctr")
        listed = ", ".join(f"{c} {p:.2%}" for c, p in zip(best["creative_id"], best["predicted_ctr"]))
        typer.echo(f"cluster {cluster_id} · {product_id}: {listed}")


@app.command()
def batch(
    catalog: Path = typer.Argument(..., help="Catalog CSV: product_id, image, category, title "
                                   "(e.g. assets/demo/catalog.csv)."),
    audience: Path = typer.Option(..., help="User table (fitted on the first run) or a "
                                  "clusters file from `studio audience fit`."),
    store: Path = typer.Option(..., help="Store folder (created on the first run)."),
    per_cluster: int = typer.Option(4, help="Prompts per category and cluster."),
    formats: str = typer.Option("1:1", help="Comma-separated ad formats."),
    seeds: str = typer.Option("0", help="Comma-separated seeds per prompt."),
    engine: str = typer.Option("auto", "--engine", "-e", help="auto, sd, tiny or backdrop."),
    size: Optional[str] = typer.Option(None, help="Canvas long side or WxH."),
    top_m: int = typer.Option(2, help="Prompts per (product, cluster) kept as arms."),
    k: Optional[int] = typer.Option(None, "--k", help="Clusters (default: by silhouette)."),
    max_bytes: Optional[float] = typer.Option(None, help="Refuse to run when the store would "
                                              "grow past this many bytes (e.g. 5e8)."),
    reward_model: Optional[Path] = typer.Option(None, help="CTR model from `studio reward train`."),
    watermark: bool = typer.Option(True, "--watermark/--no-watermark"),
) -> None:
    """Render a catalog for an audience into a store; rerun to resume."""
    from .batch import BatchSettings, run_batch

    with _cli_errors():
        _choice(engine, ENGINE_NAMES, "engine")
        try:
            seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
        except ValueError:
            raise InputError(f"seeds must be integers separated by commas, got {seeds!r}") from None
        settings = BatchSettings(
            per_cluster=per_cluster, formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
            seeds=seed_list, engine=engine, size=size, top_m=top_m, k=k,
            max_bytes=int(max_bytes) if max_bytes is not None else None,
            reward_model=str(reward_model) if reward_model else None, watermark=watermark)
        summary = run_batch(catalog, audience, store, settings, echo=typer.echo)
    if summary:
        typer.echo(json.dumps(summary))


store_app = typer.Typer(help="Inspect a creative store.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("check")
def store_check(
    store: Path = typer.Argument(..., help="Store folder."),
    repair: bool = typer.Option(False, help="Delete orphan and temporary files."),
) -> None:
    """Find orphan files, missing files and hash mismatches; exit 1 if any."""
    from .store import Store

    with _cli_errors():
        report = Store(store).check(repair=repair)
    for kind in ("orphans", "missing", "mismatched", "temporary"):
        for item in report[kind]:
            typer.echo(f"{kind}: {item}")
    typer.echo(f"{report['creatives']} creatives, {report['files']} files: "
               + ("ok" if report["ok"] else "problems found" + (" (repaired)" if repair else "")))
    if not report["ok"] and not repair:
        raise typer.Exit(1)


@app.command()
def serve(
    store: Path = typer.Option(..., help="Store folder built by `studio batch`."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    api_key: Optional[str] = typer.Option(None, help="API key for writes (default: "
                                          "$STUDIO_API_KEY)."),
) -> None:
    """Serve the selection API (OpenAPI docs at /docs)."""
    from .api import serve as run_server

    with _cli_errors():
        typer.echo(f"serving {store} on http://{host}:{port} (docs: http://{host}:{port}/docs)")
        run_server(store, host=host, port=port, api_key=api_key)


@app.command()
def evaluate(
    store: Path = typer.Option(..., help="Store folder with a served event log."),
    policy: str = typer.Option("linucb", help="linucb or random."),
    alpha: float = typer.Option(0.5, help="LinUCB exploration width."),
    train_share: float = typer.Option(0.5, help="Share of events (oldest first) to learn from."),
) -> None:
    """Off-policy evaluation (IPS, SNIPS) of a candidate policy on the store's event log."""
    from .offline import evaluate_policy
    from .store import Store

    with _cli_errors():
        report = evaluate_policy(Store(store), policy=policy, alpha=alpha,
                                 train_share=train_share)
    typer.echo(f"{report['test_events']} test events (learned from {report['train_events']}); "
               f"logged policy reward {report['logged_reward']:.4f}")
    for name in ("ips", "snips"):
        e = report[name]
        typer.echo(f"  {name:>5}: {e['value']:.4f}  [{e['ci_low']:.4f}, {e['ci_high']:.4f}]")
    typer.echo(json.dumps(report))


@app.command()
def outfit(
    items: list[Path] = typer.Option(..., "--items", help="1–3 fixed items of the outfit "
                                     "(repeat --items, or list them after it)."),
    category: str = typer.Option(..., help="Category of the item to generate: top, bottom, "
                                 "shoes, bag, outerwear, accessory, dress."),
    history: list[Path] = typer.Option([], "--history", help="The user's past items of "
                                       "that category."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the item, board, mask and "
                             "manifest."),
    engine: str = typer.Option("auto", "--engine", "-e", help="auto, sd, tiny or backdrop."),
    seed: int = typer.Option(0, help="Seed."),
    steps: Optional[int] = typer.Option(None, help="Denoising steps."),
    cell: int = typer.Option(256, help="Board cell size in pixels (multiple of 8)."),
    clip: Optional[str] = typer.Option(None, help="CLIP model id or folder for DiFashion's "
                                       "personal similarity."),
    ip_adapter: bool = typer.Option(False, "--ip-adapter", help="Also condition on the history "
                                    "images through an IP-Adapter (sd: h94/IP-Adapter)."),
    history_weight: float = typer.Option(0.6, help="IP-Adapter scale of the history condition."),
) -> None:
    """Generate the missing item of an outfit for a user's taste (DiFashion)."""
    from .outfit import run_outfit

    with _cli_errors():
        _choice(engine, ENGINE_NAMES, "engine")
        manifest = run_outfit(items, category, history=history, out=out, engine=engine,
                              seed=seed, steps=steps, cell=cell, clip=clip,
                              ip_adapter=ip_adapter, history_weight=history_weight,
                              echo=typer.echo)
    typer.echo(f"{out / manifest['image']}  prompt: {manifest['prompt']}")
    typer.echo(json.dumps(manifest["metrics"]))


@app.command("evolve")
def evolve_command(
    store: Path = typer.Option(..., help="Store folder built by `studio batch`."),
    catalog: Path = typer.Option(Path("assets/demo/catalog.csv"), help="The catalog the store "
                                 "was built from (its product images)."),
    rounds: int = typer.Option(1, help="Rounds to run."),
    per_cluster: int = typer.Option(2, help="New candidate prompts per pool and round."),
    retire: int = typer.Option(1, help="Arms retired per pool and round."),
    engine: str = typer.Option("auto", "--engine", "-e", help="auto, sd, tiny or backdrop."),
    size: Optional[str] = typer.Option(None, help="Canvas long side or WxH."),
    users: Optional[Path] = typer.Option(None, help="User table with planted segments, to "
                                         "score candidates with a simulated reward model."),
    reward_model: Optional[Path] = typer.Option(None, help="CTR model to score candidates."),
    guidelines: Optional[Path] = typer.Option(None, help="Brand guidelines (YAML)."),
    show: bool = typer.Option(False, "--show", help="List the recorded rounds and exit."),
    rollback: Optional[int] = typer.Option(None, help="Undo the rounds after this one "
                                           "(0 = back to the batch's pool) and exit."),
) -> None:
    """Evolve the arm pools: retire the worst prompts, add recombinations of the winners."""
    from .evolve import catalog_images, evolve, rollback as undo, rounds as recorded
    from .guidelines import Guidelines
    from .store import Store

    with _cli_errors():
        opened = Store(store)
        if show:
            for entry in recorded(opened):
                typer.echo(f"round {entry['round']} · {entry['category']} · cluster "
                           f"{entry['cluster_id']}: retired {len(entry['retired'])}, added "
                           f"{len(entry['added'])}")
            return
        if rollback is not None:
            typer.echo(f"undid {undo(opened, rollback)} pool records after round {rollback}")
            return
        _choice(engine, ENGINE_NAMES, "engine")
        rules = Guidelines.load(guidelines) if guidelines else None
        images = catalog_images(catalog)
        for _ in range(rounds):
            evolve(opened, catalog_images=images, per_cluster=per_cluster, retire=retire,
                   engine=engine, size=size, users_path=users,
                   reward_model=str(reward_model) if reward_model else None, guidelines=rules,
                   echo=typer.echo)


@app.command()
def finetune(
    store: Path = typer.Option(..., help="Store with scored creatives."),
    category: str = typer.Option(..., help="Product category whose best creatives train the LoRA."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the LoRA weights."),
    top: int = typer.Option(20, help="How many of the highest-reward creatives to train on."),
    steps: int = typer.Option(200, help="Optimiser steps."),
    rank: int = typer.Option(4, help="LoRA rank."),
    learning_rate: float = typer.Option(1e-4, help="AdamW learning rate."),
    resolution: int = typer.Option(512, help="Training resolution (multiple of 8)."),
    engine: str = typer.Option("sd", help="sd (needs weights; use a GPU) or tiny (code path)."),
    model: str = typer.Option("stable-diffusion-v1-5/stable-diffusion-inpainting",
                              help="Inpainting checkpoint (sd)."),
) -> None:
    """Fine-tune a LoRA on the highest-reward creatives of a category (CG4CTR's loop);
    render with it via `studio render --lora OUT`."""
    import numpy as np
    from PIL import Image

    from pipelines.engines import ensure_tiny_model
    from pipelines.finetune import finetune_lora

    from .progress import step_progress
    from .store import Store

    with _cli_errors():
        _choice(engine, ("sd", "tiny"), "engine")
        opened = Store(store)
        rows = opened.query(
            "SELECT c.image_sha256, c.manifest FROM creatives c JOIN products p ON "
            "p.product_id = c.product_id WHERE p.category = ? AND c.reward IS NOT NULL "
            "ORDER BY c.reward DESC LIMIT ?", (category, top))
        if not rows:
            raise InputError(f"no scored creatives of category {category!r} in the store")
        images = [np.asarray(Image.open(opened.file_path(r[0])).convert("RGB")) for r in rows]
        prompts = [json.loads(r[1])["prompt"] for r in rows]
        model_id = str(ensure_tiny_model().pipeline) if engine == "tiny" else model
        with step_progress("fine-tune") as callback:
            folder = finetune_lora(model_id, images, prompts, out, steps=steps, rank=rank,
                                   learning_rate=learning_rate, resolution=resolution,
                                   progress=lambda s, n, loss: callback(s, n))
    typer.echo(f"LoRA trained on {len(images)} creatives of {category!r}: {folder}")
