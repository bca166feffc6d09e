"""The AI-generated marking goes into PNG and JPEG metadata, reads back, and changes no pixel.

C2PA signing is a later step (the lead's): here only that the marking goes in before it
(a signed PNG is refused) is checked.
"""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from pipelines import InputError
from pipelines.disclosure import (
    COMPOSITE,
    JPEG_XMP_MAX,
    NS,
    TRAINED,
    creative_packet,
    jpeg_with_disclosure,
    png_with_disclosure,
    read_disclosure,
    xmp_packet,
)

CREATED = "2025-03-01T12:00:00+00:00"


def _image(h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)


def _png(array: np.ndarray, pnginfo: PngImagePlugin.PngInfo | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", pnginfo=pnginfo)
    return buffer.getvalue()


def _packet(**overrides) -> bytes:
    return xmp_packet(**{"source_type": COMPOSITE, "tool": "creative-studio 0.1.0",
                         "created": CREATED, **overrides})


def _chunk_types(png: bytes) -> list[bytes]:
    types, at = [], 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        types.append(kind)
        at += 12 + length
    return types


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_packet_is_xml_with_the_iptc_digital_source_type():
    root = ET.fromstring(_packet(description="Mug <on> a table & more"))
    description = root.find(f".//{{{NS['rdf']}}}Description")
    assert description.find(f"{{{NS['Iptc4xmpExt']}}}DigitalSourceType").text == COMPOSITE
    assert description.find(f"{{{NS['xmp']}}}CreatorTool").text == "creative-studio 0.1.0"
    assert description.find(f"{{{NS['xmp']}}}CreateDate").text == CREATED
    assert "AI-generated" in description.find(f"{{{NS['photoshop']}}}Credit").text
    assert description.find(f".//{{{NS['rdf']}}}li").text == "Mug <on> a table & more"


def test_png_round_trip_keeps_pixels_and_other_chunks():
    array = _image()
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "kept")
    original = _png(array, info)
    marked = png_with_disclosure(original, _packet(description="a mug"))
    assert read_disclosure(marked) == {
        "source_type": COMPOSITE, "tool": "creative-studio 0.1.0", "created": CREATED,
        "disclosure": "Product photo composited with AI-generated imagery "
                      "(creative-studio 0.1.0)",
        "description": "a mug"}
    types = _chunk_types(marked)
    assert types.index(b"iTXt") < types.index(b"IDAT")  # read by Pillow at open
    assert _chunk_types(original) == [t for t in types if t != b"iTXt"]
    with Image.open(io.BytesIO(marked)) as opened:
        assert opened.info["Comment"] == "kept"
        assert opened.info["xmp"].startswith(b"<?xpacket")  # Pillow sees the XMP too
        assert np.array_equal(np.asarray(opened), array)
    decoded = cv2.imdecode(np.frombuffer(marked, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded[..., ::-1], array)


def test_png_marked_twice_holds_one_packet_the_latest():
    once = png_with_disclosure(_png(_image()), _packet())
    twice = png_with_disclosure(once, _packet(source_type=TRAINED))
    assert _chunk_types(twice).count(b"iTXt") == 1
    assert read_disclosure(twice)["source_type"] == TRAINED


def test_jpeg_round_trip_opens_in_pillow_and_opencv():
    y, x = np.mgrid[0:64, 0:96]
    array = np.stack([x * 2, y * 3, (x + y)], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it
    data = jpeg_with_disclosure(array, _packet(source_type=TRAINED), quality=90)
    assert data[:2] == b"\xff\xd8" and b"http://ns.adobe.com/xap/1.0/\x00<?xpacket" in data
    found = read_disclosure(data)
    assert found["source_type"] == TRAINED and found["description"] is None
    assert "AI-generated image" in found["disclosure"]
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.format == "JPEG" and opened.size == (96, 64)
        pixels = np.asarray(opened.convert("RGB"))
    assert np.abs(pixels.astype(int) - array).mean() < 3  # lossy, but the same image
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (64, 96, 3)


def test_files_without_the_marking_read_none():
    array = _image()
    assert read_disclosure(_png(array)) is None
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    assert read_disclosure(buffer.getvalue()) is None
    other_xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="' + NS["rdf"].encode()
                 + b'"><rdf:Description rdf:about=""/></rdf:RDF></x:xmpmeta>')
    assert read_disclosure(png_with_disclosure(_png(array), other_xmp)) is None


def test_reads_attribute_form_and_compressed_itxt_written_by_other_tools():
    packet = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{NS["rdf"]}">'
              f'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="{NS["Iptc4xmpExt"]}" '
              f'Iptc4xmpExt:DigitalSourceType="{TRAINED}"/></rdf:RDF></x:xmpmeta>')
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet, zip=True)
    found = read_disclosure(_png(_image(), info))
    assert found["source_type"] == TRAINED and found["tool"] is None


