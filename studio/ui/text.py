"""What the UI says: status lines (done, warning banner, error), captions and figures.

Every message a marketer reads goes through here, so that server paths never leak into
it, CTRs read as percentages and a preview never says "Done" alone.
"""

from __future__ import annotations

import re

#: The approval states of a creative, in the order the UI cycles them.
STATES = ("pending", "approved", "rejected")

# An absolute POSIX path (a temp upload, the workspace folder): its folders are the
# server's business; the file name is the user's.
_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"()\[\],;:]+/)+([^\s/'\"()\[\],;:]*)")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")


def strip_paths(message: str) -> str:
    """``message`` with every absolute path cut to its file name (no server folders)."""
    return _PATH.sub(lambda m: m.group(1) or "(a folder)", str(message))


def plain(message: str) -> str:
    """``message`` for people: no server paths, no ``[Errno -2]`` prefixes, one line."""
    return " ".join(_ERRNO.sub("", strip_paths(message)).split())


def done(message: str) -> str:
    return f"**Done:** {plain(message)}"


def error(exc: Exception | str) -> str:
    return f"**Error:** {plain(exc)}"


def warned(message: str, warnings: list[str]) -> str:
    """A result with warnings: the warnings first, as a banner, then what was done (never
    "Done" alone). Without warnings, ``done(message)``."""
    if not warnings:
        return done(message)
    banner = "\n".join(f"> ⚠️ **{_headline(w)}**{_rest(w)}" for w in dict.fromkeys(warnings))
    return f"{banner}\n\n**Finished, with the warning above:** {plain(message)}"


def _headline(warning: str) -> str:
    """The plain first sentence of a warning (a preview notice's "Why:" is its detail)."""
    return plain(warning.split(" (Why:", 1)[0])


def _rest(warning: str) -> str:
    why = warning.split(" (Why:", 1)
    return f" <small>(why: {plain(why[1]).rstrip(').')})</small>" if len(why) > 1 else ""


def percent(value) -> str:
    """A CTR as a readable percentage ("3.13%"); "not scored" for none."""
    return "not scored" if value is None else f"{float(value):.2%}"


def caption(creative: dict) -> str:
    """A short gallery caption: cluster name · format · CTR · copy check · approval state."""
    ctr = "CTR n/a" if creative["predicted_ctr"] is None else \
        f"CTR {percent(creative['predicted_ctr'])}"
    copy = f" · copy {copy_check(creative['copy'])}" if creative.get("copy") else ""
    return f"{creative['name']} · {creative['format']} · {ctr}{copy} · {creative['state']}"


def ai_disclosure(manifest: dict) -> str:
    """The export CSV's ``ai_generated`` cell: what the file says about how it was made
    (the IPTC digital source type in its XMP, and whether C2PA credentials sign it)."""
    disclosure = manifest.get("disclosure")
    if not disclosure:
        return "yes (not marked in the file)"
    kind = disclosure["source_type"].rsplit("/", 1)[-1]
    signed = "C2PA signed" if manifest.get("credentials") else "not signed"
    return f"yes: {kind} (XMP), {signed}"


def copy_check(copy: dict | None) -> str:
    """Whether a creative's copy read back exactly with OCR: "✓ read back", "✗ misread",
    or "" without copy."""
    if not copy:
        return ""
    return "✓ read back" if copy["ocr_match"] else "✗ misread"


def choice(creative: dict) -> tuple[str, str]:
    """A (label, value) choice naming a creative in a dropdown."""
    return f"{creative['number']}. {caption(creative)}", creative["id"]


def gallery_items(creatives: list[dict]) -> list[tuple[str, str]]:
    """The gallery's (image, caption) pairs."""
    return [(c["path"], caption(c)) for c in creatives]


def formats_of(presets) -> list[str]:
    """The ad formats of the chosen presets (a name that is no preset is passed on as
    it is, for the size check to judge)."""
    from pipelines.presets import PRESETS

    return [PRESETS[p].format if p in PRESETS else p for p in presets or []]


def preset_choices() -> list[tuple[str, str]]:
    """(label, name) of every platform preset, e.g. "feed-4:5 · 1080×1350 · …"."""
    from pipelines.presets import PRESETS

    return [(f"{p.name} · {p.width}×{p.height} · {p.label}", p.name) for p in PRESETS.values()]
