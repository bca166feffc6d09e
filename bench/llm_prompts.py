"""Scene prompts from the bundled language model against the template writer.

On the demo's clusters (the demo audience, k by silhouette, as `studio demo` fits it) ×
the demo catalog's categories (each category's product as `studio batch` writes for it),
every writer writes ``--n`` prompts per (cluster, category) with seed 0, under the same
brand guidelines (banned words, a length cap):

- ``template``: the default writer;
- ``llm``: the bundled SmolLM2-135M-Instruct, one prompt per call in the structured
  answer the studio begins (``{"prompt": "``, two worked examples, stopped at the
  closing quote), ``retries`` 2;
- ``llm-free``: the same model asked for the whole list in one free-form JSON answer
  (the contract before the structured answer; ``openai`` still uses it), on the first
  ``--free-pairs`` pairs only: each attempt runs up to 320 tokens.

Figures per writer: valid JSON on the first attempt and after the retries (per
conversation: one prompt for ``llm``, one list for ``llm-free``), prompts written by the
model and the fallback rate, guideline violations in the model's raw text (before the
guidelines repair it) and in the final prompts, relevance (MiniLM cosine between each
final prompt and the cluster's interests; the template picks its words by exactly that
similarity), diversity (distinct-1 / distinct-2 over all the writer's prompts), seconds
per prompt (model loaded; the load is timed apart).

    python bench/llm_prompts.py [--n 2] [--pairs 25] [--free-pairs 4] [--out bench-out/llm_prompts.json]

The last line is JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def json_answer(answer: str | None):
    """The answer's prompt texts when it is valid JSON in either contract, else None."""
    if not answer:
        return None
    match = re.search(r"\{.*\}", answer, re.DOTALL)
    try:
        data = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("prompts"), list):
        return [i.get("text") if isinstance(i, dict) else i for i in data["prompts"]]
    if isinstance(data, dict) and isinstance(data.get("prompt"), str):
        return [data["prompt"]]
    return None


def conversations(attempts: list[dict]) -> list[list[dict]]:
    """Attempts grouped per conversation (each starts at attempt 0)."""
    groups: list[list[dict]] = []
    for attempt in attempts:
        if attempt["attempt"] == 0 or not groups:
            groups.append([])
        groups[-1].append(attempt)
    return groups


def distinct(texts: list[str], n: int) -> float:
    grams, total = set(), 0
    for text in texts:
        words = re.findall(r"[a-z0-9']+", text.lower())
        items = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        grams.update(items)
        total += len(items)
    return len(grams) / total if total else 0.0


