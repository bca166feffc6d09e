"""How often the invisible watermark survives what platforms do to an uploaded creative.

Every product in ``assets/products`` is rendered with the ``backdrop`` engine at each size
on each prompt and finished as published (watermark on). The payload is then decoded
from the published PNG and after: JPEG re-encoding at quality 85; a 0.5x resize (LANCZOS),
decoded at the half size ("half") and after scaling back up to the original size
(BICUBIC; "half, restored", since dwtDctSvd reads blocks at fixed positions); and the
two combined, restored: 0.5x then JPEG 85 (a platform downsizing an upload) and JPEG 85
then 0.5x (a re-shared JPEG). Survival = the 4-byte payload decoded exactly; "bits" is the mean
share of payload bits right (0.5 is chance). Creatives whose watermark was skipped
(near-white backgrounds) are counted and left out of the rates.

    python bench/watermark_survival.py [--sizes 512 1080] [--prompts 4]

It is a figure, not a promise. The last line is JSON with the survival rate per
transform and size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPTS = (
    "on a white marble table, soft morning light",
    "on a wooden shelf in a cozy living room, warm light",
    "on a concrete podium, dark studio, dramatic side light",
    "on a seamless pure white backdrop, bright even light",  # mostly skipped: near-white
    "on a glossy black surface, neon glow",
)
TRANSFORMS = ("png", "jpeg85", "half", "half, restored", "half+jpeg85, restored",
              "jpeg85+half, restored")


def transformed(image, name: str):
    """``image`` (RGB uint8) after the named transform, as the decoder would see it."""
    import numpy as np
    from PIL import Image

    def jpeg(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=85)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))

    def half(array):
        h, w = array.shape[:2]
        return np.asarray(Image.fromarray(array).resize((w // 2, h // 2), Image.LANCZOS))

    def restore(array):
        h, w = image.shape[:2]
        return np.asarray(Image.fromarray(array).resize((w, h), Image.BICUBIC))

    steps = {"png": [], "jpeg85": [jpeg], "half": [half], "half, restored": [half, restore],
             "half+jpeg85, restored": [half, jpeg, restore],
             "jpeg85+half, restored": [jpeg, half, restore]}[name]
    out = image
    for step in steps:
        out = step(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["512", "1080"])
    parser.add_argument("--prompts", type=int, default=4, choices=range(1, len(PROMPTS) + 1),
                        metavar=f"1..{len(PROMPTS)}")
    parser.add_argument("--products", default="assets/products")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    from pipelines import load_product
    from pipelines.engines import load_engine
    from pipelines.watermark import read_watermark
    from studio.creatives.render import RenderOptions, finish, prepare, render

    engine, _ = load_engine("backdrop")
    products = sorted(Path(args.products).glob("*.png"))
    if not products:
        sys.exit(f"no products (*.png) in {args.products}")
    results = {size: {name: [] for name in TRANSFORMS} for size in args.sizes}
    skipped = {size: [] for size in args.sizes}
    for size in args.sizes:
        for path in products:
            product = load_product(path)
            for prompt in PROMPTS[:args.prompts]:
                options = RenderOptions(prompt=prompt, size=size, seed=1, watermark=True)
                placed = prepare(product, options)
                creative = render(placed, options, engine)[0]
                finished = finish(creative, placed, product, options, engine)
                report = finished.manifest["watermark"]
                if report["status"] != "embedded":
                    skipped[size].append(f"{path.stem} / {prompt}: {report['reason']}")
                    continue
                payload = bytes.fromhex(report["payload"])
                published = np.asarray(Image.open(io.BytesIO(finished.png)).convert("RGB"))
                for name in TRANSFORMS:
                    decoded = read_watermark(transformed(published, name), len(payload))
                    bits = np.unpackbits(np.frombuffer(decoded, np.uint8)
                                         ^ np.frombuffer(payload, np.uint8))
                    results[size][name].append((decoded == payload, 1 - bits.mean()))

    print(f"{len(products)} products x {args.prompts} prompts per size, backdrop engine")
    header = f"{'transform':<24}" + "".join(f"{size + ' px':>22}" for size in args.sizes)
    print(header)
    print("-" * len(header))
    summary = {}
    for name in TRANSFORMS:
        cells = []
        for size in args.sizes:
            rows = results[size][name]
            survived = sum(ok for ok, _ in rows)
            rate = survived / len(rows) if rows else None
            bits = float(np.mean([b for _, b in rows])) if rows else None
            summary.setdefault(name, {})[size] = None if rate is None else round(rate, 3)
            cells.append(f"{survived}/{len(rows)} (bits {bits:.2f})" if rows else "n/a")
        print(f"{name:<24}" + "".join(f"{cell:>22}" for cell in cells))
    for size in args.sizes:
        print(f"{size} px: {len(skipped[size])} creative(s) skipped (watermark not embedded)")
        for line in skipped[size]:
            print(f"  {line}")
    print(json.dumps({"survival": summary,
                      "marked": {size: len(results[size]["png"]) for size in args.sizes},
                      "skipped": {size: len(skipped[size]) for size in args.sizes}}))


if __name__ == "__main__":
    main()
