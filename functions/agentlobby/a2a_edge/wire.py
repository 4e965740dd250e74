"""Protobuf messages to JSON and back, as the A2A SDK encodes them on the wire.

The SDK's types are protobuf messages; their JSON form (camelCase names, enums by name) is
protobuf's own JSON mapping. This is the one module of the library outside store/ that
imports google.protobuf: it is the A2A wire's encoding, not a Cloud SDK, and it raises
nothing but parse errors, which become the protocol's InvalidParams here.
"""

from __future__ import annotations

from typing import Any, TypeVar

from a2a.utils.errors import InvalidParamsError
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)
ProtoMessage = Message  # for the type hints of modules that must not import protobuf


def to_json(message: Message) -> dict[str, Any]:
    """The message as the SDK sends it: camelCase field names, enums by name."""
    encoded: dict[str, Any] = MessageToDict(message, preserving_proto_field_name=False)
    return encoded


def parse(params: Any, into: M) -> M:
    """`params` parsed into the message `into`; unknown fields are ignored, as the SDK's own
    server does (forward compatibility); a wrong type or value is InvalidParams."""
    if not isinstance(params, dict):
        raise InvalidParamsError(message="params must be a JSON object")
    try:
        ParseDict(params, into, ignore_unknown_fields=True)  # fills `into` in place
    except (ParseError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidParamsError(
            message=f"params are not a valid {into.DESCRIPTOR.name}: {exc}"
        ) from exc
    return into
