"""The JSON-RPC 2.0 envelope of a lobby's A2A endpoint: parse, route, answer, fail.

    POST /a2a/{lobby}  {"jsonrpc": "2.0", "id": ..., "method": "SendMessage", "params": {...}}
                       -> 200 {"jsonrpc": "2.0", "id": ..., "result": ...}
                       -> 200 text/event-stream of such answers (SendStreamingMessage,
                          SubscribeToTask)
                       -> 200 {"jsonrpc": "2.0", "id": ..., "error": {"code", "message", "data"}}

Errors are the SDK's own objects (a2a.utils.errors, encoded by its build_error_response), and
answer 200 as the SDK's server does: -32700 bad JSON, -32600 not a request (or too large, or
an unknown lobby), -32601 an unknown method, -32602 bad params, -32001 an unknown task,
-32002 a task that cannot be cancelled, -32003 push notifications, -32004 an operation not
served, -32005 a part the lobby cannot take, -32009 an A2A-Version other than 1.x, -32603 the
backend briefly unavailable. A bad request never reaches Firestore, and never answers 5xx.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from a2a.server.jsonrpc_models import JSONParseError as JSONRPCParseError
from a2a.server.request_handlers.response_helpers import build_error_response
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
)
from a2a.utils.constants import VERSION_HEADER
from a2a.utils.errors import (
    A2AError,
    ExtendedAgentCardNotConfiguredError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    JSONParseError,
    MethodNotFoundError,
    PushNotificationNotSupportedError,
    TaskNotFoundError,
    UnsupportedOperationError,
    VersionNotSupportedError,
)
from a2a.utils.proto_utils import to_stream_response, validate_proto_required_fields

from agentlobby.a2a_edge import methods
from agentlobby.a2a_edge.stream import Event
from agentlobby.a2a_edge.wire import ProtoMessage, parse, to_json
from agentlobby.api.events import EVENT_STREAM, HEADERS
from agentlobby.api.posting import post_limited
from agentlobby.api.raw import JsonAnswer, RawAnswer
from agentlobby.config import Settings
from agentlobby.errors import (
    AgentlobbyError,
    InvalidMessage,
    PayloadTooLarge,
    TransientError,
    UnknownConversation,
    UnknownLobby,
)
from agentlobby.messages import MAX_ENVELOPE_BYTES

log = logging.getLogger(__name__)

Answer = JsonAnswer | RawAnswer
RequestId = str | int | None
Unary = Callable[[str, Any, Settings], dict[str, Any]]
Streaming = Callable[[str, Any, Settings], Iterator[Event | None]]

MAX_BODY_BYTES = MAX_ENVELOPE_BYTES  # the same limit as POST /lobbies/{lobby}/messages
UNARY: dict[str, tuple[type[ProtoMessage], Unary]] = {
    "SendMessage": (SendMessageRequest, methods.send),
    "GetTask": (GetTaskRequest, methods.get),
    "CancelTask": (CancelTaskRequest, methods.cancel),
}
STREAMING: dict[str, tuple[type[ProtoMessage], Streaming]] = {
    "SendStreamingMessage": (SendMessageRequest, methods.send_streaming),
    "SubscribeToTask": (SubscribeToTaskRequest, methods.subscribe),
}
POSTS = ("SendMessage", "SendStreamingMessage")
# A2A methods a lobby does not serve: the protocol's own error for each, not "no such method".
UNSERVED: dict[str, A2AError] = {
    "ListTasks": UnsupportedOperationError(
        message="ListTasks is not served: GET /conversations on the user API lists them"
    ),
    "GetExtendedAgentCard": ExtendedAgentCardNotConfiguredError(
        message="a lobby has no extended card: its public card says everything"
    ),
    **{
        name: PushNotificationNotSupportedError(
            message="a lobby sends no push notifications: stream with SendStreamingMessage or "
            "SubscribeToTask"
        )
        for name in (
            "CreateTaskPushNotificationConfig",
            "GetTaskPushNotificationConfig",
            "ListTaskPushNotificationConfigs",
            "DeleteTaskPushNotificationConfig",
        )
    },
}


def error(request_id: RequestId, exc: A2AError, status: int = 200) -> tuple[dict[str, Any], int]:
    if isinstance(exc, JSONParseError):  # the SDK encodes only its JSON-RPC model of this one
        return build_error_response(request_id, JSONRPCParseError(message=exc.message)), status
    return build_error_response(request_id, exc), status


def answer(lobby: str, headers: dict[str, str], body: bytes, config: Settings) -> Answer:
    """Answer one JSON-RPC request to the lobby's endpoint (the token was checked)."""
    request_id: RequestId = None
    try:
        decoded = _decode(body)
        request_id = _request_id(decoded)
        name = _method(decoded)
        params = decoded.get("params", {})
        if name in UNARY:
            model, unary = UNARY[name]
            request = _request(params, model, headers)
            if name in POSTS and (limited := post_limited(headers, config)):
                return _limited(request_id, limited)
            result = unary(lobby, request, config)
            return {"jsonrpc": "2.0", "id": request_id, "result": result}, 200
        if name in STREAMING:
            model, streaming = STREAMING[name]
            request = _request(params, model, headers)
            if name in POSTS and (limited := post_limited(headers, config)):
                return _limited(request_id, limited)
            events = streaming(lobby, request, config)  # its errors come before the stream
            return RawAnswer(_sse(request_id, events), EVENT_STREAM, headers=HEADERS)
        if name in UNSERVED:
            raise UNSERVED[name]
        raise MethodNotFoundError(
            message=f"no method {name!r}: a lobby serves {', '.join([*UNARY, *STREAMING])}"
        )
    except A2AError as exc:
        return error(request_id, exc)
    except AgentlobbyError as exc:
        return error(request_id, translated(exc))


