"""Commands that make prompts and creatives: prompts, render, demo, outfit.

Why this module is long: the four commands share their option checks (engines,
formats, sizes, presets, writers) and are the one place the CLI makes creatives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from pipelines import InputError, format_names
from pipelines.compositing import MODES
from pipelines.engines import (
    DEFAULT_CONTROLNET_ID,
    DEFAULT_LCM_LORA_ID,
    DEFAULT_MODEL_ID,
    ENGINE_NAMES,
    SCHEDULERS,
)

from ..inputs.guidelines import DEFAULT_NEGATIVE_PROMPT
from .errors import choice, cli_errors

app = typer.Typer()


@app.command()
def prompts(
    product: Path = typer.Option(..., "--product", "-p", help="Product image (its category and "
                                 "title come from the demo catalog for bundled samples)."),
    clusters: Path = typer.Option(..., help="Clusters file from `studio audience fit`."),
    n: int = typer.Option(4, "--n", "-n", help="Prompts per cluster."),
    generator: str = typer.Option("template", help="template, llm (a local model: the "
                                  "bundled SmolLM2-135M-Instruct unless --model) or openai."),
    guidelines: Optional[Path] = typer.Option(None, help="Brand guidelines (YAML)."),
    category: Optional[str] = typer.Option(None, help="Product category: generic or the name "
                                           "of a vocabulary file in assets/prompts "
                                           "(e.g. kitchenware)."),
    title: Optional[str] = typer.Option(None, help="Product title used in the prompt."),
    model: Optional[str] = typer.Option(None, help="llm: hub id, folder or .gguf file "
                                        "(default: the bundled model); openai: model name."),
    base_url: Optional[str] = typer.Option(None, help="openai: endpoint, e.g. "
                                           "http://localhost:11434/v1 (key from OPENAI_API_KEY)."),
    cluster: Optional[int] = typer.Option(None, help="Only this cluster id."),
    seed: int = typer.Option(0, help="Seed (same seed, same prompts)."),
    out: Optional[Path] = typer.Option(None, help="Also write the prompts as JSON here."),
) -> None:
    """Write prompts for a product, for each audience cluster."""
    from ..files import write_atomic
    from ..inputs.audience import Audience
    from ..inputs.catalog import product_info
    from ..inputs.guidelines import Guidelines
    from ..prompts import make_generator

    with cli_errors():
        choice(generator, ("template", "llm", "openai"), "generator")
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
    preset: Optional[str] = typer.Option(None, help="Platform size, e.g. feed-4:5 (1080x1350) "
                                         "or story-9:16 (1080x1920): the creative is written "
                                         "at exactly that size. `studio presets` lists them. "
                                         "Replaces --format and --size."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="Ad format: "
                                         f"{', '.join(format_names())} (keep = the input canvas "
                                         "as is). Default 1:1."),
    size: Optional[str] = typer.Option(None, help="Canvas long side (768) or exact WxH, "
                                       "multiples of 8, at most 2048 (STUDIO_MAX_SIZE). "
                                       "Default long side 512; see --preset for platform "
                                       "sizes."),
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
    headline: Optional[str] = typer.Option(None, help="Headline laid over the creative "
                                           "(at most 40 characters), off the product, in the "
                                           "format's safe zone; read back with OCR."),
    cta: Optional[str] = typer.Option(None, help="Call to action on a button (at most 18 "
                                      "characters), e.g. 'Shop now'."),
    brand_kit: Optional[Path] = typer.Option(None, help="Brand kit (YAML: logo, fonts, "
                                             "colours, tone, banned words) for the copy. "
                                             "Default: the example kit in assets/brand/."),
    signing: Optional[Path] = typer.Option(None, envvar="STUDIO_SIGNING", help="Sign each "
                                           "creative with C2PA content credentials: a folder "
                                           "with signing.yaml (`studio keys init DIR` makes a "
                                           "development one). Default: $STUDIO_SIGNING."),
) -> None:
    """Render creatives of one product for one prompt.

    Optionally at a preset's exact size, with a headline and CTA read back with OCR, signed."""
    from pipelines import check_size, load_product
    from pipelines.engines import load_engine, preview_notice
    from pipelines.presets import get_preset

    from ..files import check_folder_path
    from ..progress import step_progress
    from ..creatives.render import RenderOptions, prepare, publish
    from ..creatives.render import render as render_creatives
    from ..creatives.credentials import Signing
    from ..inputs.brand import BrandKit
    from ..prompts.copy import AdCopy

    with cli_errors():
        choice(mode, MODES, "mode")
        if preset is not None:
            if format is not None or size is not None:
                raise InputError("--preset sets the format and the size; drop --format/--size")
            get_preset(preset)
        format = format or "1:1"
        choice(format, format_names(), "format")
        choice(engine, ENGINE_NAMES, "engine")
        if scheduler is not None:
            choice(scheduler, SCHEDULERS, "scheduler")
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {str(out)!r} exists and is not a folder")
        check_folder_path(out, "--out")
        check_size(size, [format])  # bounded before anything is read or allocated
        options = RenderOptions(
            prompt=prompt, negative_prompt=negative_prompt, mode=mode, format=format,
            size=size, area=area, anchor=anchor, seed=seed, n=n, steps=steps,
            guidance=guidance, feather=feather, max_expansion=max_expansion,
            max_attempts=max_attempts, watermark=watermark, preset=preset,
            copy=AdCopy(headline or "", cta or "") if headline or cta else None,
            brand=BrandKit.load(brand_kit) if brand_kit else None,
            signing=Signing.load(signing) if signing else None,  # a bad key fails here
        )
        if brand_kit and options.copy is None:
            raise InputError("--brand-kit styles the copy: give --headline and/or --cta")
        item = load_product(product, mask=mask)
        placed = prepare(item, options)  # bad input fails here, before the engine loads
        chosen, notice = load_engine(engine, model_id=model, controlnet=controlnet,
                                     controlnet_id=controlnet_model, lcm=lcm,
                                     lcm_lora_id=lcm_lora, scheduler=scheduler, device=device,
                                     lora_id=lora)
        with step_progress(f"render ({chosen.name})") as callback:
            creatives = render_creatives(placed, options, chosen, callback=callback)
        manifests = [publish(creative, placed, item, options, chosen, out, notice=notice)
                     for creative in creatives]
        preview = preview_notice(chosen, notice)
        if preview:  # said above the results, so no one mistakes a preview for the real thing
            typer.echo(preview, err=True)
        for creative, manifest in zip(creatives, manifests):
            flag = "" if creative.passed else "  (over --max-expansion after all attempts)"
            width, height = manifest["size"]
            typer.echo(f"{out / manifest['image']}  {width}x{height} seed={creative.seed} "
                       f"expansion={creative.scores['expansion']:.3f}{flag}")
            for warning in manifest["warnings"]:
                typer.echo(f"warning: {warning}", err=True)


