"""The watermark never touches kept pixels, decodes when claimed, and is skipped honestly."""

from __future__ import annotations

import numpy as np

from pipelines.watermark import embed_watermark, read_watermark, watermark_payload


def _textured(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(60, 190, size, dtype=np.float32)[None, :, None]
    return np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)


def _keep(size: int) -> np.ndarray:
    keep = np.zeros((size, size), bool)
    keep[size // 3: 2 * size // 3, size // 3: 2 * size // 3] = True
    return keep


def test_embedded_watermark_decodes_and_leaves_kept_pixels_alone():
    image, keep = _textured(320), _keep(320)
    payload = watermark_payload("sha", "prompt", 1, "backdrop")
    marked, report = embed_watermark(image, payload, keep)
    assert report == {"status": "embedded", "method": "dwtDctSvd", "payload": payload.hex()}
    assert np.array_equal(marked[keep], image[keep])
    assert not np.array_equal(marked[~keep], image[~keep])
    assert read_watermark(marked, len(payload)) == payload
    mse = ((marked.astype(float) - image.astype(float)) ** 2).mean()
    assert 10 * np.log10(255 ** 2 / mse) > 28  # PSNR; ~38 dB on a real backdrop render


def test_pure_white_background_is_skipped_with_a_reason():
    image = np.full((320, 320, 3), 255, np.uint8)
    marked, report = embed_watermark(image, b"\x01\x02\x03\x04", _keep(320))
    assert report["status"] == "skipped" and "did not decode" in report["reason"]
    assert marked is image


def test_small_images_are_not_marked():
    image = _textured(128)
    marked, report = embed_watermark(image, b"abcd", _keep(128))
    assert report["status"] == "skipped" and "smaller than 256x256" in report["reason"]
    assert marked is image


def test_payload_depends_on_every_part():
    base = watermark_payload("sha", "prompt", 1, "sd")
    assert len(base) == 4
    assert base != watermark_payload("sha", "prompt", 2, "sd")
    assert base != watermark_payload("sha", "other", 1, "sd")
