"""An answer that is not JSON: the page's files, or a stream of server-sent events.

Handlers answer `(body, status)` for JSON; the page's routes answer a RawAnswer instead, and
flask_app.respond() sends its bytes (or streams its chunks) with its content type as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RawAnswer:
    """Bytes (a file) or an iterable of chunks (a stream), sent with `content_type`."""

    body: bytes | Iterable[bytes]
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


# What a JSON handler answers: (body, status), or (body, status, headers) for a 429's
# Retry-After and the like; every HTTP handler answers this or a RawAnswer (flask_app.respond).
JsonAnswer = tuple[dict[str, Any], int] | tuple[dict[str, Any], int, dict[str, str]]
