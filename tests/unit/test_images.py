"""An image is the image its mime type says, of a size within the limits, or a 422 at once."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from agentlobby.api import routes
from agentlobby.config import load_settings
from agentlobby.images import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, image_size
from tests.support.paths import REPO


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + ihdr


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def webp_lossless(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + struct.pack("<I", bits)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


@pytest.mark.parametrize(
    ("mime", "data"),
    [
        ("image/png", png(640, 480)),
        ("image/jpeg", jpeg(640, 480)),
        ("image/gif", gif(640, 480)),
        ("image/webp", webp_lossless(640, 480)),
    ],
)
def test_each_format_gives_its_size(mime: str, data: bytes) -> None:
    assert image_size(mime, data) == (640, 480)


def test_the_demo_image_is_a_32_pixel_png() -> None:
    data = Path(REPO / "local_emulator" / "demo_assets" / "checkerboard.png").read_bytes()
    assert image_size("image/png", data) == (32, 32)


@pytest.mark.parametrize(
    ("mime", "data", "problem"),
    [
        ("image/jpeg", png(10, 10), "does not start like a image/jpeg file"),
        ("image/png", b"GIF89a....", "does not start like a image/png file"),
        ("image/png", b"\x89PNG\r\n\x1a\n", "no IHDR header"),
        ("image/png", png(MAX_IMAGE_SIDE + 1, 10), f"each side must be 1 to {MAX_IMAGE_SIDE}"),
        ("image/gif", gif(0, 10), "each side must be 1"),
        ("image/jpeg", b"\xff\xd8\xff\xd9", "no frame header"),
        ("image/png", b"\x00" * (MAX_IMAGE_BYTES + 1), f"the limit is {MAX_IMAGE_BYTES}"),
        ("image/webp", b"RIFF\x00\x00\x00\x00WEBPXXXX", "is not VP8"),
    ],
)
def test_what_is_not_the_image_it_claims_says_why(mime: str, data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        image_size(mime, data)


def test_the_user_api_refuses_a_mislabelled_image_before_any_backend() -> None:
    import base64
    import json

    config = load_settings({"AGENTLOBBY_API_TOKEN": "t", "AGENTLOBBY_PROJECT": "no-io-here"})
    image = {"mime_type": "image/jpeg", "data_base64": base64.b64encode(png(4, 4)).decode()}
    body = json.dumps({"text": "what is this", "image": image}).encode()
    answer, status = routes.handle_request(
        "POST", "/lobbies/coding/messages", {"authorization": "Bearer t"}, body, config
    )
    assert status == 422
    assert "invalid image: the data does not start like a image/jpeg file" in answer["error"]
