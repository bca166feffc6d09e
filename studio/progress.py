"""Progress bars for long work (tqdm on stderr, hidden when stderr is not a terminal
unless ``STUDIO_PROGRESS=1``)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from tqdm.auto import tqdm


def _enabled() -> bool:
    return os.environ.get("STUDIO_PROGRESS") == "1" or sys.stderr.isatty()


@contextmanager
def step_progress(description: str) -> Iterator:
    """Yield an engine callback ``(step, total)`` that drives one progress bar."""
    bar = tqdm(desc=description, unit="step", disable=not _enabled(), leave=False)

    def callback(step: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.n = step
        bar.refresh()

    try:
        yield callback
    finally:
        bar.close()


def item_progress(items, description: str, unit: str = "item"):
    """Wrap an iterable in a progress bar with an ETA."""
    return tqdm(items, desc=description, unit=unit, disable=not _enabled())
