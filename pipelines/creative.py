"""From a placed product and a prompt to finished creatives, the product pasted back last.

``CreativeRenderer`` is the one place that orders the steps: keep weights → one batched
engine call (with a Canny control image when the engine has a ControlNet) → composite →
checks, and re-seeds creatives whose object expansion is over the limit. Watermarking
is left to whoever publishes a creative (``watermark.embed_watermark`` with
``Creative.kept``): a batch renders many candidates and keeps only the best.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .checks import expansion_score, seam_score
from .compositing import canny_control_image, composite, generation_mask, keep_weights
from .engines.base import Engine, ProgressCallback
from .errors import InputError
from .placement import PlacedProduct

#: Seed offset between re-render attempts of one creative (a large prime keeps
#: re-seeded runs away from the seeds of neighbouring creatives).
RESEED_STRIDE = 1_000_003


@dataclass
class Creative:
    """One rendered creative. ``seed`` is the seed of the accepted attempt; ``attempts``
    lists every (seed, expansion) tried; ``passed`` is False when no attempt met the
    expansion limit (the best one is kept). ``kept`` marks the pixels taken unchanged
    from the placed layer (product, and the old photo when outpainting).
    ``sd_nsfw_flag`` is the Stable Diffusion safety checker's verdict on the accepted
    attempt (None: the engine ran no safety checker)."""

    image: np.ndarray
    seed: int
    requested_seed: int
    scores: dict
    kept: np.ndarray
    attempts: list = field(default_factory=list)
    passed: bool = True
    seconds: float = 0.0
    sd_nsfw_flag: bool | None = None


class CreativeRenderer:
    """Render creatives of a placed product with an engine.

    ``mode`` is ``inpaint`` (keep the product, generate the background) or ``outpaint``
    (keep the whole photo, generate the new canvas area). ``max_expansion`` (a fraction
    of the product area) rejects a render and re-seeds it, up to ``max_attempts`` renders
    per creative.
    """

    def __init__(self, engine: Engine, *, mode: str = "inpaint", feather: int | None = None,
                 max_expansion: float | None = None, max_attempts: int = 3):
        if max_expansion is not None and max_expansion < 0:
            raise InputError(f"max expansion must be >= 0, got {max_expansion}")
        if max_attempts < 1:
            raise InputError(f"max attempts must be >= 1, got {max_attempts}")
        self.engine = engine
        self.mode = mode
        self.feather = feather
        self.max_expansion = max_expansion
        self.max_attempts = max_attempts

    def __call__(self, placed: PlacedProduct, prompt: str, *, seeds: Sequence[int],
                 negative_prompt: str = "", steps: int | None = None,
                 guidance: float | None = None, callback: ProgressCallback | None = None) -> list[Creative]:
        if not prompt or not prompt.strip():
            raise InputError("prompt is empty")
        if not seeds:
            raise InputError("at least one seed is needed")
        weights = keep_weights(placed, self.mode, feather=self.feather)
        to_generate = generation_mask(weights)
        control = (canny_control_image(placed)
                   if getattr(self.engine, "controlnet_id", None) else None)
        canvas = placed.rgb.copy()
        kept = ~to_generate

        best: dict[int, Creative] = {}
        pending = list(dict.fromkeys(int(s) for s in seeds))
        for attempt in range(self.max_attempts):
            tries = [s + attempt * RESEED_STRIDE for s in pending]
            started = time.perf_counter()
            images = self.engine(canvas, to_generate, prompt, seeds=tries,
                                 negative_prompt=negative_prompt, steps=steps,
                                 guidance=guidance, control_image=control, callback=callback)
            per_image = (time.perf_counter() - started) / len(tries)
            # The sd engine's ``RenderedImages`` carry its safety checker's flags.
            flags = getattr(images, "nsfw_flags", None) or [None] * len(tries)
            still_failing = []
            for requested, seed, raw, flag in zip(pending, tries, images, flags):
                image = composite(raw, placed, weights)
                scores = {"expansion": expansion_score(image, placed.mask),
                          "seam": seam_score(image, to_generate)}
                ok = self.max_expansion is None or scores["expansion"] <= self.max_expansion
                previous = best.get(requested)
                attempts = (previous.attempts if previous else []) + [
                    {"seed": seed, "expansion": round(scores["expansion"], 5)}]
                if previous is None or scores["expansion"] < previous.scores["expansion"]:
                    best[requested] = Creative(image, seed, requested, scores, kept, passed=ok,
                                               sd_nsfw_flag=flag)
                best[requested].attempts = attempts
                best[requested].seconds += per_image
                if not ok:
                    still_failing.append(requested)
            pending = still_failing
            if not pending:
                break

        creatives = [best[int(s)] for s in dict.fromkeys(int(s) for s in seeds)]
        for creative in creatives:
            creative.scores = {k: round(float(v), 5) for k, v in creative.scores.items()}
        return creatives
