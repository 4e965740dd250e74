"""The routes under /a2a: each lobby's card and its JSON-RPC endpoint.

    GET  /a2a/{lobby}/.well-known/agent-card.json   the card; public (no token)
    POST /a2a/{lobby}                                JSON-RPC (rpc.py); needs the bearer token

routes.py hands every /a2a path here before its own token check, with whether the request
carried the right token: the card is public, the endpoint is not. A request without the token
answers 401 with `WWW-Authenticate: Bearer` (what the SDK client raises as an HTTP error), and
a JSON-RPC error object saying what to send.
"""

from __future__ import annotations

import re
from typing import Any

from a2a.server.request_handlers.response_helpers import agent_card_to_dict, build_error_response
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from a2a.utils.errors import InvalidRequestError

from agentlobby.a2a_edge import rpc
from agentlobby.a2a_edge.card import base_url, lobby_card
from agentlobby.config import Settings
from agentlobby.errors import TransientError, UnknownLobby
from agentlobby.messages import check_lobby_name
from agentlobby.store.registry import Registry

_CARD = re.compile(r"^/a2a/([^/]+)" + re.escape(AGENT_CARD_WELL_KNOWN_PATH) + "$")
_ENDPOINT = re.compile(r"^/a2a/([^/]+)/?$")
UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="agentlobby"'}


def serve(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    config: Settings,
    authorized: bool,
) -> rpc.Answer:
    if (match := _CARD.match(path)) is not None:
        if method not in ("GET", "HEAD"):
            return {"error": f"method {method} not allowed on {path}: GET it"}, 405
        return _card(match.group(1), headers, config)
    if (match := _ENDPOINT.match(path)) is not None:
        if method != "POST":
            return {
                "error": f"method {method} not allowed on {path}: POST JSON-RPC requests here; "
                f"the agent card is at {path.rstrip('/')}{AGENT_CARD_WELL_KNOWN_PATH}"
            }, 405
        if not authorized:
            refusal = InvalidRequestError(
                message="missing or wrong bearer token: send 'Authorization: Bearer <token>' "
                "(the user API's token; `agentlobby env` prints it)"
            )
            return build_error_response(None, refusal), 401, UNAUTHORIZED
        lobby = match.group(1)
        if not _is_lobby_name(lobby):
            return rpc.error(None, rpc.translated(UnknownLobby(lobby)))
        return rpc.answer(lobby, headers, body, config)
    return {"error": f"no route {method} {path}: a lobby's A2A agent is at /a2a/LOBBY"}, 404


def _card(lobby: str, headers: dict[str, str], config: Settings) -> tuple[dict[str, Any], int]:
    if not _is_lobby_name(lobby):
        return {"error": str(UnknownLobby(lobby))}, 404
    registry = Registry(config.project)
    try:
        registry.lobby(lobby)
        members = registry.agents_named(registry.members(lobby))
    except UnknownLobby as exc:
        return {"error": str(exc)}, 404
    except TransientError as exc:
        return {"error": f"temporarily unavailable, retry: {exc}"}, 503
    card = lobby_card(lobby, members, base_url(config.public_url, headers, lobby))
    return agent_card_to_dict(card), 200


def _is_lobby_name(lobby: str) -> bool:
    try:
        check_lobby_name(lobby)
    except ValueError:
        return False
    return True
