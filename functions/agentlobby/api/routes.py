"""The user agent's HTTP trigger: post a message to a lobby, read a conversation.

    POST /lobbies/{lobby}/messages   {"text": ..., "conversation_id"?: ..., coding fields?}
                                      -> 202 {"conversation_id", "message_id"}
    GET  /conversations/{id}          -> 200 {"conversation_id", "status", "messages": [...], ...}
    GET  /healthz                     -> 200 (no token needed)
    GET  /openapi.json                -> 200 this API as an OpenAPI 3.1 document (no token needed)
    GET  /, /page/..., /lobbies, /conversations, .../events: the page and its data (api/page.py)
    GET  /a2a/{lobby}/.well-known/agent-card.json, POST /a2a/{lobby}: each lobby as an A2A
                                      agent (a2a_edge/, docs/a2a.md)

Every other request needs `Authorization: Bearer <AGENTLOBBY_API_TOKEN>`. With
`AGENTLOBBY_POST_RATE_LIMIT` set, a token's posts past it in a minute answer 429 with
`Retry-After` (rate_limits.py); reads are not limited. Bodies are
validated before anything is written; errors answer 4xx with {"error": "..."} saying what to
fix. A post is stored in the transcript before it is published, so the transcript never
misses a message that agents saw. An `Idempotency-Key` header makes a retried post a no-op.
"""

from __future__ import annotations

import logging
import re

from agentlobby.api import page
from agentlobby.api.openapi import document
from agentlobby.api.overview import read_conversation
from agentlobby.api.posting import parse_post, post_limited, post_message
from agentlobby.api.raw import JsonAnswer, RawAnswer
from agentlobby.api.traces import conversation_trace
from agentlobby.auth import bearer_token, tokens_match
from agentlobby.config import Settings
from agentlobby.errors import (
    AgentlobbyError,
    InvalidMessage,
    PayloadTooLarge,
    TransientError,
    UnknownConversation,
    UnknownLobby,
)
from agentlobby.logs import configure
from agentlobby.messages import MESSAGE_ID
from agentlobby.tracing import flush, setup

log = logging.getLogger(__name__)

Response = JsonAnswer
_POST = re.compile(r"^/lobbies/([^/]+)/messages/?$")
_GET = re.compile(r"^/conversations/([^/]+)/?$")
_TRACE = re.compile(r"^/conversations/([^/]+)/trace/?$")


def handle_request(
    method: str, path: str, headers: dict[str, str], body: bytes, config: Settings
) -> Response | RawAnswer:
    """Route one request; pure apart from Firestore and Pub/Sub, so tests can drive it."""
    configure(config.log_level)
    setup(config, "user")
    if path.rstrip("/") == "/healthz":
        return {"status": "ok"}, 200
    if path.rstrip("/") == "/openapi.json":
        if method not in ("GET", "HEAD"):
            return {"error": f"method {method} not allowed on {path}: GET it"}, 405
        return document(), 200
    if (shell := page.shell(method, path)) is not None:  # the page's files hold no data
        return shell
    if path == "/a2a" or path.startswith("/a2a/"):  # each lobby as an A2A agent: docs/a2a.md
        from agentlobby.a2a_edge.edge import serve  # the SDK loads only for A2A requests

        return serve(method, path, headers, body, config, _authorized(headers, config))
    if not _authorized(headers, config):
        return {"error": "missing or wrong bearer token: send 'Authorization: Bearer <token>'"}, 401
    try:
        if (answer := page.data(method, path, config)) is not None:
            return answer
        if (match := _POST.match(path)) and method == "POST":
            if limited := post_limited(headers, config):
                return limited
            try:
                return _post(match.group(1), headers, body, config)
            finally:
                flush()
        if (match := _GET.match(path)) and method == "GET":
            return _get(match.group(1), config)
        if (match := _TRACE.match(path)) and method == "GET":
            return _trace(match.group(1), config)
        if _POST.match(path) or _GET.match(path) or _TRACE.match(path):
            return {"error": f"method {method} not allowed on {path}"}, 405
        return {"error": f"no route {method} {path}: see docs/messages.md for the HTTP API"}, 404
    except (UnknownLobby, UnknownConversation) as exc:
        return {"error": str(exc)}, 404
    except PayloadTooLarge as exc:
        return {"error": str(exc)}, 413
    except InvalidMessage as exc:
        return {"error": str(exc)}, 422
    except TransientError as exc:
        log.warning("backend unavailable: %s", exc)
        return {"error": f"temporarily unavailable, retry: {exc}"}, 503
    except AgentlobbyError as exc:
        return {"error": str(exc)}, 400


def _authorized(headers: dict[str, str], config: Settings) -> bool:
    if config.api_token is None:
        return False
    token = bearer_token(headers.get("authorization", ""))
    return token is not None and tokens_match(token, config.api_token)


def _post(lobby: str, headers: dict[str, str], body: bytes, config: Settings) -> Response:
    posted = post_message(lobby, parse_post(body), headers.get("idempotency-key"), config)
    return posted.model_dump(), 202


def _get(conversation_id: str, config: Settings) -> Response:
    return read_conversation(config, conversation_id), 200


def _trace(conversation_id: str, config: Settings) -> Response:
    if not MESSAGE_ID.fullmatch(conversation_id):
        raise UnknownConversation(conversation_id)
    return conversation_trace(conversation_id, config).model_dump(mode="json"), 200
