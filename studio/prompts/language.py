"""The language-model prompt writers: ``llm`` (a local transformers causal LM) and
``openai`` (any OpenAI-compatible chat endpoint).

Both ask for JSON (``messages``); after ``retries`` failed attempts they fall back to
the template writer and say why (``Prompt.fallback``, and a logged warning).
"""

from __future__ import annotations

import logging
import os
import re
import time
from functools import lru_cache
from typing import Callable

from ..errors import StudioError
from ..inputs.catalog import ProductInfo
from ..inputs.clusters import Cluster
from ..inputs.guidelines import DEFAULT_NEGATIVE_PROMPT, Guidelines
from .messages import build_messages, parse_prompts
from .template import TemplateGenerator
from .vocabulary import Prompt, check_n

log = logging.getLogger(__name__)


class _LanguageModelGenerator:
    """Shared retry / validate / fall back logic of the ``llm`` and ``openai`` writers."""

    name = "language-model"

    def __init__(self, guidelines: Guidelines | None, retries: int,
                 fallback: TemplateGenerator | None, backoff: float = 0.0):
        if retries < 0:
            raise StudioError(f"retries must be >= 0, got {retries}")
        self.guidelines = guidelines or Guidelines()
        self.retries = retries
        self.backoff = backoff
        self.fallback = fallback or TemplateGenerator(self.guidelines)

    def collect(self, messages: list[dict], n: int, parse: Callable[[str, int], tuple],
                seed: int = 0) -> tuple[list, str | None]:
        """Ask up to ``retries + 1`` times (with back-off) until ``parse(answer, n)`` —
        (valid items, why some were not) — has given ``n`` distinct items. Returns the
        items (at most ``n``) and why there are fewer (None when there are ``n``)."""
        items: list = []
        reason = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt and self.backoff:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                answer = self._complete(messages, seed + attempt)
            except StudioError as exc:
                reason = str(exc)
                continue
            valid, reason = parse(answer, n)
            items += [item for item in valid if item not in items]
            if len(items) >= n:
                return items[:n], None
        return items, reason

    def generate(self, product: ProductInfo, cluster: Cluster, n: int, seed: int = 0) -> list[Prompt]:
        check_n(n)
        messages = build_messages(product, cluster, n, self.guidelines)
        texts, reason = self.collect(
            messages, n, lambda answer, k: parse_prompts(answer, k, self.guidelines), seed)
        negative = self.guidelines.negative_prompt(DEFAULT_NEGATIVE_PROMPT)
        prompts = [Prompt(t, negative, {"writer": self.describe()}, self.name, cluster.id)
                   for t in texts[:n]]
        if len(prompts) < n:
            why = f"{self.name}: {reason} (after {self.retries + 1} attempts)"
            log.warning("prompt generator fell back to the template: %s", why)
            for prompt in self.fallback.generate(product, cluster, n - len(prompts), seed):
                prompt.fallback = why
                prompts.append(prompt)
        return prompts

    def _complete(self, messages: list[dict], seed: int) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class LLMGenerator(_LanguageModelGenerator):
    """A local transformers causal LM with a chat template (model id or folder)."""

    name = "llm"

    def __init__(self, model: str, *, guidelines: Guidelines | None = None, retries: int = 2,
                 max_new_tokens: int = 320, temperature: float = 0.8, device: str | None = None,
                 fallback: TemplateGenerator | None = None):
        super().__init__(guidelines, retries, fallback)
        self.model_id = str(model)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.device = device
        self.tokenizer, self.model = _load_causal_lm(self.model_id, device)

    def _complete(self, messages: list[dict], seed: int) -> str:
        import torch

        if not getattr(self.tokenizer, "chat_template", None):
            raise StudioError(f"model {self.model_id!r} has no chat template")
        inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                    return_tensors="pt", return_dict=True)
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                         do_sample=True, temperature=self.temperature,
                                         top_p=0.95,
                                         pad_token_id=self.tokenizer.pad_token_id
                                         or self.tokenizer.eos_token_id)
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True)

    def describe(self) -> str:
        return f"llm:{self.model_id}"


@lru_cache(maxsize=2)
def _load_causal_lm(model_id: str, device: str | None):
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        model = AutoModelForCausalLM.from_pretrained(model_id)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudioError(f"cannot load language model {model_id!r}: {first}") from None
    if device:
        model = model.to(device)
    return tokenizer, model.eval()


class OpenAIGenerator(_LanguageModelGenerator):
    """Any OpenAI-compatible ``/chat/completions`` endpoint. The API key is read from the
    environment variable named by ``api_key_env`` (none is sent when it is unset)."""

    name = "openai"

    def __init__(self, base_url: str, model: str, *, guidelines: Guidelines | None = None,
                 api_key_env: str = "OPENAI_API_KEY", timeout: float = 30.0, retries: int = 2,
                 backoff: float = 0.5, temperature: float = 0.8,
                 fallback: TemplateGenerator | None = None):
        super().__init__(guidelines, retries, fallback, backoff)
        if not re.match(r"https?://", base_url):
            raise StudioError(f"base URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.temperature = temperature

    def _complete(self, messages: list[dict], seed: int) -> str:
        import httpx

        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "seed": seed, "response_format": {"type": "json_object"}}
        try:
            response = httpx.post(f"{self.base_url}/chat/completions", json=body,
                                  headers=headers, timeout=self.timeout)
        except httpx.TimeoutException:
            raise StudioError(f"no answer from {self.base_url} within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise StudioError(f"cannot reach {self.base_url}: {exc}") from None
        if response.status_code != 200:
            raise StudioError(f"{self.base_url} answered HTTP {response.status_code}")
        try:
            return response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise StudioError(f"{self.base_url} sent a response that is not a chat completion") from None

    def describe(self) -> str:
        return f"openai:{self.model}@{self.base_url}"
