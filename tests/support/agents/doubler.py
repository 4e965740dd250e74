"""An agent that answers every text twice, whoever sent it: two of them multiply a conversation
(a loop of breadth, which the hop limit alone does not stop soon)."""

from __future__ import annotations

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.messages import Envelope, TextContent


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    text = f"{ctx.agent} heard {message.id[:6]}"
    return [Outgoing(content=TextContent(text=f"{text} ({n})")) for n in (1, 2)]


AGENT = AgentSpec(
    name="doubler",
    description="Answers every text twice (tests only).",
    listens_to=frozenset({"text"}),
    handle=handle,
)
