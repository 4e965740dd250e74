"""A second echo agent under another name: two echoes in one lobby must not answer each other."""

from __future__ import annotations

from agentlobby.agents import AgentSpec, echo

AGENT = AgentSpec(
    name="echo_twin",
    description="Echo under another name (tests only).",
    listens_to=echo.AGENT.listens_to,
    handle=echo.handle,
)
