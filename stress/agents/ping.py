"""Ping: answers the user and pong, once each time. With pong in the same lobby the two answer
each other forever, one message deep at a time: a loop of depth, which the hop limit stops."""

from __future__ import annotations

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.messages import USER_SENDER, Envelope, TextContent

PARTNER = "pong"


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    if message.sender not in (USER_SENDER, PARTNER):
        return []
    return [Outgoing(content=TextContent(text=f"{ctx.agent} at hop {message.hops + 1}"))]


AGENT = AgentSpec(
    name="ping",
    description="Answers the user and pong once (stress only: a loop of depth).",
    listens_to=frozenset({"text"}),
    handle=handle,
)
