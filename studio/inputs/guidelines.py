"""Brand guidelines every prompt must pass, whoever wrote it.

A YAML file with any of these keys::

    banned_words: [cheap, discount]   # never appear (whole words/phrases, any case)
    required_words: [handcrafted]     # always appear (appended when missing)
    palette: [navy, gold]             # the brand colours a prompt's palette uses
    tone: premium and calm            # a tone every prompt carries
    max_length: 220                   # characters
    negative: [cartoon, clutter]      # added to every negative prompt

``enforce`` is the last word on a prompt: it removes banned words, appends missing
required words and trims optional trailing parts to the maximum length. ``violations``
says what is wrong with a text without fixing it (used to reject LLM answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import StudioError
from ..files import read_yaml

_KEYS = {"banned_words", "required_words", "palette", "tone", "max_length", "negative"}
#: What every negative prompt starts from (``Guidelines.negative_prompt`` adds the brand's).
DEFAULT_NEGATIVE_PROMPT = (
    "blurry, low quality, distorted, deformed, duplicate product, extra objects, "
    "text, letters, watermark, logo"
)


@dataclass(frozen=True)
class Guidelines:
    banned_words: tuple[str, ...] = ()
    required_words: tuple[str, ...] = ()
    palette: tuple[str, ...] = ()
    tone: str = ""
    max_length: int = 300
    negative: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        words = set(w.lower() for w in self.required_words)
        clash = words & set(w.lower() for w in self.banned_words)
        if clash:
            raise StudioError(f"guidelines both require and ban: {', '.join(sorted(clash))}")
        needed = len(", ".join(self.required_words)) + len(self.tone) + 30
        if self.max_length < needed:
            raise StudioError(f"max_length {self.max_length} leaves no room for a prompt with "
                              f"the required words (needs at least {needed})")

    @classmethod
    def load(cls, path) -> "Guidelines":
        return cls.from_dict(read_yaml(path, "guidelines file"), where=str(path))

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "guidelines") -> "Guidelines":
        if not isinstance(data, dict):
            raise StudioError(f"{where}: expected a mapping of {', '.join(sorted(_KEYS))}")
        unknown = set(data) - _KEYS
        if unknown:
            raise StudioError(f"{where}: unknown keys {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(_KEYS))})")

        def words(key):
            value = data.get(key, [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise StudioError(f"{where}: {key} must be a list of words")
            return tuple(v.strip() for v in value)

        tone = data.get("tone", "")
        if not isinstance(tone, str):
            raise StudioError(f"{where}: tone must be text")
        max_length = data.get("max_length", 300)
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 20:
            raise StudioError(f"{where}: max_length must be an integer >= 20")
        return cls(words("banned_words"), words("required_words"), words("palette"),
                   tone.strip(), max_length, words("negative"))

    # ------------------------------------------------------------------ checks
    def violations(self, text: str) -> list[str]:
        """What is wrong with ``text``; empty when it passes as is."""
        problems = [f"contains banned word {w!r}" for w in self.banned_words
                    if _pattern(w).search(text)]
        problems += [f"lacks required word {w!r}" for w in self.required_words
                     if not _pattern(w).search(text)]
        if len(text) > self.max_length:
            problems.append(f"is {len(text)} characters, over {self.max_length}")
        return problems

    def allows(self, text: str) -> bool:
        """No banned word in ``text`` (for filtering vocabulary before composing)."""
        return not any(_pattern(w).search(text) for w in self.banned_words)

    def enforce(self, text: str) -> str:
        """Return ``text`` made to pass: banned words removed, required words and tone
        appended, trailing optional parts dropped to fit ``max_length``."""
        for word in self.banned_words:
            text = _pattern(word).sub("", text)
        parts = [_tidy(p) for p in text.split(",")]
        parts = [p for p in parts if p]
        if self.tone and not _pattern(self.tone).search(", ".join(parts)):
            parts.append(f"{self.tone} mood")
        for word in self.required_words:
            if not _pattern(word).search(", ".join(parts)):
                parts.append(word)
        kept = (*self.required_words, *([self.tone] if self.tone else []))
        protected = {i for i, p in enumerate(parts)
                     if i == 0 or any(_pattern(w).search(p) for w in kept)}
        while len(", ".join(parts)) > self.max_length:
            optional = [i for i in range(len(parts)) if i not in protected]
            if not optional:
                break
            drop = optional[-1]
            parts.pop(drop)
            protected = {i - (i > drop) for i in protected}
        result = ", ".join(parts)
        if len(result) > self.max_length:
            result = result[: self.max_length].rsplit(" ", 1)[0]
        return result

    def negative_prompt(self, base: str) -> str:
        extra = [w for w in self.negative if not _pattern(w).search(base)]
        return ", ".join([base, *extra]) if extra else base

    def describe(self) -> str:
        """The rules in words, for an LLM's instructions."""
        rules = []
        if self.banned_words:
            rules.append("never use these words: " + ", ".join(self.banned_words))
        if self.required_words:
            rules.append("always include these words: " + ", ".join(self.required_words))
        if self.palette:
            rules.append("use only these brand colours: " + ", ".join(self.palette))
        if self.tone:
            rules.append(f"keep a {self.tone} tone")
        rules.append(f"each prompt at most {self.max_length} characters")
        return "; ".join(rules)


def _pattern(word: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(word.strip()) + r"(?!\w)", re.IGNORECASE)


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip(" .;:-")