def run_writer(name, writer, pairs, n, rules) -> dict:
    from reward.embeddings import embed

    prompts, seconds = [], 0.0
    if hasattr(writer, "attempts"):
        writer.attempts.clear()
    for cluster, info in pairs:
        started = time.perf_counter()
        written = writer.generate(info, cluster, n, seed=0)
        seconds += time.perf_counter() - started
        interests = embed([", ".join(cluster.interests)])[0]
        for prompt in written:
            prompts.append({"cluster": cluster.id, "category": info.category,
                            "text": prompt.text, "source": prompt.source,
                            "fallback": prompt.fallback,
                            "relevance": float(embed([prompt.text])[0] @ interests)})
    texts = [p["text"] for p in prompts]
    own = [p for p in prompts if p["source"] != "template" or name == "template"]
    row = {"writer": name, "pairs": len(pairs), "prompts": len(prompts),
           "model_written": len(own), "fallback_rate": 1 - len(own) / len(prompts),
           "final_violations": sum(bool(rules.violations(t)) for t in texts),
           "relevance": sum(p["relevance"] for p in prompts) / len(prompts),
           "relevance_model_written": (sum(p["relevance"] for p in own) / len(own)
                                       if own else None),
           "distinct_1": distinct(texts, 1), "distinct_2": distinct(texts, 2),
           "seconds_per_prompt": seconds / len(prompts), "examples": prompts[:6]}
    if hasattr(writer, "attempts"):
        groups = conversations(list(writer.attempts))
        raw = [t for a in writer.attempts for t in (json_answer(a["answer"]) or [])
               if isinstance(t, str)]
        row.update({
            "conversations": len(groups),
            "attempts": len(writer.attempts),
            "json_first_attempt": sum(json_answer(g[0]["answer"]) is not None
                                      for g in groups) / len(groups),
            "json_after_retries": sum(any(json_answer(a["answer"]) is not None for a in g)
                                      for g in groups) / len(groups),
            "raw_texts": len(raw),
            "raw_violations": sum(bool(rules.violations(" ".join(t.split()))) for t in raw),
        })
    else:
        row.update({"json_first_attempt": None, "json_after_retries": None,
                    "raw_violations": row["final_violations"], "raw_texts": len(texts)})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2, help="prompts per (cluster, category)")
    parser.add_argument("--pairs", type=int, default=None,
                        help="first N (cluster, category) pairs (default: all)")
    parser.add_argument("--free-pairs", type=int, default=4,
                        help="pairs for the free-form list (0: skip it)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "llm_prompts.json"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from studio.inputs.audience import Audience
    from studio.inputs.catalog import load_catalog
    from studio.inputs.guidelines import Guidelines
    from studio.inputs.tables import load_users
    from studio.prompts import LLMGenerator, TemplateGenerator, category_product

    audience = Audience().fit(load_users(ROOT / "assets" / "demo" / "users.csv"))
    categories = sorted(set(load_catalog(ROOT / "assets" / "demo" / "catalog.csv")["category"]))
    pairs = [(cluster, category_product(category)) for cluster in audience.clusters_
             for category in categories][: args.pairs]
    rules = Guidelines(banned_words=("cheap", "discount", "sale"), max_length=220)
    print(f"{len(audience.clusters_)} demo clusters × {len(categories)} categories: "
          f"{len(pairs)} pairs, {args.n} prompts each")

    template = TemplateGenerator(rules)
    template.generate(pairs[0][1], pairs[0][0], 1)  # warm the embedder
    started = time.perf_counter()
    llm = LLMGenerator(guidelines=rules, retries=2)
    load_seconds = time.perf_counter() - started
    print(f"bundled model loaded in {load_seconds:.1f} s ({llm.describe()})")
    rows = [run_writer("template", template, pairs, args.n, rules)]
    print("template done")
    rows.append(run_writer("llm", llm, pairs, args.n, rules))
    print("llm (structured answer) done")
    if args.free_pairs:
        free = LLMGenerator(guidelines=rules, retries=2, structured=False)
        rows.append(run_writer("llm-free", free, pairs[: args.free_pairs], args.n, rules))
        print("llm-free (one free-form list) done")

    def own(row):
        value = row["relevance_model_written"]
        return "—" if value is None else f"{value:.3f}"

    def pct(value):
        return "—" if value is None else f"{100 * value:.0f} %"

    header = ("writer", "pairs", "JSON 1st", "JSON after retries", "fallback",
              "raw violations", "final violations", "relevance (all / model's)", "distinct-1",
              "distinct-2",
              "s/prompt")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['writer']} | {r['pairs']} | {pct(r['json_first_attempt'])} | "
              f"{pct(r['json_after_retries'])} | {pct(r['fallback_rate'])} | "
              f"{r['raw_violations']}/{r['raw_texts']} | {r['final_violations']}/{r['prompts']} | "
              f"{r['relevance']:.3f} / {own(r)} | {r['distinct_1']:.3f} | {r['distinct_2']:.3f} | "
              f"{r['seconds_per_prompt']:.2f} |")
    result = {"n": args.n, "clusters": len(audience.clusters_), "categories": categories,
              "model": llm.describe(), "load_s": round(load_seconds, 1),
              "threads": args.threads, "writers": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {out}")
    summary = {r["writer"]: {k: (round(v, 4) if isinstance(v, float) else v)
                             for k, v in r.items() if k != "examples"} for r in rows}
    print(json.dumps({"load_s": round(load_seconds, 1), "writers": summary}))


if __name__ == "__main__":
    main()