def translated(exc: AgentlobbyError) -> A2AError:
    """Our error as the protocol's: who must act stays the same."""
    if isinstance(exc, UnknownLobby):
        return InvalidRequestError(message=f"no A2A agent here: {exc}", data={"lobby": exc.lobby})
    if isinstance(exc, UnknownConversation):
        return TaskNotFoundError(message=f"no task {exc.conversation_id!r} in this lobby")
    if isinstance(exc, PayloadTooLarge):
        return InvalidRequestError(message=f"Payload too large: {exc}")
    if isinstance(exc, InvalidMessage):
        return InvalidParamsError(message=str(exc))
    if isinstance(exc, TransientError):
        log.warning("backend unavailable: %s", exc)
        return InternalError(message=f"temporarily unavailable, retry: {exc}")
    return InvalidRequestError(message=str(exc))


def _decode(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequestError(
            message=f"Payload too large: the body is {len(body)} bytes; the limit is "
            f"{MAX_BODY_BYTES}"
        )
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, digits
        raise JSONParseError(message=f"the body is not JSON: {exc}") from exc
    if isinstance(decoded, list):
        raise InvalidRequestError(message="Batch requests are not supported: send one object")
    if not isinstance(decoded, dict):
        raise InvalidRequestError(message="a JSON-RPC request is a JSON object")
    return decoded


def _request_id(decoded: dict[str, Any]) -> RequestId:
    raw = decoded.get("id")
    if raw is None or (isinstance(raw, str | int) and not isinstance(raw, bool)):
        return raw
    raise InvalidRequestError(message="Invalid request: id must be a string, integer, or null")


def _method(decoded: dict[str, Any]) -> str:
    if decoded.get("jsonrpc") != "2.0":
        raise InvalidRequestError(message="Invalid request: 'jsonrpc' must be exactly '2.0'")
    name = decoded.get("method")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(message="Invalid request: 'method' must be a non-empty string")
    if "params" in decoded and not isinstance(decoded["params"], dict):
        raise InvalidRequestError(message="Invalid request: 'params' must be a JSON object")
    return name


def _request(params: dict[str, Any], model: type[ProtoMessage], headers: dict[str, str]) -> Any:
    """The params as the method's request message, every required field there, for A2A 1.x."""
    request = parse(params, model())
    try:
        validate_proto_required_fields(request)
    except InvalidParamsError as exc:  # the SDK says "Validation failed"; say which fields
        errors = (exc.data or {}).get("errors", [])
        missing = ", ".join(str(e.get("field")) for e in errors) or "a field"
        raise InvalidParamsError(
            message=f"required and missing or empty: {missing}", data=exc.data
        ) from exc
    version = headers.get(VERSION_HEADER.lower(), "") or "0.3"  # no header: 0.3, says the spec
    if version.split(".")[0] != "1":
        raise VersionNotSupportedError(
            message=f"A2A version {version!r} is not served: send the header '{VERSION_HEADER}: "
            "1.0' (the official a2a-sdk client does)"
        )
    return request


def _limited(
    request_id: RequestId, limited: tuple[dict[str, str], int, dict[str, str]]
) -> tuple[dict[str, Any], int, dict[str, str]]:
    body, status, extra = limited
    refusal = InvalidRequestError(message=body["error"])
    return build_error_response(request_id, refusal), status, extra


def _sse(request_id: RequestId, events: Iterator[Event | None]) -> Iterator[bytes]:
    """Each event as one `data:` line holding a JSON-RPC answer, as the SDK's server sends
    them; keepalives as comments; an error half-way as an `error` event, then the end."""
    try:
        for event in events:
            if event is None:
                yield b": keepalive\n\n"
                continue
            result = to_json(to_stream_response(event))
            yield _frame({"jsonrpc": "2.0", "id": request_id, "result": result})
    except (A2AError, AgentlobbyError) as exc:
        log.warning("A2A stream ended by an error: %s", exc)
        failure = exc if isinstance(exc, A2AError) else translated(exc)
        yield _frame(error(request_id, failure)[0], event="error")


def _frame(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