def test_creative_packet_from_a_manifest():
    manifest = {"created": CREATED, "engine": "sd", "prompt": "for runners aged 25-34",
                "versions": {"creative-studio": "0.1.0"}}
    packet = creative_packet(manifest)
    found = read_disclosure(png_with_disclosure(_png(_image()), packet))
    assert found["source_type"] == COMPOSITE
    assert found["tool"] == "creative-studio 0.1.0 (engine sd)"
    assert b"runners" not in packet  # the prompt stays out of the public file
    # No date: the same render published twice is the same file.
    assert found["created"] is None and creative_packet({**manifest, "created": "x"}) == packet
    with pytest.raises(InputError, match="manifest lacks versions"):
        creative_packet({"engine": "sd"})


def test_disclosure_must_come_before_c2pa_signing():
    png = _png(_image())
    signed = png[:-12] + _chunk(b"caBX", b"jumbf manifest store") + png[-12:]
    with pytest.raises(InputError, match="already C2PA-signed; add the disclosure before"):
        png_with_disclosure(signed, _packet())


@pytest.mark.parametrize("kwargs, message", [
    ({"source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"},
     "unknown digital source type.*trainedAlgorithmicMedia.*compositeWithTrained"),
    ({"source_type": "ai"}, "unknown digital source type"),
    ({"tool": ""}, "tool must be a non-empty string"),
    ({"tool": None}, "tool must be a non-empty string"),
    ({"created": "yesterday"}, "created must be an ISO 8601 date-time"),
    ({"created": 20250301}, "created must be a non-empty string"),
    ({"description": "bell\x07"}, "description holds control characters"),
    ({"description": "  "}, "description must be a non-empty string"),
])
def test_bad_packet_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        _packet(**kwargs)


def test_bad_png_inputs():
    png, packet = _png(_image()), _packet()
    with pytest.raises(InputError, match="not a PNG file"):
        png_with_disclosure(b"\xff\xd8\xff\xe0 a jpeg", packet)
    with pytest.raises(InputError, match="expected PNG bytes, got str"):
        png_with_disclosure("image.png", packet)
    with pytest.raises(InputError, match="truncated PNG"):
        png_with_disclosure(png[:len(png) // 2], packet)
    with pytest.raises(InputError, match="truncated PNG: no image data or no IEND"):
        png_with_disclosure(png[:-12], packet)
    with pytest.raises(InputError, match="XMP packet must be bytes, got str"):
        png_with_disclosure(png, packet.decode())
    with pytest.raises(InputError, match="XMP packet is not valid XML"):
        png_with_disclosure(png, b"<x:xmpmeta>")


def test_bad_jpeg_inputs():
    packet = _packet()
    for image, got in [(_image().astype(np.float32), "float32"),
                       (np.zeros((8, 8, 4), np.uint8), r"\(8, 8, 4\)"),
                       (np.zeros((8, 8), np.uint8), r"\(8, 8\)"),
                       (np.zeros((0, 8, 3), np.uint8), r"\(0, 8, 3\)"),
                       ([[0]], "list")]:
        with pytest.raises(InputError, match=f"RGB uint8 array of shape HxWx3, got .*{got}"):
            jpeg_with_disclosure(image, packet)
    for quality in (0, 101, 9.5, True):
        with pytest.raises(InputError, match="quality must be an integer from 1 to 100"):
            jpeg_with_disclosure(_image(), packet, quality=quality)
    big = _packet(description="x" * JPEG_XMP_MAX)
    with pytest.raises(InputError, match="does not fit one JPEG APP1 segment"):
        jpeg_with_disclosure(_image(), big)
    with pytest.raises(InputError, match="XMP packet is not valid XML"):
        jpeg_with_disclosure(_image(), b"not xml")


def test_bad_files_to_read():
    with pytest.raises(InputError, match="not a PNG or JPEG file"):
        read_disclosure(b"GIF89a")
    for truncated in (b"\xff\xd8\xff", b"\xff\xd8\xff\xe1\x00\x10garbage"):
        with pytest.raises(InputError, match="unreadable JPEG: its headers are truncated"):
            read_disclosure(truncated)
    with pytest.raises(InputError, match="expected the file's bytes, got str"):
        read_disclosure("creative.png")
    broken = png_with_disclosure(_png(_image()), _packet()).replace(b"</x:xmpmeta>",
                                                                     b"</x:xmpmetX>")
    with pytest.raises(InputError, match="the file's XMP packet is not valid XML"):
        read_disclosure(broken)
    malformed = _png(_image())
    malformed = malformed[:33] + _chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01") + malformed[33:]
    with pytest.raises(InputError, match="malformed PNG iTXt chunk"):
        read_disclosure(malformed)

