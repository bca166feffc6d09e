"""The language-model prompt writers: ``llm`` (a local transformers causal LM; the
bundled SmolLM2-135M-Instruct when none is named, ``local_model``) and ``openai`` (any
OpenAI-compatible chat endpoint).

Both ask for JSON (``messages``); after ``retries`` failed attempts they fall back to
the template writer and say why (``Prompt.fallback``, and a logged warning). ``llm``
writes one prompt per call in the structured answer of ``messages.build_scene_messages``
(``structured=False``: the whole list in one answer, as ``openai`` does).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from typing import Callable

from ..errors import StudioError
from ..inputs.catalog import ProductInfo
from ..inputs.clusters import Cluster
from ..inputs.guidelines import DEFAULT_NEGATIVE_PROMPT, Guidelines
from .local_model import ModelSource, load_causal_lm, resolve_model
from .messages import build_messages, build_scene_messages, parse_prompts
from .template import TemplateGenerator
from .vocabulary import Prompt, check_n

log = logging.getLogger(__name__)


class _LanguageModelGenerator:
    """Shared retry / validate / fall back logic of the ``llm`` and ``openai`` writers."""

    name = "language-model"
    #: Whether items are asked one per call in a structured answer the model continues
    #: (a trailing assistant message; ``collect_each``) rather than as one list.
    structured = False

    def __init__(self, guidelines: Guidelines | None, retries: int,
                 fallback: TemplateGenerator | None, backoff: float = 0.0):
        if retries < 0:
            raise StudioError(f"retries must be >= 0, got {retries}")
        self.guidelines = guidelines or Guidelines()
        self.retries = retries
        self.backoff = backoff
        self.fallback = fallback or TemplateGenerator(self.guidelines)
        #: The latest attempts, newest last: {"attempt", "answer", "valid", "reason"}
        #: (``attempt`` 0 is the first try; ``valid`` the items parse kept).
        self.attempts: deque[dict] = deque(maxlen=1000)

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
                self.attempts.append({"attempt": attempt, "answer": None, "valid": 0,
                                      "reason": reason})
                continue
            valid, reason = parse(answer, n)
            self.attempts.append({"attempt": attempt, "answer": answer, "valid": len(valid),
                                  "reason": reason})
            items += [item for item in valid if item not in items]
            if len(items) >= n:
                return items[:n], None
        return items, reason

    def collect_each(self, build: Callable[[int], list[dict]], n: int,
                     parse: Callable[[str, int], tuple], seed: int = 0) -> tuple[list, str | None]:
        """``n`` items, one per conversation (``build(i)``: the messages for item i),
        each through ``collect``; an item that repeats an earlier one is not kept.
        Returns the items and why there are fewer than ``n`` (None when there are not)."""
        items: list = []
        reason = None

        def fresh(answer: str, k: int):
            valid, why = parse(answer, k)
            new = [item for item in valid if item not in items]
            return (new, why) if new or not valid else ([], "it repeats an earlier one")

        for i in range(n):
            got, why = self.collect(build(i), 1, fresh, seed + 1000 * i)
            items += got
            reason = why or reason
        return items, reason

    def generate(self, product: ProductInfo, cluster: Cluster, n: int, seed: int = 0) -> list[Prompt]:
        check_n(n)
        texts, reason = self._texts(product, cluster, n, seed)
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

    def _texts(self, product: ProductInfo, cluster: Cluster, n: int,
               seed: int) -> tuple[list[str], str | None]:
        """Up to ``n`` prompt texts from the model, and why there are fewer."""
        messages = build_messages(product, cluster, n, self.guidelines)
        return self.collect(messages, n,
                            lambda answer, k: parse_prompts(answer, k, self.guidelines), seed)

    def _complete(self, messages: list[dict], seed: int) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class LLMGenerator(_LanguageModelGenerator):
    """A local transformers causal LM with a chat template: the bundled
    SmolLM2-135M-Instruct when ``model`` is None, a ``.gguf`` file or a folder holding
    one, a hub id or a transformers folder (``local_model.resolve_model``).

    ``structured`` (default): one prompt per call, each around another of the cluster's
    interests, in the structured answer the model fills (``build_scene_messages``);
    False: the whole list in one free-form JSON answer. A message list that ends with an
    ``assistant`` message is an answer begun: the model continues its ``content`` until
    ``stop``, then each text of ``then`` in turn (the studio writes the keys, the model
    the values), and ``close`` is appended; the answer is returned whole.
    """

    name = "llm"

    def __init__(self, model: str | None = None, *, guidelines: Guidelines | None = None,
                 retries: int = 2, max_new_tokens: int | None = None,
                 temperature: float = 0.7, repetition_penalty: float = 1.2,
                 structured: bool = True, device: str | None = None,
                 fallback: TemplateGenerator | None = None):
        super().__init__(guidelines, retries, fallback)
        if max_new_tokens is not None and max_new_tokens < 1:
            raise StudioError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not temperature >= 0:
            raise StudioError(f"temperature must be >= 0, got {temperature}")
        self.source: ModelSource = resolve_model(model)
        self.model_id = str(self.source)
        self.structured = structured
        self.max_new_tokens = max_new_tokens or (64 if structured else 320)
        self.temperature = temperature
        self.repetition_penalty = repetition_penalty
        self.device = device
        self.tokenizer, self.model = load_causal_lm(self.source, device)

    def _texts(self, product: ProductInfo, cluster: Cluster, n: int,
               seed: int) -> tuple[list[str], str | None]:
        if not self.structured:
            return super()._texts(product, cluster, n, seed)
        focuses = cluster.interests or ["everyday life"]
        return self.collect_each(
            lambda i: build_scene_messages(product, focuses[i % len(focuses)], self.guidelines),
            n, lambda answer, k: parse_prompts(answer, k, self.guidelines), seed)

    def _complete(self, messages: list[dict], seed: int) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise StudioError(f"model {self.model_id!r} has no chat template")
        begun = messages[-1] if messages and messages[-1]["role"] == "assistant" else None
        asked = [{"role": m["role"], "content": m["content"]}
                 for m in (messages[:-1] if begun else messages)]
        text = self.tokenizer.apply_chat_template(asked, add_generation_prompt=True,
                                                  tokenize=False)
        if not begun:
            return self._generate(text, None, seed)
        answer, stop = "", begun.get("stop")
        for part in (begun["content"], *begun.get("then", ())):
            answer += part
            more = self._generate(text + answer, stop, seed)
            end = _find_stop(more, stop) if stop else len(more)
            if end < 0:  # ran out of tokens before the value closed: not valid JSON
                return answer + more
            answer += more[: end + len(stop or "")]
        return answer + begun.get("close", "")

    def _generate(self, text: str, stop: str | None, seed: int) -> str:
        """The model's continuation of ``text`` (stopped once it holds ``stop``)."""
        import torch

        inputs = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        start = inputs["input_ids"].shape[1]
        sampling = (dict(do_sample=True, temperature=self.temperature, top_p=0.9)
                    if self.temperature > 0 else dict(do_sample=False))
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens,
                repetition_penalty=self.repetition_penalty,
                stopping_criteria=[_StopAt(self.tokenizer, start, stop)] if stop else None,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                **sampling)
        return self.tokenizer.decode(output[0, start:], skip_special_tokens=True)

    def describe(self) -> str:
        return f"llm:{self.model_id}"


def _find_stop(text: str, stop: str) -> int:
    """Where ``stop`` first occurs in ``text`` not escaped by a backslash (-1: nowhere)."""
    at = text.find(stop)
    while at > 0 and text[at - 1] == "\\":
        at = text.find(stop, at + 1)
    return at


class _StopAt:
    """A stopping criterion: the new text holds ``stop`` (unescaped)."""

    def __init__(self, tokenizer, start: int, stop: str):
        self.tokenizer, self.start, self.stop = tokenizer, start, stop

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        text = self.tokenizer.decode(input_ids[0, self.start:], skip_special_tokens=True)
        done = _find_stop(text, self.stop) >= 0
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool,
                          device=input_ids.device)


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
