"""An agent that answers every text once, whoever sent it: two of them play ping-pong forever
(a loop of depth, which the hop limit stops)."""

from __future__ import annotations

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.messages import Envelope, TextContent


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    return [Outgoing(content=TextContent(text=f"{ctx.agent} returns hop {message.hops}"))]


AGENT = AgentSpec(
    name="ponger",
    description="Answers every text once (tests only).",
    listens_to=frozenset({"text"}),
    handle=handle,
)
