"""Overhead of content credentials over publishing a 1080×1350 creative.

One creative of the bundled product is rendered with the procedural ``backdrop`` engine at
the ``feed-4:5`` preset (1080×1350). The baseline is ``finish`` as it runs today: crop to
the preset, watermark, PNG encoding, manifest. The overhead is signing the finished PNG
with a C2PA manifest (development keys from ``init_keys``, thumbnail off) plus verifying it
against the development CA. Both are measured in the same run, interleaved round by round
(alternating which goes first) so that machine noise hits both alike.

    python bench/signing_overhead.py [--rounds 9] [--preset feed-4:5]

The last line is JSON with ``median_overhead_ratio`` = (sign + verify) / finish, per round,
median (goal: <= 0.05).
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
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--preset", default="feed-4:5")
    parser.add_argument("--product", default="assets/products/sneaker.png")
    args = parser.parse_args()

    from pipelines import load_product
    from pipelines.engines import load_engine
    from studio.creatives.credentials import DIGITAL_SOURCE_TYPE, Signing, init_keys, verify
    from studio.creatives.render import RenderOptions, finish, prepare, render

    engine, _ = load_engine("backdrop")
    product = load_product(args.product)
    options = RenderOptions(prompt="on a white marble table, soft morning light",
                            preset=args.preset, seed=1)
    placed = prepare(product, options)
    creative = render(placed, options, engine)[0]

    with tempfile.TemporaryDirectory() as folder:
        init_keys(Path(folder) / "keys")
        signing = Signing.load(Path(folder) / "keys")
        anchors = (Path(folder) / "keys" / "ca.pem").read_bytes()

    def publish():
        return finish(creative, placed, product, options, engine)

    png = publish().png

    def credentials():
        signed = signing.sign_png(png, title="creative.png", source_type=DIGITAL_SOURCE_TYPE,
                                  product_sha256=product.sha256,
                                  assertions={"engine": engine.name, "seed": creative.seed,
                                              "prompt": options.prompt})
        started = time.perf_counter()
        report = verify(signed, trust_anchors=anchors)
        assert report["state"] == "trusted", report
        return signed, time.perf_counter() - started

    credentials()  # warm-up
    finish_times, sign_times, verify_times, ratios = [], [], [], []
    for i in range(args.rounds):
        timings = {}
        for name in (("publish", "credentials") if i % 2 == 0 else ("credentials", "publish")):
            started = time.perf_counter()
            result = publish() if name == "publish" else credentials()
            timings[name] = time.perf_counter() - started
            if name == "credentials":
                signed, timings["verify"] = result
        finish_times.append(timings["publish"])
        verify_times.append(timings["verify"])
        sign_times.append(timings["credentials"] - timings["verify"])
        ratios.append(timings["credentials"] / timings["publish"])

    def ms(values):
        return statistics.median(values) * 1000

    print(f"creative            : {args.preset}, {len(png) / 1e6:.2f} MB PNG "
          f"(+{(len(signed) - len(png)) / 1e3:.1f} KB of manifest)")
    print(f"publish (finish)    : median {ms(finish_times):.1f} ms")
    print(f"sign (C2PA, ES256)  : median {ms(sign_times):.1f} ms")
    print(f"verify (trusted)    : median {ms(verify_times):.1f} ms")
    print(json.dumps({"median_overhead_ratio": round(statistics.median(ratios), 4),
                      "publish_ms": round(ms(finish_times), 1),
                      "sign_ms": round(ms(sign_times), 1),
                      "verify_ms": round(ms(verify_times), 1),
                      "preset": args.preset, "rounds": args.rounds}))


if __name__ == "__main__":
    main()
