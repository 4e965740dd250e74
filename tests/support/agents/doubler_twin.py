"""The doubler under another name, so two of them answer each other."""

from __future__ import annotations

from agentlobby.agents import AgentSpec
from tests.support.agents import doubler

AGENT = AgentSpec(
    name="doubler_twin",
    description="Doubler under another name (tests only).",
    listens_to=doubler.AGENT.listens_to,
    handle=doubler.handle,
)
