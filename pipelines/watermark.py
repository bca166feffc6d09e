"""Invisible provenance watermark that never touches the product.

The image is watermarked with invisible-watermark's ``dwtDctSvd`` method (it survives
JPEG at quality 90), then the product pixels are copied back, and the mark must still
decode. Where it does not (near-white or flat backgrounds, where the embedding clips),
the creative is left unmarked and the reason is reported; a watermark that cannot be
read back is not claimed. Images under 256x256 pixels are not marked (the method needs
at least that much area).
"""

from __future__ import annotations

import hashlib

import numpy as np

METHOD = "dwtDctSvd"
#: invisible-watermark refuses images with fewer pixels than this.
MIN_PIXELS = 256 * 256


def embed_watermark(image: np.ndarray, payload: bytes, keep: np.ndarray) -> tuple[np.ndarray, dict]:
    """Return (image, report). ``keep`` marks pixels that must stay unchanged.

    The report is ``{"status": "embedded", "method", "payload"}`` or
    ``{"status": "skipped", "reason"}``.
    """
    from imwatermark import WatermarkEncoder

    h, w = keep.shape
    if h * w < MIN_PIXELS:
        return image, {"status": "skipped", "reason": f"image {w}x{h} is smaller than 256x256"}
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", payload)
    bgr = np.ascontiguousarray(image[..., ::-1])
    marked = encoder.encode(bgr, METHOD)[..., ::-1]
    marked = np.ascontiguousarray(marked.astype(np.uint8))
    marked[keep] = image[keep]

    if read_watermark(marked, len(payload)) != payload:
        return image, {
            "status": "skipped",
            "reason": "watermark did not decode after the product was pasted back "
                      "(typical on near-white or flat backgrounds)",
        }
    return marked, {"status": "embedded", "method": METHOD, "payload": payload.hex()}


def read_watermark(image: np.ndarray, n_bytes: int = 4) -> bytes:
    """Decode ``n_bytes`` of payload from an RGB image (for verification tools)."""
    from imwatermark import WatermarkDecoder

    decoder = WatermarkDecoder("bytes", 8 * n_bytes)
    return decoder.decode(np.ascontiguousarray(image[..., ::-1]), METHOD)


def watermark_payload(*parts: object) -> bytes:
    """4 bytes that identify a render (recorded in its manifest for look-up)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4]
