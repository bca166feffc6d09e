"""The one small interface every render engine implements.

An engine fills the masked part of a canvas from a prompt. It knows nothing of products,
placement or compositing: the caller passes the canvas (with the placed layer), a mask
of where to generate, and one seed per image; it gets back one full image per seed and
pastes the product back itself.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

#: Progress callback: (step done, total steps) -> True to cancel the run.
ProgressCallback = Callable[[int, int], "bool | None"]


class EngineUnavailableError(RuntimeError):
    """The engine cannot run here (no weights, no accelerator it needs, ...)."""


class RenderCancelled(RuntimeError):
    """A progress callback asked to stop the run."""


class Engine(Protocol):
    """A render engine. ``name`` is ``sd``, ``tiny`` or ``backdrop``."""

    name: str
    default_steps: int
    default_guidance: float

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        prompt: str,
        *,
        seeds: Sequence[int],
        negative_prompt: str = "",
        steps: int | None = None,
        guidance: float | None = None,
        control_image: np.ndarray | None = None,
        callback: ProgressCallback | None = None,
        ip_adapter_images: list | None = None,
        ip_adapter_scale: float = 0.6,
    ) -> list[np.ndarray]:
        """Return one HxWx3 uint8 image per seed; ``mask`` is True where to generate.
        ``ip_adapter_images`` condition an engine loaded with an IP-Adapter."""
        ...

    def describe(self) -> dict:
        """What the manifest records about the engine (ids, scheduler, device...)."""
        ...
