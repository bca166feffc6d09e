"""The AI-generated marking in a file's own metadata: an XMP packet in PNG and JPEG.

Ad platforms read the IPTC Digital Source Type to label generated imagery: Google
(Merchant Center, Search, Shopping) requires ``trainedAlgorithmicMedia`` on AI-generated
images and Meta reads the same IPTC field (beside C2PA). So the packet carries
``Iptc4xmpExt:DigitalSourceType`` (the machine-read key), ``xmp:CreatorTool``,
``xmp:CreateDate``, an optional ``dc:description``, and the same fact in plain words in
``photoshop:Credit`` (IPTC "Credit Line", which Google Images shows beside an image), so a
person inspecting the file reads it too.

A studio creative keeps the real product photo and generates what surrounds it: it is
:data:`COMPOSITE`; :data:`TRAINED` is for an image generated whole.

Order with C2PA: signing hashes the file, so the marking goes in first and the file is
signed after; :func:`png_with_disclosure` refuses a PNG that already carries a C2PA
manifest rather than silently break its signature.
"""

from __future__ import annotations

import io
import re
import struct
import xml.etree.ElementTree as ET
import zlib
from datetime import datetime
from xml.sax.saxutils import escape

import numpy as np

from .errors import InputError

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
SOURCE_TYPES = (TRAINED, COMPOSITE)
#: The words written to ``photoshop:Credit`` for each source type (the tool is appended).
PLAIN_WORDS = {TRAINED: "AI-generated image",
               COMPOSITE: "Product photo composited with AI-generated imagery"}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8\xff"
#: The iTXt keyword under which XMP lives in a PNG (XMP specification, part 3).
PNG_XMP_KEY = b"XML:com.adobe.xmp"
#: C2PA's PNG chunk (a JUMBF manifest store); present means the file is already signed.
C2PA_CHUNK = b"caBX"
#: What one JPEG APP1 segment can hold after its 2 length bytes and the XMP namespace.
JPEG_XMP_MAX = 65535 - 2 - len(b"http://ns.adobe.com/xap/1.0/\x00")

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
}
#: read_disclosure key -> the XMP property it comes from.
FIELDS = {"source_type": "Iptc4xmpExt:DigitalSourceType", "tool": "xmp:CreatorTool",
          "created": "xmp:CreateDate", "disclosure": "photoshop:Credit",
          "description": "dc:description"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xmp_packet(*, source_type: str, tool: str, created: str | None = None,
               description: str | None = None) -> bytes:
    """A UTF-8 XMP packet marking an image as AI-generated (``source_type`` one of
    :data:`SOURCE_TYPES`; ``created`` an ISO 8601 date-time, or None to leave the date
    out)."""
    if source_type not in SOURCE_TYPES:
        raise InputError(f"unknown digital source type {source_type!r}; use one of the IPTC "
                         f"terms: {', '.join(SOURCE_TYPES)}")
    tool = _text("tool", tool)
    if created is not None:
        created = _text("created", created)
        try:
            datetime.fromisoformat(created)
        except ValueError:
            raise InputError(f"created must be an ISO 8601 date-time, got {created!r}") from None
    lines = [
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>',
        f'<x:xmpmeta xmlns:x="{NS["x"]}">',
        f' <rdf:RDF xmlns:rdf="{NS["rdf"]}">',
        '  <rdf:Description rdf:about=""'
        + "".join(f'\n    xmlns:{p}="{NS[p]}"' for p in ("dc", "xmp", "photoshop", "Iptc4xmpExt"))
        + ">",
        f"   <Iptc4xmpExt:DigitalSourceType>{source_type}</Iptc4xmpExt:DigitalSourceType>",
        f"   <xmp:CreatorTool>{escape(tool)}</xmp:CreatorTool>",
        *([f"   <xmp:CreateDate>{escape(created)}</xmp:CreateDate>"] if created else []),
        f"   <photoshop:Credit>{escape(PLAIN_WORDS[source_type])} ({escape(tool)})"
        "</photoshop:Credit>",
    ]
    if description is not None:
        lines.append("   <dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">"
                     f"{escape(_text('description', description))}</rdf:li></rdf:Alt>"
                     "</dc:description>")
    lines += ["  </rdf:Description>", " </rdf:RDF>", "</x:xmpmeta>", '<?xpacket end="w"?>']
    return "\n".join(lines).encode()


def creative_packet(manifest: dict) -> bytes:
    """The packet for a published creative, from its manifest (``engine`` and
    ``versions``): :data:`COMPOSITE`, since the product photo is real. No date, so that
    the same render published twice is the same file (a resumed batch ends with the
    files of an uninterrupted one); the manifest and the C2PA claim hold the time. The
    prompt is left out on purpose: it can name the audience, and the file is public."""
    missing = [key for key in ("engine", "versions") if key not in manifest]
    if missing:
        raise InputError(f"manifest lacks {', '.join(missing)}; cannot build its disclosure")
    version = manifest["versions"].get("creative-studio") or "unknown version"
    return xmp_packet(source_type=COMPOSITE,
                      tool=f"creative-studio {version} (engine {manifest['engine']})")


def png_with_disclosure(png: bytes, packet: bytes) -> bytes:
    """``png`` with ``packet`` in an uncompressed iTXt ``XML:com.adobe.xmp`` chunk before
    the image data; every other chunk is kept byte for byte (an XMP chunk already there is
    replaced: a file holds one XMP packet).

    Must run BEFORE any C2PA signing: signing hashes the file, so a chunk added later
    breaks the signature; a PNG that already holds a C2PA manifest is refused. Chunks are
    spliced rather than the image re-encoded with Pillow's ``PngInfo``, which would drop
    chunks Pillow does not know and spend a full re-compression on a 1080-px creative.
    """
    chunks = _png_chunks(png)
    _check_packet(packet)
    if any(kind == C2PA_CHUNK for kind, _, _ in chunks):
        raise InputError("the PNG is already C2PA-signed; add the disclosure before signing "
                         "(signing hashes the file)")
    # keyword, NUL, uncompressed (flag 0, method 0), no language tag, no translated keyword
    itxt = PNG_XMP_KEY + b"\x00" + b"\x00\x00" + b"\x00" + b"\x00" + packet
    out = [PNG_SIGNATURE]
    for kind, data, raw in chunks:
        if kind == b"iTXt" and data.startswith(PNG_XMP_KEY + b"\x00"):
            continue
        if kind == b"IDAT" and itxt is not None:
            out.append(_chunk(b"iTXt", itxt))
            itxt = None
        out.append(raw)
    return b"".join(out)


def jpeg_with_disclosure(image: np.ndarray, packet: bytes, *, quality: int = 92) -> bytes:
    """``image`` (RGB uint8, HxWx3) as a JPEG with ``packet`` in an APP1 XMP segment
    (``http://ns.adobe.com/xap/1.0/\\0`` + packet), written by Pillow's ``xmp=``."""
    from PIL import Image

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or 0 in image.shape:
        got = (f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray)
               else type(image).__name__)
        raise InputError(f"JPEG export needs an RGB uint8 array of shape HxWx3, got {got} "
                         "(JPEG has no alpha: flatten RGBA first)")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InputError(f"JPEG quality must be an integer from 1 to 100, got {quality!r}")
    _check_packet(packet)
    if len(packet) > JPEG_XMP_MAX:
        raise InputError(f"XMP packet of {len(packet)} bytes does not fit one JPEG APP1 "
                         f"segment ({JPEG_XMP_MAX} bytes at most)")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, xmp=packet)
    return buffer.getvalue()


