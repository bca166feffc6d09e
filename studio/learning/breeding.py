"""New candidate prompts for a pool, from what its audience clicked.

A template prompt is five vocabulary entries (``SLOTS``: surface, scene, lighting,
palette, style), kept in its ``tags``. Three ways to write the next round's candidates:

- ``inherit``: each child takes every slot from one of the winners (the better a winner,
  the likelier), and each slot mutates — is replaced by another entry of the category's
  vocabulary — with probability ``mutation``, so the pool keeps the concepts that earned
  clicks and still tries new ones. The reward model then chooses among the children.
- ``recombine``: every mix of the two best winners' slots (the rule before).
- ``fresh``: new template prompts for the cluster, ignoring the clicks.

Winners without slot tags (a prompt written by a language model or by hand) cannot be
bred: their pool gets fresh template prompts. Children carry their slots, their parents
and what mutated in their tags, so they can be parents in turn. Every text goes through
the brand guidelines; one that breaks them, or that the store already has, is skipped.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..inputs.guidelines import Guidelines
from ..prompts import SLOTS, TemplateGenerator, category_product, load_vocabulary

BREEDING = ("inherit", "recombine", "fresh")


def breed(category: str, cluster, winners: list[tuple[str, dict]], existing: set[str], n: int,
          rules: Guidelines, *, how: str = "inherit", mutation: float = 0.25,
          seed: int = 0) -> list[tuple[str, dict]]:
    """Up to ``n`` new (text, tags) candidates for the pool of ``category`` and ``cluster``
    (a ``Cluster``); ``winners``: (arm id, tags) best first."""
    if how not in BREEDING:
        raise ValueError(f"breeding must be one of {', '.join(BREEDING)}, got {how!r}")
    parents = [(arm, tags) for arm, tags in winners if all(s in tags for s in SLOTS)]
    rng = np.random.default_rng(seed)
    out: list[tuple[str, dict]] = []
    seen = set(existing)

    def offer(slots: dict, tags: dict) -> None:
        text = _text(category, slots, rules)
        if text not in seen and not rules.violations(text):
            seen.add(text)
            out.append((text, {**slots, **tags}))

    if how == "recombine" and len(parents) >= 2:
        (a, first), (b, second) = parents[:2]
        combos = list(itertools.product(*[(first[s], second[s]) for s in SLOTS]))
        for i in rng.permutation(len(combos)):
            offer(dict(zip(SLOTS, combos[i])), {"parents": [a, b], "mutated": []})
            if len(out) == n:
                break
    elif how == "inherit" and parents:
        vocabulary = load_vocabulary(category).entries
        allowed = {s: [e["text"] for e in vocabulary[s] if rules.allows(e["text"])] or
                   [parents[0][1][s]] for s in SLOTS}
        weights = 1.0 / np.arange(1, len(parents) + 1)
        weights /= weights.sum()
        for _ in range(30 * n):
            slots, used, mutated = {}, set(), []
            for s in SLOTS:
                if rng.random() < mutation:
                    slots[s] = allowed[s][int(rng.integers(len(allowed[s])))]
                    mutated.append(s)
                else:
                    k = int(rng.choice(len(parents), p=weights))
                    slots[s] = parents[k][1][s]
                    used.add(parents[k][0])
            offer(slots, {"parents": sorted(used), "mutated": mutated})
            if len(out) == n:
                break
    if len(out) < n:  # nothing to breed from, or too few new children: fresh prompts
        generator = TemplateGenerator(rules)
        for prompt in generator.generate(category_product(category), cluster,
                                         min(50, n - len(out) + 3), seed=seed):
            slots = {s: prompt.tags[s] for s in SLOTS if s in prompt.tags}
            if prompt.text not in seen and len(out) < n:
                seen.add(prompt.text)
                out.append((prompt.text, {**slots, "parents": [], "mutated": []}))
    return out[:n]


def _text(category: str, slots: dict, rules: Guidelines) -> str:
    """A prompt from its slots, written as the template writer writes it."""
    subject = load_vocabulary(category).subject.format(title=category_product(category).label)
    palette = " and ".join(rules.palette) + " palette" if rules.palette else slots["palette"]
    return rules.enforce(f"{subject} {slots['surface']}, {slots['scene']}, {slots['lighting']}, "
                         f"{palette}, {slots['style']}")
