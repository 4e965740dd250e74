"""The echo agent: re-sends every user message back to its lobby, never an agent's message.

Answering only `sender == "user"` is what keeps two echo agents in one lobby from looping.
"""

from __future__ import annotations

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.messages import USER_SENDER, Envelope


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    if message.sender != USER_SENDER:
        return []
    return [Outgoing(content=message.content)]


AGENT = AgentSpec(
    name="echo",
    description="Re-sends every user message to the lobby it came from.",
    listens_to=frozenset({"text", "image", "attachment", "code"}),
    handle=handle,
    default_lobbies=("chat",),
)
