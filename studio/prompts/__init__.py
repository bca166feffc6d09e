"""Prompt generators: scene prompts written for a product and an audience cluster.

One interface, ``generate(product, cluster, n, seed) -> list[Prompt]``, three writers,
picked by name with ``make_generator``:

- ``template`` (``template.py``, the embedded default: offline, deterministic per seed)
  composes the vocabularies of ``vocabulary.py`` (which also defines ``Prompt``);
- ``llm``: a transformers causal LM through its chat template — the bundled
  SmolLM2-135M-Instruct when no model is named (``local_model.py``), a GGUF file, a
  model id or a local folder — and ``openai``: any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM,
  llama.cpp server) through httpx (both ``language.py``). What they are told and how
  their answers are checked is ``messages.py``.

The public names of these modules are re-exported here (``from studio.prompts import
TemplateGenerator``).
"""

from __future__ import annotations

from ..errors import StudioError
from ..inputs.guidelines import Guidelines
from .copy import (CTA_MAX, HEADLINE_MAX, AdCopy, LanguageModelCopyWriter, TemplateCopyWriter,
                   make_copy_writer, parse_copy)
from .language import LLMGenerator, OpenAIGenerator
from .local_model import bundled_model_file, resolve_model
from .messages import SYSTEM_PROMPT, build_messages, clean_text, parse_prompts
from .template import TemplateGenerator
from .vocabulary import SLOTS, Prompt, Vocabulary, category_product, load_vocabulary

__all__ = ["GENERATORS", "SLOTS", "SYSTEM_PROMPT", "LLMGenerator", "OpenAIGenerator", "Prompt",
           "TemplateGenerator", "Vocabulary", "build_messages", "category_product", "clean_text",
           "bundled_model_file", "load_vocabulary", "make_generator", "parse_prompts",
           "resolve_model"]
__all__ += ["CTA_MAX", "HEADLINE_MAX", "AdCopy", "LanguageModelCopyWriter", "TemplateCopyWriter",
            "make_copy_writer", "parse_copy"]

GENERATORS = ("template", "llm", "openai")


def make_generator(name: str, *, guidelines: Guidelines | None = None, model: str | None = None,
                   base_url: str | None = None, **options):
    """A generator by name: ``template``, ``llm`` (``model``: an id, a folder or a GGUF
    file; None: the bundled SmolLM2-135M-Instruct) or ``openai`` (needs ``base_url``
    and ``model``)."""
    if name == "template":
        return TemplateGenerator(guidelines, **options)
    if name == "llm":
        return LLMGenerator(model or None, guidelines=guidelines, **options)
    if name == "openai":
        if not (base_url and model):
            raise StudioError("the openai generator needs --base-url and --model")
        return OpenAIGenerator(base_url, model, guidelines=guidelines, **options)
    raise StudioError(f"unknown generator {name!r}; choose one of: {', '.join(GENERATORS)}")
