"""Prompt generators: scene prompts written for a product and an audience cluster.

One interface, ``generate(product, cluster, n, seed) -> list[Prompt]``, three writers,
picked by name with ``make_generator``:

- ``template`` (``template.py``, the embedded default: offline, deterministic per seed)
  composes the vocabularies of ``vocabulary.py`` (which also defines ``Prompt``);
- ``llm``: any transformers causal LM (model id or local folder) through its chat
  template, and ``openai``: any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM,
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
from .messages import SYSTEM_PROMPT, build_messages, clean_text, parse_prompts
from .template import TemplateGenerator
from .vocabulary import SLOTS, Prompt, Vocabulary, category_product, load_vocabulary

__all__ = ["GENERATORS", "SLOTS", "SYSTEM_PROMPT", "LLMGenerator", "OpenAIGenerator", "Prompt",
           "TemplateGenerator", "Vocabulary", "build_messages", "category_product", "clean_text",
           "load_vocabulary", "make_generator", "parse_prompts"]
__all__ += ["CTA_MAX", "HEADLINE_MAX", "AdCopy", "LanguageModelCopyWriter", "TemplateCopyWriter",
            "make_copy_writer", "parse_copy"]

GENERATORS = ("template", "llm", "openai")


def make_generator(name: str, *, guidelines: Guidelines | None = None, model: str | None = None,
                   base_url: str | None = None, **options):
    """A generator by name: ``template``, ``llm`` (needs ``model``) or ``openai`` (needs
    ``base_url`` and ``model``)."""
    if name == "template":
        return TemplateGenerator(guidelines, **options)
    if name == "llm":
        if not model:
            raise StudioError("the llm generator needs a model id or folder (--model)")
        return LLMGenerator(model, guidelines=guidelines, **options)
    if name == "openai":
        if not (base_url and model):
            raise StudioError("the openai generator needs --base-url and --model")
        return OpenAIGenerator(base_url, model, guidelines=guidelines, **options)
    raise StudioError(f"unknown generator {name!r}; choose one of: {', '.join(GENERATORS)}")
