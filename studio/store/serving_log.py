"""Repository methods of the serving log: decisions (events), rewards, bandit snapshots,
and what the selection service and the API read to start and to report."""

from __future__ import annotations


class ServingLog:
    """Serving-log methods of ``Store`` (they use its ``transaction`` and ``query``)."""
