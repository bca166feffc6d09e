"""Render creatives of a product and publish them with their provenance.

This is the one render path every face uses (CLI, demo, batch, UI): load and validate
the product, place it for the ad format (or a platform preset), render with an engine,
then publish each creative as ``<id>.png`` + ``<id>.mask.png`` + ``<id>.json`` (its
manifest), written atomically, the manifest last. ``<id>`` is derived from the image's
PNG encoding, so the same render published twice has the same id. The published file
carries the AI disclosure (XMP) and, with signing configured, C2PA content credentials.

With ad copy, the headline and CTA are laid out off the product in the brand's style and
read back with OCR; the background without text (``<id>.background.png``) and the copy
alone (``<id>.copy.png``, RGBA) are kept beside the creative, so copy and image can be
varied and learned apart.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines import (
    Creative,
    CreativeRenderer,
    InputError,
    PlacedProduct,
    Product,
    keep_weights,
    place,
)
from pipelines.engines import Engine, ProgressCallback, preview_notice
from pipelines.presets import crop_to_preset, get_preset
from pipelines.watermark import embed_watermark, watermark_payload

from ..files import atomic_files
from ..inputs.brand import BrandKit
from ..inputs.guidelines import DEFAULT_NEGATIVE_PROMPT
from ..prompts.copy import AdCopy
from .ad_copy import copy_manifest, lay_out_copy
from .credentials import Signing
from .provenance import mark
from .safety import SafetySettings, check_creative
from .versions import library_versions

MANIFEST_VERSION = 1
#: (anchor, area) tried in order when copy does not fit beside the product: a smaller
#: product low, then to one side (a tall product leaves a column free), then smaller.
COPY_PLACEMENTS = (("bottom", 0.2), ("left", 0.2), ("right", 0.2), ("bottom", 0.12),
                   ("left", 0.12))


@dataclass(frozen=True)
class RenderOptions:
    """Everything that decides how a product is rendered, besides the engine."""

    prompt: str
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    mode: str = "inpaint"
    format: str = "1:1"
    size: str | None = None
    area: float = 0.3
    anchor: str = "center"
    seed: int = 0
    n: int = 1
    steps: int | None = None
    guidance: float | None = None
    feather: int | None = None
    max_expansion: float | None = None
    max_attempts: int = 3
    watermark: bool = True
    preset: str | None = None
    copy: AdCopy | None = None
    brand: BrandKit | None = None
    safety: SafetySettings = SafetySettings()
    #: C2PA signing (``studio keys init`` / ``--signing DIR`` / ``STUDIO_SIGNING``); None:
    #: the file carries the disclosure but no credentials.
    signing: Signing | None = None

    @property
    def canvas(self) -> tuple[str, str | None]:
        """(format, size) of the render canvas: the preset's when one is named (its size
        rounded up to multiples of 8; :func:`finish` crops to the exact size)."""
        if self.preset is None:
            return self.format, self.size
        chosen = get_preset(self.preset)
        return chosen.format, chosen.size_option

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.n)]


def prepare(product: Product, options: RenderOptions) -> PlacedProduct:
    """Place the product and check that the options leave something to generate.

    Fast (milliseconds): faces call it before loading an engine, so that bad input
    fails at once.
    """
    if not options.prompt.strip():
        raise InputError("prompt is empty")
    if options.n < 1:
        raise InputError(f"n must be at least 1, got {options.n}")
    fmt, size = options.canvas
    placed = place(product, fmt, size=size, area=options.area, anchor=options.anchor)
    keep_weights(placed, options.mode, feather=options.feather)
    if options.copy is not None:  # copy that cannot fit fails now, not after the render
        lay_out_copy(np.full((*placed.mask.shape, 3), 128, np.uint8), placed, options.copy,
                     options.brand)
    return placed


def prepare_with_copy_room(product: Product,
                           options: RenderOptions) -> tuple[PlacedProduct, RenderOptions]:
    """:func:`prepare`; when the copy does not fit beside the product where ``options``
    place it, the first of ``COPY_PLACEMENTS`` where it does (for runs that place many
    products unattended: batch, the demo's panel). Returns the placement and the options
    it was made with."""
    try:
        return prepare(product, options), options
    except InputError as first:
        if options.copy is None:
            raise
        for anchor, area in COPY_PLACEMENTS:
            candidate = replace(options, anchor=anchor, area=area)
            try:
                return prepare(product, candidate), candidate
            except InputError:
                continue
        raise first


def render(placed: PlacedProduct, options: RenderOptions, engine: Engine, *,
           callback: ProgressCallback | None = None) -> list[Creative]:
    """Render ``options.n`` creatives of a placed product in one batched engine call."""
    renderer = CreativeRenderer(engine, mode=options.mode, feather=options.feather,
                                max_expansion=options.max_expansion,
                                max_attempts=options.max_attempts)
    return renderer(placed, options.prompt, seeds=options.seeds,
                    negative_prompt=options.negative_prompt, steps=options.steps,
                    guidance=options.guidance, callback=callback)


@dataclass
class Finished:
    """One encoded creative: its files (name -> bytes, the image first, then the mask and,
    with copy, the background and the copy layer) and its manifest (not in ``files``)."""

    files: dict[str, bytes]
    manifest: dict

    @property
    def png(self) -> bytes:
        return self.files[self.manifest["image"]]

    @property
    def mask_png(self) -> bytes:
        return self.files[self.manifest["mask"]]

    @property
    def bytes(self) -> int:
        return sum(len(data) for data in self.files.values())


def finish(creative: Creative, placed: PlacedProduct, product: Product,
           options: RenderOptions, engine: Engine, *, notice: str | None = None) -> Finished:
    """Crop to the preset, lay the copy out, watermark (when asked and reliable), encode,
    read the copy back with OCR, run the safety gate, and mark the file (the AI
    disclosure; C2PA credentials with ``options.signing``). The id is derived from the
    image's PNG encoding before the marks (they hold a time: the same pixels keep their
    id). ``notice`` is the engine's fallback notice, recorded at the top of the manifest."""
    started = time.perf_counter()
    if options.preset is not None:
        creative, placed = crop_to_preset(creative, placed, get_preset(options.preset))
    image, layout = creative.image, None
    if options.copy is not None:
        layout = lay_out_copy(creative.image, placed, options.copy, options.brand)
        image = layout.image
    if options.watermark:
        payload = watermark_payload(product.sha256, options.prompt, creative.seed, engine.name)
        image, watermark = embed_watermark(image, payload, creative.kept)
    else:
        watermark = {"status": "skipped", "reason": "disabled (--no-watermark)"}
    png = png_bytes(image)
    creative_id = hashlib.sha256(png).hexdigest()[:20]
    files = {f"{creative_id}.png": png,
             f"{creative_id}.mask.png": png_bytes(np.where(placed.mask, 255, 0).astype(np.uint8))}
    manifest = _manifest(creative_id, creative, placed, product, options, engine, watermark,
                         preview_notice(engine, notice))
    if layout is not None:
        files[f"{creative_id}.background.png"] = png_bytes(creative.image)
        files[f"{creative_id}.copy.png"] = png_bytes(layout.layer)
        manifest["copy"] = copy_manifest(creative_id, image, layout, options.copy,
                                         options.brand)
        if not manifest["copy"]["ocr_match"]:
            manifest["warnings"].append(
                "the copy did not read back exactly with OCR: read "
                + "; ".join(f"{k} {v!r}" for k, v in manifest["copy"]["read"].items()))
    # The safety gate, on the finished image, its prompt, copy and OCR text (store: blocked).
    copied, brand = manifest.get("copy") or {}, options.brand or (
        BrandKit.default() if options.copy is not None else None)
    manifest["safety"] = check_creative(
        image, prompt=options.prompt,
        copy_texts=[t for t in (copied.get("headline"), copied.get("cta")) if t],
        ocr_texts=list((copied.get("read") or {}).values()),
        banned=brand.banned if brand else (), sd_nsfw_flag=creative.sd_nsfw_flag,
        settings=options.safety)
    if manifest["safety"]["blocked"]:
        manifest["warnings"].append("blocked by the safety gate: "
                                    + "; ".join(manifest["safety"]["reasons"]))
    # In the file: the AI disclosure, then (when configured) the C2PA credentials.
    files[manifest["image"]], recorded = mark(png, manifest, product.sha256, options.signing)
    manifest.update(recorded)
    manifest["timings"]["publish_s"] = round(time.perf_counter() - started, 4)
    return Finished(files, manifest)


