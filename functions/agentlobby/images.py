"""What an image really is: its format from its magic bytes and its size from its header.

A task's image is checked at the HTTP boundary, so a file that is not the image its mime type
says (or is too big to describe) is refused with a 422 there, instead of failing later at the
vision agent or at the model. Headers only, standard library only: no image is decoded.
"""

from __future__ import annotations

import struct

MAX_IMAGE_BYTES = 600_000  # base64 of it still fits one transcript document
MAX_IMAGE_SIDE = 8_192  # pixels, either side


def image_size(mime_type: str, data: bytes) -> tuple[int, int]:
    """(width, height) read from the header; ValueError says what does not fit."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"the image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}")
    readers = {
        "image/png": _png,
        "image/jpeg": _jpeg,
        "image/gif": _gif,
        "image/webp": _webp,
    }
    reader = readers.get(mime_type)
    if reader is None:
        raise ValueError(f"{mime_type!r} is not one of {', '.join(readers)}")
    try:
        width, height = reader(data)
    except (struct.error, IndexError) as exc:
        raise ValueError(f"the data is not a whole {mime_type} header") from exc
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise ValueError(
            f"the image is {width}x{height} pixels; each side must be 1 to {MAX_IMAGE_SIDE}"
        )
    return width, height


def _expect(data: bytes, magic: bytes, mime_type: str) -> None:
    if not data.startswith(magic):
        raise ValueError(f"the data does not start like a {mime_type} file: check the mime type")


def _png(data: bytes) -> tuple[int, int]:
    _expect(data, b"\x89PNG\r\n\x1a\n", "image/png")
    if data[12:16] != b"IHDR":
        raise ValueError("the PNG has no IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _gif(data: bytes) -> tuple[int, int]:
    if not data.startswith((b"GIF87a", b"GIF89a")):
        raise ValueError("the data does not start like a image/gif file: check the mime type")
    width, height = struct.unpack("<HH", data[6:10])
    return int(width), int(height)


def _webp(data: bytes) -> tuple[int, int]:
    if not (data.startswith(b"RIFF") and data[8:12] == b"WEBP"):
        raise ValueError("the data does not start like a image/webp file: check the mime type")
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    raise ValueError(f"the WebP chunk {chunk!r} is not VP8, VP8L or VP8X")


def _jpeg(data: bytes) -> tuple[int, int]:
    _expect(data, b"\xff\xd8", "image/jpeg")
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ValueError("the JPEG's markers are broken")
        marker = data[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers with no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + length
    raise ValueError("the JPEG has no frame header (SOF) with its size")
