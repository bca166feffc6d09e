"""What a published creative carries about where it comes from, in the file itself.

Two marks, in this order: the AI disclosure (an XMP packet with the IPTC digital source
type ``compositeWithTrainedAlgorithmicMedia`` — a real product photo in a generated
scene — which Meta and Google read), then, when signing is configured, C2PA content
credentials (``credentials.Signing``) that hash the whole file, disclosure included, so
the disclosure cannot be stripped or changed without the signature saying so.
"""

from __future__ import annotations

import time

from pipelines.disclosure import COMPOSITE, creative_packet, png_with_disclosure

from .credentials import DIGITAL_SOURCE_TYPE, Signing

#: What the C2PA render assertion repeats from the manifest.
SIGNED_FIELDS = ("id", "engine", "model_id", "prompt", "negative_prompt", "seed", "format",
                 "size")


def mark(png: bytes, manifest: dict, product_sha256: str,
         signing: Signing | None) -> tuple[bytes, dict]:
    """The published file's bytes — ``png`` with the disclosure and, with ``signing``,
    signed — and what the manifest records about it (``disclosure``, ``credentials``)."""
    marked = png_with_disclosure(png, creative_packet(manifest))
    record = {"disclosure": {"source_type": COMPOSITE, "format": "XMP (iTXt)"},
              "credentials": None}
    if signing is None:
        return marked, record
    started = time.perf_counter()
    signed = signing.sign_png(marked, title=manifest["image"], source_type=DIGITAL_SOURCE_TYPE,
                              product_sha256=product_sha256,
                              assertions={k: manifest.get(k) for k in SIGNED_FIELDS})
    record["credentials"] = {"format": "c2pa", **signing.describe(),
                             "sign_s": round(time.perf_counter() - started, 4)}
    return signed, record
