"""The ``template`` prompt writer (the embedded default: offline, deterministic per seed).

The cluster's interests are matched to every vocabulary entry with the MiniLM embedder;
combinations are sampled in proportion to their relevance and the ``n`` most relevant
*and* mutually different ones are kept (maximal marginal relevance), so no two prompts
are near-duplicates.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..errors import StudioError
from ..inputs.catalog import ProductInfo
from ..inputs.clusters import Cluster
from ..inputs.guidelines import DEFAULT_NEGATIVE_PROMPT, Guidelines
from .vocabulary import SLOTS, Prompt, check_n, load_vocabulary


class TemplateGenerator:
    """Compose prompts from the vocabulary, matched to the cluster's interests.

    ``temperature`` sets how strongly sampling favours the most relevant entries;
    ``diversity`` (0..1) is the MMR trade-off (1 = relevance only).
    """

    name = "template"

    def __init__(self, guidelines: Guidelines | None = None, *, vocabulary_dir: Path | None = None,
                 temperature: float = 0.05, diversity: float = 0.6):
        if not temperature > 0:
            raise StudioError(f"temperature must be > 0, got {temperature}")
        if not 0 <= diversity <= 1:
            raise StudioError(f"diversity must be in [0, 1], got {diversity}")
        self.guidelines = guidelines or Guidelines()
        self.vocabulary_dir = vocabulary_dir
        self.temperature = temperature
        self.diversity = diversity

    def generate(self, product: ProductInfo, cluster: Cluster, n: int, seed: int = 0) -> list[Prompt]:
        from reward.embeddings import embed

        check_n(n)
        vocabulary = load_vocabulary(product.category, self.vocabulary_dir)
        entries = {slot: [e for e in items if self.guidelines.allows(e["text"])]
                   for slot, items in vocabulary.entries.items()}
        for slot, items in entries.items():
            if not items:
                raise StudioError(f"the guidelines ban every {slot} of the vocabulary")
        query = _cluster_query(cluster)
        weights = np.array([s for _, s in cluster.top_interests] or [1.0], dtype=np.float32)
        target = (embed(query) * weights[: len(query), None]).sum(axis=0)
        target /= np.linalg.norm(target) or 1.0
        vectors = {slot: embed([f"{e['text']}. {e.get('keywords', '')}" for e in items])
                   for slot, items in entries.items()}
        relevance = {slot: vectors[slot] @ target for slot in entries}

        rng = np.random.default_rng([seed, cluster.id, _stable(product.category + product.label)])
        candidates: dict[tuple, float] = {}
        for _ in range(max(40, 8 * n)):
            pick = []
            for slot in SLOTS:
                logits = relevance[slot] / self.temperature
                p = np.exp(logits - logits.max())
                pick.append(int(rng.choice(len(p), p=p / p.sum())))
            combo = tuple(pick)
            candidates[combo] = float(np.mean([relevance[s][i] for s, i in zip(SLOTS, combo)]))
        chosen = _mmr(candidates, vectors, n, self.diversity)
        subject = vocabulary.subject.format(title=product.label)
        prompts = []
        for combo in chosen:
            picked = {slot: entries[slot][i]["text"] for slot, i in zip(SLOTS, combo)}
            palette = picked["palette"]
            if self.guidelines.palette:
                palette = " and ".join(self.guidelines.palette) + " palette"
            text = f"{subject} {picked['surface']}, {picked['scene']}, {picked['lighting']}, " \
                   f"{palette}, {picked['style']}"
            prompts.append(Prompt(
                text=self.guidelines.enforce(text),
                negative_prompt=self.guidelines.negative_prompt(DEFAULT_NEGATIVE_PROMPT),
                tags={**picked, "palette": palette, "interests": cluster.interests[:5]},
                source=self.name, cluster_id=cluster.id))
        return prompts


def _cluster_query(cluster: Cluster) -> list[str]:
    return cluster.interests or [cluster.profile or "everyday lifestyle"]


def _mmr(candidates: dict[tuple, float], vectors: dict, n: int, diversity: float) -> list[tuple]:
    """Maximal marginal relevance over candidate combinations."""
    combos = list(candidates)
    if len(combos) <= n:
        return combos
    embedded = np.stack([
        np.sum([vectors[s][i] for s, i in zip(SLOTS, combo)], axis=0) for combo in combos])
    embedded /= np.linalg.norm(embedded, axis=1, keepdims=True)
    relevance = np.array([candidates[c] for c in combos])
    similarity = embedded @ embedded.T
    chosen = [int(relevance.argmax())]
    while len(chosen) < n:
        redundancy = similarity[:, chosen].max(axis=1)
        score = diversity * relevance - (1 - diversity) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(score.argmax()))
    return [combos[i] for i in chosen]


def _stable(text: str) -> int:
    return zlib.crc32(text.encode())
