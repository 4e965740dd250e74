"""The OpenAI chat completions wire format, as far as the offline model server needs it.

Requests are checked about as strictly as the real API checks them (a missing model, a
streaming request, a malformed image data URL are 400s), because an agent bug that the real
API would reject should fail in the tests too, not first in production. Answers are built in
the exact shapes the `openai` client parses: chat.completion objects and `{"error": {...}}`.

Token counts are deterministic, ceil(characters / 4), so token budget tests are stable.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from local_emulator.model_server.script import Reply

__all__ = [
    "Answer",
    "ChatRequest",
    "completion_body",
    "count_tokens",
    "error_answer",
    "json_answer",
    "parse_chat_request",
]

_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_IGNORED_PARTS = {"input_audio", "file", "refusal"}  # accepted, but carry no text to match
_DATA_URL = re.compile(r"data:image/(?:png|jpeg|jpg|gif|webp);base64,(.*)", re.DOTALL)
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, JSON body bytes, extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatRequest:
    """What the server needs from a chat completions request."""

    model: str
    text: str  # the text parts of every message, in order, joined by newlines
    last_user_text: str
    has_image: bool
    prompt_chars: int


def count_tokens(chars: int) -> int:
    """The offline tokenizer: one token per four characters, rounded up."""
    return math.ceil(chars / 4)


def json_answer(status: int, data: object, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(data, ensure_ascii=False).encode(), dict(headers or {}))


def error_answer(
    status: int,
    message: str,
    *,
    kind: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """An error in the OpenAI shape, which the openai client turns into its APIStatusError."""
    kind = kind or ("server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind, "param": param, "code": code}
    return json_answer(status, {"error": error}, headers)


def completion_body(completion_id: str, request: ChatRequest, reply: Reply) -> dict[str, Any]:
    """A chat.completion object answering `request` with `reply`."""
    content = reply.content or ""
    forced = reply.usage
    prompt = forced.prompt_tokens if forced and forced.prompt_tokens is not None else None
    completion = (
        forced.completion_tokens if forced and forced.completion_tokens is not None else None
    )
    if prompt is None:
        prompt = count_tokens(request.prompt_chars)
    if completion is None:
        completion = count_tokens(len(content))
    message = {"role": "assistant", "content": content, "refusal": None}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": "agentlobby-offline",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def parse_chat_request(body: bytes) -> ChatRequest | Answer:
    """The request, or the 400 answer that says what is wrong with it."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return error_answer(400, "the request body is not valid JSON")
    if not isinstance(data, dict):
        return error_answer(400, "the request body must be a JSON object")
    if data.get("stream"):
        return error_answer(
            400,
            "stream=true is not supported by the offline model server: "
            "call chat.completions.create without stream",
            param="stream",
            code="stream_unsupported",
        )
    model = data.get("model")
    if not isinstance(model, str) or not model:
        return error_answer(400, "missing required parameter: 'model'", param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        return error_answer(400, "'messages' must be a non-empty list", param="messages")
    pieces: list[str] = []
    last_user: list[str] = []
    has_image = False
    for i, message in enumerate(messages):
        parsed = _message_text(message, f"messages[{i}]")
        if isinstance(parsed, Answer):
            return parsed
        texts, image = parsed
        pieces.extend(texts)
        has_image = has_image or image
        if message["role"] == "user":
            last_user = texts
    return ChatRequest(
        model=model,
        text="\n".join(pieces),
        last_user_text="\n".join(last_user),
        has_image=has_image,
        prompt_chars=sum(len(p) for p in pieces),
    )


def _message_text(message: object, where: str) -> tuple[list[str], bool] | Answer:
    """The text pieces of one message and whether it holds an image."""
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        return error_answer(400, f"{where} must be an object with a valid 'role'", param=where)
    content = message.get("content")
    if content is None and message["role"] in ("assistant", "function"):
        return [], False
    if isinstance(content, str):
        return [content], False
    if not isinstance(content, list):
        return error_answer(400, f"{where}.content must be a string or a list", param=where)
    texts: list[str] = []
    has_image = False
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            problem = _image_problem(part.get("image_url"))
            if problem:
                return error_answer(400, f"{here}: {problem}", param=here, code="invalid_image")
            has_image = True
        elif kind not in _IGNORED_PARTS:
            return error_answer(400, f"{here}: unsupported content part {kind!r}", param=here)
    return texts, has_image


def _image_problem(image_url: object) -> str | None:
    """Why an image_url part would be refused, or None when it is fine."""
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if not isinstance(url, str):
        return "image_url must be an object with a 'url' string"
    if url.startswith(("http://", "https://")):
        return None  # not fetched: the server is offline
    found = _DATA_URL.fullmatch(url)
    if found is None:
        return "the url must be http(s) or data:image/{png,jpeg,gif,webp};base64,..."
    try:
        data = binascii.a2b_base64(found.group(1), strict_mode=True)
    except binascii.Error as exc:
        return f"the data URL is not valid base64 ({exc})"
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if not (data.startswith(_IMAGE_MAGIC) or is_webp):
        return "the data URL does not hold a PNG, JPEG, GIF or WebP image"
    return None
