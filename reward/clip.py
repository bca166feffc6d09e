"""Optional CLIP image embeddings for the reward model (a model id or local folder).

When a CLIP checkpoint is configured, each creative's image embedding (unit length) joins
the prompt embedding in the model's semantic block. Loaded once per process.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from .errors import RewardError


class ClipImageEmbedder:
    """Embed RGB uint8 images with a transformers CLIP model."""

    def __init__(self, model_id: str, *, device: str = "cpu", batch_size: int = 32):
        self.model_id = str(model_id)
        self.device = device
        self.batch_size = batch_size
        self.processor, self.model = _load(self.model_id, device)

    def __call__(self, images) -> np.ndarray:
        import torch
        from PIL import Image

        images = [Image.fromarray(np.asarray(i)) for i in images]
        if not images:
            raise RewardError("no images to embed")
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = self.processor(images=images[start:start + self.batch_size],
                                   return_tensors="pt")
            with torch.inference_mode():
                features = self.model.get_image_features(
                    pixel_values=batch["pixel_values"].to(self.device))
            if not isinstance(features, torch.Tensor):  # some versions return an output object
                features = features.pooler_output
            out.append(torch.nn.functional.normalize(features, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float64)


@lru_cache(maxsize=2)
def _load(model_id: str, device: str):
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import CLIPImageProcessor, CLIPModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    try:
        processor = CLIPImageProcessor.from_pretrained(model_id)
        model = CLIPModel.from_pretrained(model_id).to(device).eval()
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RewardError(f"cannot load CLIP model {model_id!r}: {first}") from None
    return processor, model
