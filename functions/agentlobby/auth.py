"""Bearer tokens, compared in constant time as bytes: any header value is an answer, never a 500.

hmac.compare_digest refuses a str with a non-ASCII character (TypeError), so a hostile header
would crash the comparison before authentication; UTF-8 bytes compare whatever was sent.
"""

from __future__ import annotations

import hmac


def tokens_match(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None for any other shape."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
