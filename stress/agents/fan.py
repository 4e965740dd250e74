"""Fan and fan_twin: answer every message twice, whoever sent it (but themselves). Two of them
double the conversation at each hop: a loop of breadth, which the message limit stops long
before the hop limit would."""

from __future__ import annotations

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.messages import Envelope, TextContent


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    heard = f"{ctx.agent} heard {message.id[:6]}"
    return [Outgoing(content=TextContent(text=f"{heard} ({n})")) for n in (1, 2)]


AGENT = AgentSpec(
    name="fan",
    description="Answers every message twice (stress only: a loop of breadth).",
    listens_to=frozenset({"text"}),
    handle=handle,
)
