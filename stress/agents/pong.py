"""Pong: answers ping, once each time (see ping.py)."""

from __future__ import annotations

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.messages import Envelope, TextContent


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    if message.sender != "ping":
        return []
    return [Outgoing(content=TextContent(text=f"{ctx.agent} at hop {message.hops + 1}"))]


AGENT = AgentSpec(
    name="pong",
    description="Answers ping once (stress only: a loop of depth).",
    listens_to=frozenset({"text"}),
    handle=handle,
)
