"""Repository methods of the creative pools: audience and clusters, products, prompts,
creatives with their scores, arms, and the evolution rounds."""

from __future__ import annotations


class Pools:
    """Pool methods of ``Store`` (they use its ``transaction`` and ``query``)."""
