"""Agents: each module declares one agent (`AGENT`) and its handler.

An agent is written against three names, importable from here: AgentSpec (the declaration),
Outgoing (what its handler returns) and AgentContext (what its handler may use).
"""

from agentlobby.agents.context import AgentContext
from agentlobby.agents.spec import AgentSpec, Handler, Outgoing, Setting

__all__ = ["AgentContext", "AgentSpec", "Handler", "Outgoing", "Setting"]
