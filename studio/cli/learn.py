"""Commands that learn from clicks: simulate, evolve, finetune."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pipelines import InputError
from pipelines.engines import ENGINE_NAMES

from .errors import choice, cli_errors
from .options import store_option

app = typer.Typer()


@app.command()
def simulate(
    creatives: Path = typer.Option(..., help="Folder of published creatives (png + json + mask)."),
    users: Path = typer.Option(..., help="User table with planted segments, e.g. "
                               "assets/demo/users.csv."),
    impressions: int = typer.Option(10_000, help="Number of impressions to simulate."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the log (CSV)."),
    period: str = typer.Option("past", help="past (the world before its drift: a log to train "
                               "a reward model on) or campaign."),
    seed: int = typer.Option(0, help="Seed of the simulated world."),
) -> None:
    """Simulate impressions of the creatives in the hidden-truth world (a log to train on).

    A uniformly random policy shows the creatives to the users of the world
    (``studio.simulation.world``); the log has impressions and clicks, no true CTRs."""
    from ..creatives.records import load_creatives
    from ..files import write_atomic
    from ..inputs.tables import load_users
    from ..simulation.past import world_log

    with cli_errors():
        choice(period, ("past", "campaign"), "period")
        records = load_creatives(creatives)
        log = world_log(records, load_users(users), seed=seed, period=period,
                        impressions=impressions)
        columns = ["impression", "user_id", "creative_id", "product_id", "format", "position",
                   "click"]
        write_atomic(out, log[columns].to_csv(index=False).encode())
    typer.echo(f"wrote {len(log)} impressions ({log['click'].sum()} clicks, CTR "
               f"{log['click'].mean():.2%}) over {len(records)} creatives to {out}")


@app.command("evolve")
def evolve_command(
    store: str = store_option("Store built by `studio batch`"),
    catalog: Path = typer.Option(Path("assets/demo/catalog.csv"), help="The catalog the store "
                                 "was built from (its product images)."),
    rounds: int = typer.Option(1, help="Rounds to run."),
    candidates: int = typer.Option(8, help="New candidate prompts written, rendered and scored "
                                   "per pool that retires an arm."),
    retire: int = typer.Option(1, help="At most this many arms retire per pool and round."),
    min_arms: int = typer.Option(2, help="A pool never has fewer active arms."),
    rule: str = typer.Option("confident", help="confident: retire only an arm whose upper "
                             "bound is below the pool's best lower bound, or the last of the "
                             "arms given --min-impressions; lowest: the lowest mean, always."),
    min_impressions: int = typer.Option(300, help="Impressions an arm is given before it can "
                                        "retire without a confident gap."),
    refit: bool = typer.Option(True, "--refit/--no-refit", help="Refit the reward model on the "
                               "campaign's clicks (warm-started from --reward-model) before "
                               "scoring the candidates."),
    refit_out: Optional[Path] = typer.Option(None, help="Where to save the refitted model "
                                             "(default: next to --reward-model, "
                                             "NAME.round-N.npz)."),
    breeding: str = typer.Option("inherit", help="inherit (winners' scene, surface, lighting, "
                                 "palette and style, some mutated), recombine (the two best "
                                 "winners' slots mixed) or fresh (new template prompts)."),
    mutation: float = typer.Option(0.25, help="inherit: chance that a slot is a new "
                                   "vocabulary entry."),
    engine: str = typer.Option("auto", "--engine", "-e", help="auto, sd, tiny or backdrop."),
    size: Optional[str] = typer.Option(None, help="Canvas long side or WxH (at most 2048: "
                                       "STUDIO_MAX_SIZE)."),
    reward_model: Optional[Path] = typer.Option(None, help="CTR model to score candidates "
                                                "and warm-start the new arms (without one, "
                                                "candidates are added unranked)."),
    guidelines: Optional[Path] = typer.Option(None, help="Brand guidelines (YAML)."),
    nsfw_threshold: float = typer.Option(0.7, help="Safety gate: a new "
                                         "creative whose NSFW score is at or over this is "
                                         "blocked, and its candidate counts without it."),
    show: bool = typer.Option(False, "--show", help="List the recorded rounds and exit."),
    rollback: Optional[int] = typer.Option(None, help="Undo the rounds after this one "
                                           "(0 = back to the batch's pool) and exit."),
) -> None:
    """Evolve the arm pools: retire the prompts the clicks condemn, add the winners' children.

    Each round reads the store's event log, refits --reward-model on the campaign's
    clicks, retires per pool only what the data say (see --rule), breeds --candidates
    children of the winners, renders and scores them and adds the best as new arms
    warm-started from the refitted model. --show lists the rounds; --rollback undoes them."""
    from pipelines import check_size

    from ..creatives.safety import SafetySettings
    from ..inputs.guidelines import Guidelines
    from ..learning.evolve import EvolveSettings, catalog_images, evolve
    from ..learning.evolve import rollback as undo
    from ..learning.evolve import rounds as recorded
    from ..store import Store

    with cli_errors():
        opened = Store(store)
        if show:
            for entry in recorded(opened):
                typer.echo(f"round {entry['round']} · {entry['category']} · cluster "
                           f"{entry['cluster_id']}: retired {len(entry['retired'])}, added "
                           f"{len(entry['added'])} — {entry.get('reason', '')}")
            return
        if rollback is not None:
            typer.echo(f"undid {undo(opened, rollback)} pool records after round {rollback}")
            return
        choice(engine, ENGINE_NAMES, "engine")
        check_size(size)
        rules = Guidelines.load(guidelines) if guidelines else None
        safety = SafetySettings(nsfw_threshold)  # a bad threshold fails before rendering
        settings = EvolveSettings(candidates=candidates, retire=retire, min_arms=min_arms,
                                  rule=rule, min_impressions=min_impressions, refit=refit,
                                  breeding=breeding, mutation=mutation)
        images = catalog_images(catalog)
        for _ in range(rounds):
            out = None
            if reward_model and refit:
                out = refit_out or reward_model.with_name(
                    f"{reward_model.stem}.round-{opened.last_round() + 1}.npz")
            record = evolve(opened, catalog_images=images, settings=settings, engine=engine,
                            size=size, reward_model=reward_model, guidelines=rules,
                            safety=safety, refit_out=out, echo=typer.echo)
            if out is not None and record["scorer"] == "refit":
                typer.echo(f"refitted reward model: {out}")


@app.command()
def finetune(
    store: str = store_option("Store with scored creatives"),
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
    """Fine-tune a LoRA on the highest-reward creatives of a category (CG4CTR's loop).

    Render with it via `studio render --lora OUT`."""
    import numpy as np
    from PIL import Image

    from pipelines.engines import ensure_tiny_model
    from pipelines.finetune import finetune_lora

    from ..progress import step_progress
    from ..store import Store

    with cli_errors():
        choice(engine, ("sd", "tiny"), "engine")
        opened = Store(store)
        rows = opened.top_creatives(category, top)
        if not rows:
            raise InputError(f"no scored creatives of category {category!r} in the store")
        images = [np.asarray(Image.open(opened.file_path(r["image_sha256"])).convert("RGB"))
                  for r in rows]
        prompts = [r["manifest"]["prompt"] for r in rows]
        model_id = str(ensure_tiny_model().pipeline) if engine == "tiny" else model
        with step_progress("fine-tune") as callback:
            folder = finetune_lora(model_id, images, prompts, out, steps=steps, rank=rank,
                                   learning_rate=learning_rate, resolution=resolution,
                                   progress=lambda s, n, loss: callback(s, n))
    typer.echo(f"LoRA trained on {len(images)} creatives of {category!r}: {folder}")