def publish(creative: Creative, placed: PlacedProduct, product: Product,
            options: RenderOptions, engine: Engine, out_dir: Path, *,
            notice: str | None = None) -> dict:
    """Write one creative into ``out_dir`` as ``<id>.png``, ``<id>.mask.png`` (and, with
    copy, ``<id>.background.png`` and ``<id>.copy.png``) and ``<id>.json``, atomically,
    the manifest last. Returns the manifest."""
    finished = finish(creative, placed, product, options, engine, notice=notice)
    manifest = finished.manifest
    with atomic_files(Path(out_dir)) as files:
        files.update(finished.files)
        files[f"{manifest['id']}.json"] = json.dumps(manifest, indent=2).encode() + b"\n"
    return manifest


def _manifest(creative_id: str, creative: Creative, placed: PlacedProduct, product: Product,
              options: RenderOptions, engine: Engine, watermark: dict,
              notice: str | None) -> dict:
    engine_info = engine.describe()
    uses_steps = engine.name != "backdrop"
    return {
        "manifest_version": MANIFEST_VERSION,
        "id": creative_id,
        "preview": {"procedural": engine.name == "backdrop", "notice": notice},
        "warnings": _warnings(creative),
        "image": f"{creative_id}.png",
        "mask": f"{creative_id}.mask.png",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **engine_info,
        "prompt": options.prompt,
        "negative_prompt": options.negative_prompt,
        "seed": creative.seed,
        "requested_seed": creative.requested_seed,
        "steps": (options.steps or engine.default_steps) if uses_steps else None,
        "guidance": (engine.default_guidance if options.guidance is None
                     else options.guidance) if uses_steps else None,
        "mode": options.mode,
        "format": placed.format,
        "preset": get_preset(options.preset).describe() if options.preset else None,
        "size": list(placed.size),
        "placement": {"box": list(placed.box), "scale": round(placed.scale, 6),
                      "area": options.area if placed.format != "keep" else None,
                      "anchor": options.anchor if placed.format != "keep" else None,
                      "feather": options.feather},
        "product": {"name": product.name, "sha256": product.sha256,
                    "mask_source": product.mask_source},
        "scores": creative.scores,
        "checks": {"max_expansion": options.max_expansion,
                   "max_attempts": options.max_attempts, "passed": creative.passed,
                   "attempts": creative.attempts},
        "watermark": watermark,
        "timings": {"render_s": round(creative.seconds, 4)},
        "versions": library_versions(),
    }


def _warnings(creative: Creative) -> list[str]:
    """What is wrong with the result, besides it being a preview (``preview``)."""
    warnings = []
    if not creative.passed:
        attempts = len(creative.attempts)
        warnings.append(f"the generated background grows the product's outline beyond "
                        f"--max-expansion after {attempts} attempt{'s' * (attempts > 1)} "
                        "(the best one is kept)")
    return warnings


def png_bytes(array: np.ndarray) -> bytes:
    """The canonical PNG encoding of an image: a creative's id is the sha256 of it."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
