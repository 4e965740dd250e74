"""The agent card of a lobby: who it is, where to call it, what its members do, how to log in.

    GET /a2a/{lobby}/.well-known/agent-card.json   -> 200 the card (no token: the card is
                                                      public, as A2A agents publish theirs)

Each member agent is a skill (its name, description and the message kinds it listens to as
tags). The card declares the one security scheme, `bearer` (HTTP Authorization: Bearer, the
user API's token), and requires it; one interface, JSON-RPC at the lobby's base URL, A2A 1.0,
with streaming. The base URL is AGENTLOBBY_PUBLIC_URL when set (a deployment behind a path or
a proxy), else the scheme and host the request came to.
"""

from __future__ import annotations

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
)
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, TransportProtocol

from agentlobby.a2a_edge.inbound import INPUT_MODES
from agentlobby.store.registry import AgentRecord

SCHEME = "bearer"
OUTPUT_MODES = ("text/plain", "application/json", "text/x-python")


def base_url(public_url: str | None, headers: dict[str, str], lobby: str) -> str:
    """Where this lobby's A2A agent answers, as a client outside must call it."""
    if public_url:
        root = public_url.rstrip("/")
    else:
        proto = headers.get("x-forwarded-proto", "http").split(",")[0].strip() or "http"
        host = headers.get("x-forwarded-host") or headers.get("host") or "localhost"
        root = f"{proto}://{host.split(',')[0].strip()}"
    return f"{root}/a2a/{lobby}"


def lobby_card(lobby: str, members: list[AgentRecord], url: str) -> AgentCard:
    takes_tasks = any("task" in member.listens_to for member in members)
    what = "a coding task" if takes_tasks else "a message"
    names = ", ".join(member.name for member in members) or "no agents yet"
    card = AgentCard(
        name=f"agentlobby {lobby}",
        description=(
            f"The lobby {lobby!r} of agentlobby ({names}). Send {what}: every member gets it, and "
            "the conversation is the task."
        ),
        version="1.0",
        capabilities=AgentCapabilities(
            streaming=True, push_notifications=False, extended_agent_card=False
        ),
        default_input_modes=list(INPUT_MODES),
        default_output_modes=list(OUTPUT_MODES),
        supported_interfaces=[
            AgentInterface(
                url=url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_CURRENT,
            )
        ],
    )
    card.security_schemes[SCHEME].CopyFrom(
        SecurityScheme(
            http_auth_security_scheme=HTTPAuthSecurityScheme(
                scheme="Bearer",
                description="the user API's token (AGENTLOBBY_API_TOKEN; `agentlobby env`)",
            )
        )
    )
    requirement = SecurityRequirement()
    requirement.schemes[SCHEME].SetInParent()
    card.security_requirements.append(requirement)
    for member in members:
        card.skills.append(
            AgentSkill(
                id=member.name,
                name=member.name,
                description=member.description or f"the {member.name} agent",
                tags=list(member.listens_to) or ["text"],
            )
        )
    return card