@app.command()
def presets() -> None:
    """List the platform presets of `studio render --preset` (size, format, where)."""
    from pipelines.presets import PRESETS

    for chosen in PRESETS.values():
        size = f"{chosen.width}x{chosen.height}"
        typer.echo(f"{chosen.name:<18} {size:>9}  {chosen.format:<6} {chosen.label}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Where to write the results."),
    engine: str = typer.Option("auto", "--engine", "-e", help="auto, sd, backdrop or tiny."),
    impressions: int = typer.Option(50_000, help="Simulated impressions per policy in the "
                                    "campaign."),
    formats: str = typer.Option("1:1,9:16", help="Comma-separated ad formats to render."),
    per_cluster: int = typer.Option(6, help="Prompts per category and cluster (past and "
                                    "campaign)."),
    top_m: Optional[int] = typer.Option(None, help="Arms per (category, cluster) pool "
                                        "(default: 4, at most --per-cluster)."),
    size: Optional[str] = typer.Option(None, help="Canvas long side (default 512, at most "
                                       "2048: STUDIO_MAX_SIZE)."),
    rounds: int = typer.Option(2, help="Evolution rounds of the learning loop (0: skip it)."),
    drift: bool = typer.Option(True, "--drift/--no-drift", help="Whether the world's tastes "
                               "drift between the past and the campaign, and during it."),
    seed: int = typer.Option(0, help="Seed of the whole run (and of the simulated world)."),
    generator: str = typer.Option("template", help="Campaign prompt writer: template, or llm "
                                  "(the bundled SmolLM2-135M-Instruct offline; ~2 s a prompt "
                                  "on a CPU)."),
) -> None:
    """The whole flow on the bundled assets, judged in a hidden-truth world.

    Audience, prompts, renders of a past and a campaign pool, a reward model trained on
    the past and judged on held-out creatives, arms, a simulated campaign (the served
    bandit, the real service, greedy-on-prior, random, static, epsilon-greedy, LinUCB,
    Thompson and the oracles), the learning loop (fixed vs evolving pool) and a report."""
    from pipelines import check_size

    from ..files import check_folder_path
    from ..simulation.demo import run_demo

    with cli_errors():
        choice(engine, ENGINE_NAMES, "engine")
        wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
        for fmt in wanted:
            choice(fmt, format_names()[1:], "format")
        check_size(size, wanted)
        check_folder_path(out, "--out")
        if impressions < 1:
            raise InputError(f"impressions must be at least 1, got {impressions}")
        if rounds < 0:
            raise InputError(f"rounds must be >= 0, got {rounds}")
        choice(generator, ("template", "llm"), "generator")
        top_m = min(4, per_cluster) if top_m is None else top_m
        if per_cluster < 1 or not 1 <= top_m <= per_cluster:
            raise InputError(f"need per-cluster >= 1 and 1 <= top-m <= per-cluster, got "
                             f"{per_cluster} and {top_m}")
        result = run_demo(out, engine=engine, formats=wanted, impressions=impressions,
                          per_cluster=per_cluster, top_m=top_m, size=size, rounds=rounds,
                          drift=drift, seed=seed, generator=generator, echo=typer.echo)
    typer.echo(json.dumps(result))


@app.command()
def outfit(
    listed: Optional[list[Path]] = typer.Argument(None, metavar="ITEMS", show_default=False,
                                                  help="More fixed items, listed after --items "
                                                  "(or without it)."),
    items: list[Path] = typer.Option([], "--items", show_default=False,
                                     help="1–3 fixed items of the outfit (repeat --items, or "
                                     "list them after it)."),
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
    from ..creatives.outfit import run_outfit

    items = [*items, *(listed or [])]  # `--items A B C` gives A to the option, B C listed
    if not items:
        raise typer.BadParameter("give 1–3 fixed items of the outfit", param_hint="'--items'")
    with cli_errors():
        choice(engine, ENGINE_NAMES, "engine")
        manifest = run_outfit(items, category, history=history, out=out, engine=engine,
                              seed=seed, steps=steps, cell=cell, clip=clip,
                              ip_adapter=ip_adapter, history_weight=history_weight,
                              echo=typer.echo)
    for warning in manifest["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"{out / manifest['image']}  prompt: {manifest['prompt']}")
    typer.echo(json.dumps(manifest["metrics"]))
