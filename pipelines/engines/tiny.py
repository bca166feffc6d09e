"""A miniature, randomly initialised Stable Diffusion inpainting model built offline.

The `tiny` engine exists so that every diffusion code path (loading with
``from_pretrained``, ControlNet, LoRA loading, batching, seeding, callbacks) runs in
tests and on machines without weights or network. It keeps SD-1.5's geometry
(9-channel inpainting UNet, a VAE with downscale factor 8, a CLIP text encoder and a
CLIP BPE tokenizer), only much narrower. Its images are noise-like; only the code path
is real.

The model is built once, saved to a cache folder and then loaded exactly as a real
checkpoint is (``AutoPipelineForInpainting.from_pretrained(folder)``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Bump when the architecture below changes, so stale caches are rebuilt.
TINY_VERSION = "tiny-sd-inpaint-v3"

_CROSS_DIM = 32
_UNET_BLOCKS = dict(
    block_out_channels=(32, 64),
    layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=_CROSS_DIM,
    attention_head_dim=8,
    sample_size=64,
)


@dataclass(frozen=True)
class TinyModelPaths:
    """Folders of the built tiny model, each loadable with ``from_pretrained``."""

    pipeline: Path
    controlnet: Path
    lcm_lora: Path
    ip_adapter: Path  # ip_adapter.safetensors + image_encoder/


def default_cache_dir() -> Path:
    """Where built models live: ``$STUDIO_CACHE`` or ``~/.cache/creative-studio``."""
    root = os.environ.get("STUDIO_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "creative-studio"


def ensure_tiny_model(cache_dir: Path | None = None) -> TinyModelPaths:
    """Build the tiny model into ``cache_dir`` unless a complete copy is already there.

    The build goes to a temporary folder that is renamed into place, so a killed build
    never leaves a half-written model behind.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / TINY_VERSION
    paths = TinyModelPaths(target / "pipeline", target / "controlnet", target / "lcm-lora",
                           target / "ip-adapter")
    if (target / "COMPLETE").exists():
        return paths
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{TINY_VERSION}-", dir=root))
    try:
        _build(staging)
        (staging / "COMPLETE").write_text("ok\n")
        try:
            os.replace(staging, target)
        except OSError:
            # Another process finished first (the target exists and is not empty).
            if not (target / "COMPLETE").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def _build(folder: Path) -> None:
    from .diffusion import quiet_libraries

    quiet_libraries()
    import torch
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    tokenizer_dir = folder / "tokenizer-src"
    _write_byte_level_clip_vocab(tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, model_max_length=77)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=_CROSS_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(in_channels=9, out_channels=4, **_UNET_BLOCKS)
    vae = AutoencoderKL(
        block_out_channels=(32, 32, 64, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        sample_size=64,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder / "pipeline")
    shutil.rmtree(tokenizer_dir)

    # ControlNet must be built from a 4-channel UNet config: from_unet() on the
    # 9-channel inpainting UNet fails at run time.
    controlnet = ControlNetModel(
        in_channels=4,
        conditioning_embedding_out_channels=(8, 8, 16, 16),
        **{k: v for k, v in _UNET_BLOCKS.items() if k not in ("up_block_types", "sample_size")},
    )
    # A fresh ControlNet's output convolutions are zero (so it changes nothing); give
    # them random weights so that the control image really steers the tiny model.
    with torch.no_grad():
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.weight.normal_(0.0, 0.2)
    controlnet.save_pretrained(folder / "controlnet")

    _build_ip_adapter(unet, folder / "ip-adapter")

    # A random LoRA in diffusers' format stands in for LCM-LoRA (non-zero B so it
    # really changes the UNet when loaded).
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                   target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    lora_state = get_peft_model_state_dict(unet)
    StableDiffusionInpaintPipeline.save_lora_weights(
        folder / "lcm-lora", unet_lora_layers=lora_state, safe_serialization=True
    )


def _build_ip_adapter(unet, folder: Path) -> None:
    """A random IP-Adapter in the original format (image projection + per cross-attention
    to_k_ip/to_v_ip, keyed 1, 3, 5... in attention-processor order, as diffusers reads
    it) and a tiny CLIP vision encoder with projection."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder.mkdir(parents=True)
    CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8, projection_dim=16)).save_pretrained(folder / "image_encoder")
    cross = unet.config.cross_attention_dim
    state = {"image_proj.proj.weight": torch.randn(cross * 4, 16) * 0.1,
             "image_proj.proj.bias": torch.zeros(cross * 4),
             "image_proj.norm.weight": torch.ones(cross), "image_proj.norm.bias": torch.zeros(cross)}
    channels = unet.config.block_out_channels
    key = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        state[f"ip_adapter.{key}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.1
        state[f"ip_adapter.{key}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.1
        key += 2
    save_file(state, folder / "ip_adapter.safetensors")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def _write_byte_level_clip_vocab(folder: Path) -> None:
    """A CLIP BPE vocabulary over single bytes plus a few merges, made offline."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("o", "n</w>"), ("i", "n")]
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n")
