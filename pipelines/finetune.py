"""LoRA fine-tuning of an inpainting UNet on a set of (image, prompt) pairs.

CG4CTR fine-tunes its generator on the creatives the reward model ranks highest. This
trains a LoRA (peft) on the UNet of any diffusers inpainting checkpoint with the standard
noise-prediction loss; the inpainting UNet is given a full mask and an empty masked image
(its "generate everything" condition). The result is saved in diffusers' LoRA format and
loads with ``load_engine(..., lora_id=folder)``. Real runs need a GPU and real weights; on
a CPU the tiny model proves the code path in a few steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import InputError


def finetune_lora(model_id: str, images: Sequence[np.ndarray], prompts: Sequence[str],
                  out_dir: Path, *, steps: int = 200, rank: int = 4, learning_rate: float = 1e-4,
                  resolution: int = 512, batch_size: int = 1, seed: int = 0,
                  device: str | None = None,
                  progress: Callable[[int, int, float], None] | None = None) -> Path:
    """Train a LoRA for ``steps`` optimiser steps; return the folder it was saved in."""
    import torch
    import torch.nn.functional as F
    from diffusers import AutoPipelineForInpainting, DDPMScheduler
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from PIL import Image

    from .engines.diffusion import quiet_libraries

    if not images or len(images) != len(prompts):
        raise InputError("fine-tuning needs as many prompts as images, and at least one")
    if steps < 1 or rank < 1 or not learning_rate > 0:
        raise InputError("steps and rank must be >= 1 and the learning rate > 0")
    if resolution % 8:
        raise InputError(f"resolution {resolution} is not a multiple of 8")
    quiet_libraries()
    torch.manual_seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        pipe = AutoPipelineForInpainting.from_pretrained(model_id)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load {model_id!r}: {str(exc).splitlines()[0]}") from None
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.to(device)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    parameters = [p for p in unet.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, lr=learning_rate)

    pixels = torch.stack([
        torch.from_numpy(np.asarray(Image.fromarray(np.asarray(i)).convert("RGB").resize(
            (resolution, resolution), Image.Resampling.BICUBIC), np.float32) / 127.5 - 1.0)
        .permute(2, 0, 1) for i in images]).to(device)
    with torch.no_grad():
        latents_all = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
        tokens = tokenizer(list(prompts), padding="max_length", truncation=True,
                           max_length=tokenizer.model_max_length, return_tensors="pt")
        text_all = text_encoder(tokens.input_ids.to(device))[0]
    generator = torch.Generator().manual_seed(seed)
    unet.train()
    for step in range(steps):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        latents, text = latents_all[index], text_all[index]
        noise = torch.randn(latents.shape, generator=generator).to(device)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch_size,),
                                  generator=generator).to(device)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        full_mask = torch.ones_like(latents[:, :1])
        empty_image = torch.zeros_like(latents)
        prediction = unet(torch.cat([noisy, full_mask, empty_image], dim=1), timesteps,
                          encoder_hidden_states=text).sample
        loss = F.mse_loss(prediction.float(), noise.float())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if progress is not None:
            progress(step + 1, steps, float(loss))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(out_dir, unet_lora_layers=get_peft_model_state_dict(unet),
                                 safe_serialization=True)
    return out_dir
