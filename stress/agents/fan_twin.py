"""Fan under another name, so two of them answer each other (see fan.py)."""

from __future__ import annotations

from agentlobby.agents import AgentSpec
from stress.agents import fan

AGENT = AgentSpec(
    name="fan_twin",
    description="Fan under another name (stress only: a loop of breadth).",
    listens_to=fan.AGENT.listens_to,
    handle=fan.handle,
)
