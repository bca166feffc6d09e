"""Render engines and how a name (``auto``, ``sd``, ``tiny``, ``backdrop``) becomes one."""

from __future__ import annotations

from pathlib import Path

from .backdrop import BackdropEngine
from .base import Engine, EngineUnavailableError, ProgressCallback, RenderCancelled
from .diffusion import (
    DEFAULT_CONTROLNET_ID,
    DEFAULT_IP_ADAPTER,
    DEFAULT_LCM_LORA_ID,
    DEFAULT_MODEL_ID,
    SCHEDULERS,
    DiffusionEngine,
    hub_reachable,
    weights_available_locally,
)
from .tiny import ensure_tiny_model

ENGINE_NAMES = ("auto", "sd", "tiny", "backdrop")

#: Said at the top of every result of ``auto`` when it fell back to procedural backgrounds.
PREVIEW_NOTICE = ("Preview: no diffusion weights on this machine — backgrounds are procedural. "
                  "Point --model at an SD/SDXL inpainting checkpoint for photographic scenes.")
#: Said at the top of every result of an engine chosen by name that is not photographic.
ENGINE_PREVIEWS = {
    "backdrop": ("Preview: backgrounds are procedural (the backdrop engine). Use the sd engine "
                 "with an SD/SDXL inpainting checkpoint for photographic scenes."),
    "tiny": ("Test model: the tiny engine has random weights and draws noise. Use the sd "
             "engine for real creatives."),
}

__all__ = [
    "ENGINE_NAMES", "SCHEDULERS", "DEFAULT_MODEL_ID", "DEFAULT_CONTROLNET_ID",
    "DEFAULT_LCM_LORA_ID", "BackdropEngine", "DiffusionEngine", "Engine",
    "EngineUnavailableError", "ProgressCallback", "RenderCancelled", "load_engine",
    "ensure_tiny_model", "PREVIEW_NOTICE", "ENGINE_PREVIEWS", "preview_notice",
]


def preview_notice(engine: Engine, fallback_notice: str | None = None) -> str | None:
    """The plain-words notice a result of ``engine`` must carry at its top, or None for a
    photographic engine: the fallback notice of ``auto`` when there was one, else the
    notice of a non-photographic engine chosen by name."""
    return fallback_notice or ENGINE_PREVIEWS.get(engine.name)



def load_engine(name: str = "auto", *, model_id: str = DEFAULT_MODEL_ID,
                controlnet: bool = False, controlnet_id: str = DEFAULT_CONTROLNET_ID,
                lcm: bool = False, lcm_lora_id: str = DEFAULT_LCM_LORA_ID,
                scheduler: str | None = None, device: str | None = None,
                cache_dir: Path | None = None, ip_adapter: bool = False,
                lora_id: str | None = None,
                ip_adapter_spec: tuple[str, str, str] = DEFAULT_IP_ADAPTER
                ) -> tuple[Engine, str | None]:
    """Return (engine, notice). ``notice`` is :data:`PREVIEW_NOTICE` followed by the
    reason in brackets when ``auto`` had to fall back to ``backdrop``; otherwise None.

    ``auto`` uses ``sd`` when its weights are in the local cache (or a local folder) or
    the hub answers; otherwise ``backdrop``. It never hangs: the hub is asked with a
    short timeout, and nothing heavy is imported unless weights exist.
    """
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINE_NAMES)}")
    if name == "backdrop":
        return BackdropEngine(), None
    if name == "tiny":
        paths = ensure_tiny_model(cache_dir)
        engine = DiffusionEngine(
            paths.pipeline, name="tiny", default_steps=4, scheduler=scheduler, device=device,
            controlnet_id=paths.controlnet if controlnet else None,
            lcm_lora_id=paths.lcm_lora if lcm else None,
            ip_adapter=(str(paths.ip_adapter), "", "ip_adapter.safetensors") if ip_adapter else None,
            lora_id=lora_id,
        )
        return engine, None

    options = dict(
        controlnet_id=controlnet_id if controlnet else None,
        lcm_lora_id=lcm_lora_id if lcm else None,
        scheduler=scheduler, device=device,
        ip_adapter=ip_adapter_spec if ip_adapter else None,
        lora_id=lora_id,
    )
    if name == "sd":
        return DiffusionEngine(model_id, **options), None

    if weights_available_locally(model_id):
        try:
            return DiffusionEngine(model_id, local_files_only=True, **options), None
        except EngineUnavailableError as exc:
            return BackdropEngine(), _fallback(f"the local weights did not load: {exc}")
    reachable, reason = hub_reachable(model_id)
    if not reachable:
        return BackdropEngine(), _fallback(f"no local weights for {model_id}, and {reason}")
    try:
        return DiffusionEngine(model_id, **options), None
    except EngineUnavailableError as exc:
        return BackdropEngine(), _fallback(str(exc))


def _fallback(reason: str) -> str:
    return f"{PREVIEW_NOTICE} (Why: {reason}.)"
