"""The ponger under another name, so two of them answer each other."""

from __future__ import annotations

from agentlobby.agents import AgentSpec
from tests.support.agents import ponger

AGENT = AgentSpec(
    name="ponger_twin",
    description="Ponger under another name (tests only).",
    listens_to=ponger.AGENT.listens_to,
    handle=ponger.handle,
)
