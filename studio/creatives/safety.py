"""The safety gate every creative passes before it can be served.

Three checks, each a reason to block: the NSFW detector on the finished image
(``pipelines.safety``: its sexual-label score at or over the threshold), the brand kit's
banned words in the prompt, the copy or the text OCR reads on the image (the same
whole-word matching as the brand guidelines), and the Stable Diffusion safety checker's
flag when the sd engine ran with one. The verdict goes into the creative's manifest and
the store (``Store.add_creatives``); a blocked creative is never an arm and never served
until a reviewer overrides it (``Store.override_safety``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from pipelines.safety import NsfwDetector

from ..errors import StudioError
from ..inputs.guidelines import Guidelines


#: The default NSFW threshold. The project's own procedural renders score up to 0.49 (the
#: demo's ad panel: a green bottle on a gingham blanket read as MALE_GENITALIA_EXPOSED at
#: 1080×1350), so 0.5 would block innocent creatives; 0.7 leaves a margin above that.
#: Stricter placements lower it (``--nsfw-threshold``).
DEFAULT_NSFW_THRESHOLD = 0.7


@dataclass(frozen=True)
class SafetySettings:
    """``nsfw_threshold``: a creative whose NSFW score (0..1) is at or over it is blocked
    (0 blocks every creative; 1 only a certain detection)."""

    nsfw_threshold: float = DEFAULT_NSFW_THRESHOLD

    def __post_init__(self):
        value = self.nsfw_threshold
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise StudioError(f"the NSFW threshold must be a number from 0 to 1, got {value!r}")


def check_creative(image: np.ndarray, *, prompt: str, copy_texts: list[str],
                   ocr_texts: list[str], banned: tuple[str, ...], sd_nsfw_flag: bool | None,
                   settings: SafetySettings = SafetySettings()) -> dict:
    """The gate's verdict on one finished creative (RGB uint8): ``blocked``, the
    ``reasons`` in words, the NSFW score with its threshold and detected labels, the
    banned words found, the SD safety checker's flag (None: no checker ran) and when it
    was checked."""
    assessment = NsfwDetector().assess(image)
    score, threshold = assessment["score"], settings.nsfw_threshold
    reasons = []
    if score >= threshold:
        reasons.append(f"nsfw score {score:.2f} ≥ {threshold:.2f} ({assessment['label']})")
    found = []
    for where, texts in (("prompt", [prompt]), ("copy", copy_texts), ("text read on the image", ocr_texts)):
        for word in banned:
            if not all(Guidelines(banned_words=(word,)).allows(text) for text in texts if text):
                found.append(word)
                reasons.append(f"banned word {word!r} in the {where}")
    if sd_nsfw_flag:
        reasons.append("the SD safety checker flagged it")
    return {"blocked": bool(reasons), "reasons": reasons,
            "nsfw": {"score": score, "threshold": threshold, "label": assessment["label"],
                     "labels": sorted({d["label"] for d in assessment["detections"]})},
            "banned_words": sorted(set(found)), "sd_safety_checker": sd_nsfw_flag,
            "checked": datetime.now(timezone.utc).isoformat(timespec="seconds")}
