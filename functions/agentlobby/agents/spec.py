"""What an agent is: a declaration plus one handler that returns what to send.

An agent module defines `AGENT = AgentSpec(...)` and `handle(message, ctx) -> list[Outgoing]`.
The handler gets everything else through its AgentContext (agents/context.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentlobby.messages import Content, Envelope, Usage

if TYPE_CHECKING:
    from agentlobby.agents.context import AgentContext
    from agentlobby.lifecycle import Status


@dataclass(frozen=True)
class Setting:
    """A setting an agent declares: `agentlobby agents set AGENT NAME=VALUE` is checked against
    it, and `agentlobby agents` shows the value in force and where it comes from."""

    name: str
    kind: type[int] | type[float] | type[str] | type[bool]
    default: int | float | str | bool
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    env: str | None = None  # the variable that sets the default in the function's environment

    def declared(self) -> dict[str, object]:
        """As the registry keeps it (store.registry.DeclaredSetting)."""
        return {
            "name": self.name,
            "kind": self.kind.__name__,
            "default": self.default,
            "doc": self.doc,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "env": self.env,
        }


@dataclass(frozen=True)
class Outgoing:
    """One message an agent wants to send; delivery fills in ids, sender, time and hops."""

    content: Content
    lobby: str | None = None  # None: the lobby the incoming message came from
    usage: Usage | None = None
    # Set on a final message: the conversation takes this status once the message is stored.
    ends_conversation: Status | None = None
    reason: str | None = None


Handler = Callable[[Envelope, "AgentContext"], Sequence[Outgoing]]


@dataclass(frozen=True)
class AgentSpec:
    """An agent's declaration: what it listens to, where it lives by default, how it is handled."""

    name: str
    description: str
    listens_to: frozenset[str]
    handle: Handler
    default_lobbies: tuple[str, ...] = ()
    # Expensive or side-effecting handlers take a leased claim first, so a duplicate delivery
    # arriving meanwhile waits instead of repeating the work (a model call, running code).
    exclusive: bool = False
    settings: tuple[Setting, ...] = ()
