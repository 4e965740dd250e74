"""An A2A message from a client, turned into the PostMessage a lobby takes. No I/O.

A lobby takes what POST /lobbies/{lobby}/messages takes, in A2A parts:

    text part (text/*)              the message's text; several are joined by blank lines
    data part, a JSON object        a coding task's fields: tests, max_rounds, token_budget,
                                    cost_budget (as in docs/messages.md)
    raw part, an image              the task's image (image/png, image/jpeg, image/gif,
                                    image/webp; at most one)

Anything else (a file by URL, a raw file of another type, a text part of a binary type) is
ContentTypeNotSupported; a malformed message is InvalidParams. Both are raised before anything
is read or written.
"""

from __future__ import annotations

import base64
from typing import Any

from a2a.types import Message, Role
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError
from pydantic import ValidationError

from agentlobby.api.schema import PostMessage
from agentlobby.messages import IMAGE_MIME_TYPES, describe_validation_error

TASK_FIELDS = ("tests", "max_rounds", "token_budget", "cost_budget")
INPUT_MODES = ("text/plain", "application/json", *IMAGE_MIME_TYPES)
MAX_MESSAGE_ID_CHARS = 200


def post_of(message: Message, conversation_id: str | None) -> PostMessage:
    """The post this message asks for, in `conversation_id` (None: a new conversation)."""
    if message.role != Role.ROLE_USER:
        raise InvalidParamsError(
            message=f"message.role is {Role.Name(message.role)}: a client sends ROLE_USER"
        )
    if not message.message_id or len(message.message_id) > MAX_MESSAGE_ID_CHARS:
        raise InvalidParamsError(
            message=f"message.messageId must be 1 to {MAX_MESSAGE_ID_CHARS} characters "
            "(a UUID is usual): it makes a retried send a no-op"
        )
    if not message.parts:
        raise InvalidParamsError(message="message.parts is empty: send at least one text part")
    texts: list[str] = []
    fields: dict[str, Any] = {}
    image: dict[str, str] | None = None
    for index, part in enumerate(message.parts):
        where = f"message.parts[{index}]"
        kind = part.WhichOneof("content")
        media_type = part.media_type
        if kind == "text":
            if media_type and not media_type.startswith("text/"):
                raise ContentTypeNotSupportedError(
                    message=f"{where} is text of type {media_type!r}: send text as text/plain"
                )
            texts.append(part.text)
        elif kind == "data":
            fields.update(_task_fields(part.data, where, fields))
        elif kind == "raw":
            if media_type not in IMAGE_MIME_TYPES:
                raise ContentTypeNotSupportedError(
                    message=f"{where} is a file of type {media_type or 'unknown'!r}: this lobby "
                    f"takes only images ({', '.join(IMAGE_MIME_TYPES)}) as files"
                )
            if image is not None:
                raise InvalidParamsError(message=f"{where} is a second image: a task takes one")
            image = {
                "mime_type": media_type,
                "data_base64": base64.b64encode(part.raw).decode("ascii"),
            }
        elif kind == "url":
            raise ContentTypeNotSupportedError(
                message=f"{where} is a file by URL: the lobby fetches nothing; send an image's "
                "bytes as a raw part"
            )
        else:
            raise InvalidParamsError(message=f"{where} has no content: set text, data or raw")
    text = "\n\n".join(t for t in texts if t)
    if not text:
        raise InvalidParamsError(message="the message has no text: add a text part saying what")
    try:
        return PostMessage.model_validate(
            {"text": text, "conversation_id": conversation_id, "image": image, **fields}
        )
    except ValidationError as exc:
        raise InvalidParamsError(message=describe_validation_error(exc, "message")) from exc


def _task_fields(data: Any, where: str, seen: dict[str, Any]) -> dict[str, Any]:
    """A data part's task fields (a protobuf Value holding a JSON object)."""
    if data.WhichOneof("kind") != "struct_value":
        raise InvalidParamsError(
            message=f"{where} is data but not a JSON object: send e.g. "
            '{"tests": "assert f(1) == 2", "max_rounds": 3}'
        )
    fields: dict[str, Any] = {}
    for key, value in data.struct_value.items():
        if key not in TASK_FIELDS:
            raise InvalidParamsError(
                message=f"{where} has the field {key!r}; a task's data takes "
                f"{', '.join(TASK_FIELDS)}"
            )
        if key in seen:
            raise InvalidParamsError(message=f"{where} gives {key!r} a second time")
        # protobuf numbers are floats: a whole number is meant as an integer field
        fields[key] = int(value) if key != "cost_budget" and _whole(value) else value
    return fields


def _whole(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer() and abs(value) < 2**53
