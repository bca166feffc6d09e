"""Stable Diffusion inpainting/outpainting through diffusers pipelines.

Any SD or SDXL inpainting checkpoint (model id or local folder) loads through
``AutoPipelineForInpainting``; with a ControlNet it becomes the ControlNet-inpaint
pipeline, and an LCM-LoRA plus ``LCMScheduler`` makes 4–8 steps usable on a CPU.
Pipelines are loaded once per process and cached by (model, ControlNet, LoRA, device,
dtype). The ``tiny`` engine is this same class over the locally built miniature model.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Sequence

import numpy as np

from .base import EngineUnavailableError, ProgressCallback, RenderCancelled

DEFAULT_MODEL_ID = "stable-diffusion-v1-5/stable-diffusion-inpainting"
DEFAULT_CONTROLNET_ID = "lllyasviel/control_v11p_sd15_canny"
DEFAULT_LCM_LORA_ID = "latent-consistency/lcm-lora-sdv1-5"
#: IP-Adapter: (repo or folder, subfolder, weight file); the image encoder is looked up in
#: ``<subfolder>/image_encoder``.
DEFAULT_IP_ADAPTER = ("h94/IP-Adapter", "models", "ip-adapter_sd15.safetensors")

#: Scheduler names accepted by ``scheduler=`` → diffusers class names.
SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lcm": "LCMScheduler",
}

class RenderedImages(list):
    """The images of one engine call, with the pipeline safety checker's flag per image
    (``nsfw_flags``; None when the pipeline has no safety checker, e.g. ``tiny``)."""

    def __init__(self, images, nsfw_flags: list[bool] | None):
        super().__init__(images)
        self.nsfw_flags = nsfw_flags


_PIPELINES: dict[tuple, object] = {}
_DEFAULT_SCHEDULERS: dict[int, object] = {}  # id(pipeline) -> the scheduler it loaded with
_LOCK = threading.Lock()


class DiffusionEngine:
    """Inpaint the masked area with a diffusers pipeline; one batched call per request."""

    def __init__(self, model_id: str = DEFAULT_MODEL_ID, *, name: str = "sd",
                 controlnet_id: str | None = None, lcm_lora_id: str | None = None,
                 scheduler: str | None = None, device: str | None = None,
                 local_files_only: bool = False, default_steps: int | None = None,
                 ip_adapter: tuple[str, str, str] | None = None, lora_id: str | None = None):
        if scheduler is not None and scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; choose one of: {', '.join(SCHEDULERS)}")
        if lcm_lora_id and scheduler not in (None, "lcm"):
            raise ValueError("LCM-LoRA needs the 'lcm' scheduler")
        self.name = name
        self.model_id = str(model_id)
        self.controlnet_id = str(controlnet_id) if controlnet_id else None
        self.lcm_lora_id = str(lcm_lora_id) if lcm_lora_id else None
        self.ip_adapter = tuple(map(str, ip_adapter)) if ip_adapter else None
        self.lora_id = str(lora_id) if lora_id else None
        self.scheduler = "lcm" if lcm_lora_id else scheduler
        self.device, self.dtype = _device_and_dtype(device)
        self.default_steps = default_steps or (6 if lcm_lora_id else 30)
        self.default_guidance = 1.5 if lcm_lora_id else 7.5
        self.pipe = load_pipeline(self.model_id, self.controlnet_id, self.lcm_lora_id,
                                  self.device, self.dtype, local_files_only, self.ip_adapter,
                                  self.lora_id)
        # Engines can share a cached pipeline; remember its own scheduler so an engine
        # without a scheduler choice gets it back after another engine swapped it.
        self._own_scheduler = _DEFAULT_SCHEDULERS[id(self.pipe)]

    def __call__(self, image: np.ndarray, mask: np.ndarray, prompt: str, *,
                 seeds: Sequence[int], negative_prompt: str = "", steps: int | None = None,
                 guidance: float | None = None, control_image: np.ndarray | None = None,
                 callback: ProgressCallback | None = None, ip_adapter_images=None,
                 ip_adapter_scale: float = 0.6) -> list[np.ndarray]:
        import torch
        from PIL import Image

        if ip_adapter_images is not None and self.ip_adapter is None:
            raise ValueError("this engine has no IP-Adapter: load it with ip_adapter=...")
        if self.controlnet_id and control_image is None:
            raise ValueError("this engine has a ControlNet: pass control_image")
        if not seeds:
            raise ValueError("seeds must not be empty")
        steps = steps or self.default_steps
        guidance = self.default_guidance if guidance is None else guidance
        h, w = mask.shape
        pad_h, pad_w = -h % 8, -w % 8  # the latent grid needs multiples of 8
        image, mask = _pad(image, pad_h, pad_w), _pad(mask, pad_h, pad_w, value=True)
        self._use_scheduler()

        kwargs = {}
        if self.ip_adapter is not None:
            # Without condition images the adapter must not act: scale 0 and a blank image.
            images = ip_adapter_images if ip_adapter_images else [np.zeros((h, w, 3), np.uint8)]
            self.pipe.set_ip_adapter_scale(ip_adapter_scale if ip_adapter_images else 0.0)
            kwargs["ip_adapter_image"] = [Image.fromarray(np.asarray(i)) for i in images] \
                if len(images) > 1 else Image.fromarray(np.asarray(images[0]))
        if control_image is not None:
            kwargs["control_image"] = Image.fromarray(_pad(control_image, pad_h, pad_w, value=0))
        if callback is not None:
            def on_step_end(pipe, step, timestep, tensors):
                if callback(step + 1, steps):
                    pipe._interrupt = True
                return tensors
            kwargs["callback_on_step_end"] = on_step_end
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        with torch.inference_mode():
            result = self.pipe(
                prompt=prompt,
                negative_prompt=negative_prompt or None,
                image=Image.fromarray(image),
                mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
                height=h + pad_h,
                width=w + pad_w,
                num_inference_steps=steps,
                guidance_scale=guidance,
                num_images_per_prompt=len(seeds),
                generator=generators,
                output_type="np",
                **kwargs,
            )
        if getattr(self.pipe, "_interrupt", False):
            raise RenderCancelled("rendering was cancelled")
        images = (np.asarray(result.images) * 255).round().astype(np.uint8)
        flags = getattr(result, "nsfw_content_detected", None)  # SDXL outputs have none
        return RenderedImages([np.ascontiguousarray(im[:h, :w]) for im in images],
                              [bool(f) for f in flags] if flags is not None else None)

    def describe(self) -> dict:
        return {
            "engine": self.name,
            "model_id": self.model_id,
            "pipeline": type(self.pipe).__name__,
            "scheduler": (SCHEDULERS[self.scheduler] if self.scheduler
                          else type(self._own_scheduler).__name__),
            "controlnet_id": self.controlnet_id,
            "lora": self.lcm_lora_id,
            "style_lora": self.lora_id,
            "ip_adapter": list(self.ip_adapter) if self.ip_adapter else None,
            "device": self.device,
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    def _use_scheduler(self) -> None:
        """Set the shared pipeline's scheduler to this engine's choice (cheap)."""
        if self.scheduler is None:
            self.pipe.scheduler = self._own_scheduler
            return
        import diffusers

        cls = getattr(diffusers, SCHEDULERS[self.scheduler])
        if type(self.pipe.scheduler) is not cls:
            self.pipe.scheduler = cls.from_config(self._own_scheduler.config)


def load_pipeline(model_id: str, controlnet_id: str | None, lcm_lora_id: str | None,
                  device: str, dtype, local_files_only: bool = False,
                  ip_adapter: tuple[str, str, str] | None = None, lora_id: str | None = None):
    """Load (once per process) an inpainting pipeline; raise EngineUnavailableError with
    a one-line reason when the weights cannot be loaded. ``lora_id`` is a LoRA (e.g. from
    ``pipelines.finetune``), fused into the UNet."""
    key = (model_id, controlnet_id, lcm_lora_id, device, str(dtype), ip_adapter, lora_id)
    with _LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key]
        quiet_libraries()
        from diffusers import AutoPipelineForInpainting, ControlNetModel

        try:
            extra = {}
            if controlnet_id:
                extra["controlnet"] = ControlNetModel.from_pretrained(
                    controlnet_id, dtype=dtype, local_files_only=local_files_only)
            pipe = AutoPipelineForInpainting.from_pretrained(
                model_id, dtype=dtype, local_files_only=local_files_only, **extra)
            if lora_id:
                pipe.load_lora_weights(lora_id, adapter_name="style",
                                       local_files_only=local_files_only)
                pipe.fuse_lora()
                pipe.unload_lora_weights()
            if lcm_lora_id:
                from diffusers import LCMScheduler

                pipe.load_lora_weights(lcm_lora_id, local_files_only=local_files_only)
                pipe.fuse_lora()
                pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
            if ip_adapter:
                repo, subfolder, weight = ip_adapter
                pipe.load_ip_adapter(repo, subfolder=subfolder, weight_name=weight,
                                     local_files_only=local_files_only)
        except (OSError, ValueError, EnvironmentError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineUnavailableError(f"cannot load {model_id!r}: {first_line}") from None
        pipe.set_progress_bar_config(disable=True)
        pipe.to(device)
        _PIPELINES[key] = pipe
        _DEFAULT_SCHEDULERS[id(pipe)] = pipe.scheduler
        return pipe


def weights_available_locally(model_id: str) -> bool:
    """True when ``model_id`` is a local pipeline folder or is in the hub cache.

    Cheap: it does not import diffusers or touch the network.
    """
    if os.path.isdir(model_id):
        return os.path.isfile(os.path.join(model_id, "model_index.json"))
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model_id, "model_index.json"), str)


def hub_reachable(model_id: str, timeout: float = 3.0) -> tuple[bool, str]:
    """Ask the hub about ``model_id`` with a short timeout; (reachable, reason)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False, "HF_HUB_OFFLINE is set"
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(model_id, timeout=timeout)
    except Exception as exc:  # any failure means: do not try to download now
        return False, f"the model hub cannot be reached ({_plain(exc)})"
    return True, ""


def _plain(exc: Exception) -> str:
    """A network error in words: the exception's class and its first line, without the
    ``[Errno -2]``-style codes of the socket layer."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r"\s+", " ", text).strip(" :")
    return f"{type(exc).__name__}: {text[:100]}" if text else type(exc).__name__


def _device_and_dtype(device: str | None):
    import torch

    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    return device, dtype


def _pad(array: np.ndarray, pad_h: int, pad_w: int, value=None) -> np.ndarray:
    if not (pad_h or pad_w):
        return array
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (array.ndim - 2)
    if value is None:
        return np.pad(array, widths, mode="edge")
    return np.pad(array, widths, mode="constant", constant_values=value)


def quiet_libraries() -> None:
    """diffusers/transformers print load progress and backend notices per component;
    the studio shows its own progress instead."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
