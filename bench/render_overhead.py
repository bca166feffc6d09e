"""Overhead of the studio's render call over a bare diffusers pipeline call.

Both use the same tiny model, the same canvas, mask, prompt, negative prompt, steps,
guidance and seed; calls are interleaved (alternating which goes first) so that machine
noise hits both alike. The studio call is the whole in-memory path from a loaded product
to finished creatives: placement, keep weights, the engine call, paste-back and the
expansion/seam checks. Publishing (watermark, PNG encoding, manifest) is timed apart,
because a batch job only publishes the creatives it keeps.

    python bench/render_overhead.py [--size 256] [--steps 4] [--rounds 15]

The last line is JSON with ``median_overhead_ratio`` (goal: <= 1.05 at 256 px, 4 steps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--product", default="assets/products/sneaker.png")
    args = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from pipelines import generation_mask, keep_weights, load_product
    from pipelines.engines import load_engine
    from studio.creatives.render import RenderOptions, prepare, publish, render

    torch.set_num_threads(1)
    engine, _ = load_engine("tiny")
    product = load_product(args.product)
    options = RenderOptions(prompt="on a white marble table, soft morning light",
                            size=str(args.size), steps=args.steps, seed=1)
    placed = prepare(product, options)
    mask = generation_mask(keep_weights(placed, options.mode))
    bare_inputs = dict(
        prompt=options.prompt, negative_prompt=options.negative_prompt,
        image=Image.fromarray(placed.rgb), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
        height=placed.size[1], width=placed.size[0], num_inference_steps=args.steps,
        guidance_scale=engine.default_guidance, num_images_per_prompt=1, output_type="np",
    )

    def bare():
        with torch.inference_mode():
            return engine.pipe(generator=[torch.Generator("cpu").manual_seed(options.seed)],
                               **bare_inputs).images

    def studio():
        return render(prepare(product, options), options, engine)

    for _ in range(2):  # warm-up
        bare()
        studio()
    ratios, bare_times, studio_times = [], [], []
    for i in range(args.rounds):
        order = (bare, studio) if i % 2 == 0 else (studio, bare)
        timings = {}
        for fn in order:
            started = time.perf_counter()
            fn()
            timings[fn.__name__] = time.perf_counter() - started
        bare_times.append(timings["bare"])
        studio_times.append(timings["studio"])
        ratios.append(timings["studio"] / timings["bare"])

    creative = studio()[0]
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        publish(creative, placed, product, options, engine, Path(folder))
        publish_s = time.perf_counter() - started

    print(f"bare diffusers call : median {statistics.median(bare_times) * 1000:.1f} ms")
    print(f"studio render call  : median {statistics.median(studio_times) * 1000:.1f} ms")
    print(f"publish (watermark + PNG + manifest, timed apart): {publish_s * 1000:.1f} ms")
    print(json.dumps({"median_overhead_ratio": round(statistics.median(ratios), 4),
                      "size": args.size, "steps": args.steps, "rounds": args.rounds}))


if __name__ == "__main__":
    main()