def read_disclosure(data: bytes) -> dict | None:
    """The marking in a PNG or JPEG as ``{"source_type", "tool", "created", "disclosure",
    "description"}`` (a property the file lacks is None); None when the file has no XMP
    or its XMP has no digital source type."""
    if not isinstance(data, (bytes, bytearray)):
        raise InputError(f"expected the file's bytes, got {type(data).__name__}")
    if data.startswith(PNG_SIGNATURE):
        packet = next((_itxt_text(body) for kind, body, _ in _png_chunks(bytes(data))
                       if kind == b"iTXt" and body.startswith(PNG_XMP_KEY + b"\x00")), None)
    elif data.startswith(JPEG_START):
        packet = _jpeg_xmp(bytes(data))
    else:
        raise InputError("not a PNG or JPEG file (unknown signature)")
    if packet is None:
        return None
    try:
        root = ET.fromstring(packet)
    except ET.ParseError as error:
        raise InputError(f"the file's XMP packet is not valid XML: {error}") from None
    found = {key: _property(root, name) for key, name in FIELDS.items()}
    return found if found["source_type"] else None


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string, got {value!r}")
    if _NOT_XML.search(value):
        raise InputError(f"{name} holds control characters that XML cannot carry: {value!r}")
    return value


def _check_packet(packet: object) -> None:
    if not isinstance(packet, bytes):
        raise InputError(f"the XMP packet must be bytes, got {type(packet).__name__}")
    try:
        ET.fromstring(packet)
    except ET.ParseError as error:
        raise InputError(f"the XMP packet is not valid XML: {error}") from None


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """(type, data, raw chunk) for every chunk, checked to end with IEND."""
    if not isinstance(png, bytes):
        raise InputError(f"expected PNG bytes, got {type(png).__name__}")
    if not png.startswith(PNG_SIGNATURE):
        raise InputError("not a PNG file (no PNG signature)")
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(png):
        if at + 12 > len(png):
            raise InputError(f"truncated PNG: a chunk header is cut off at byte {at}")
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        end = at + 12 + length
        if end > len(png):
            raise InputError(f"truncated PNG: chunk {kind!r} runs past the end of the file")
        chunks.append((kind, png[at + 8:at + 8 + length], png[at:end]))
        at = end
        if kind == b"IEND":
            break
    if not chunks or chunks[-1][0] != b"IEND" or not any(k == b"IDAT" for k, _, _ in chunks):
        raise InputError("truncated PNG: no image data or no IEND chunk")
    return chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _itxt_text(body: bytes) -> bytes:
    """The text of an iTXt chunk (keyword, flags, language and translated keyword skipped)."""
    try:
        keyword_end = body.index(b"\x00")
        compressed = body[keyword_end + 1] == 1
        rest = body[keyword_end + 3:]
        rest = rest[rest.index(b"\x00") + 1:]  # language tag
        rest = rest[rest.index(b"\x00") + 1:]  # translated keyword
        return zlib.decompress(rest) if compressed else rest
    except (ValueError, IndexError, zlib.error):
        raise InputError("malformed PNG iTXt chunk holding XMP") from None


def _jpeg_xmp(data: bytes) -> bytes | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.info.get("xmp")
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise InputError("unreadable JPEG: its headers are truncated or corrupt") from None


def _property(root: ET.Element, name: str) -> str | None:
    """A simple or x-default language-alternative XMP property, written as an element or
    as an attribute of ``rdf:Description`` (both forms are valid XMP)."""
    prefix, local = name.split(":")
    tag = f"{{{NS[prefix]}}}{local}"
    for description in root.iter(f"{{{NS['rdf']}}}Description"):
        if tag in description.attrib:
            return description.attrib[tag]
        element = description.find(tag)
        if element is not None:
            item = element.find(f".//{{{NS['rdf']}}}li")
            return (item.text if item is not None else element.text or "").strip() or None
    return None
