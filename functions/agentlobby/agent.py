"""What an agent is: a declaration plus one handler, and the context the handler gets.

An agent module defines `AGENT = AgentSpec(...)` and `handle(message, ctx) -> list[Outgoing]`.
Agents never import Google SDKs: the transcript, the conversation and the model reach them
through `AgentContext`, created per delivery, with heavy clients built only on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentlobby.config import Settings
from agentlobby.messages import Content, Envelope, Usage

if TYPE_CHECKING:
    from agentlobby.conversations import Conversations, Status
    from agentlobby.model import ModelClient


@dataclass(frozen=True)
class Outgoing:
    """One message an agent wants to send; the runtime fills in ids, sender, time and hops."""

    content: Content
    lobby: str | None = None  # None: the lobby the incoming message came from
    usage: Usage | None = None
    # Set on a final message: the conversation takes this status once the message is stored.
    ends_conversation: Status | None = None
    reason: str | None = None


class AgentContext:
    """Everything a handler may use besides the message itself."""

    def __init__(self, agent: str, lobby: str, settings: Settings) -> None:
        self.agent = agent
        self.lobby = lobby
        self.settings = settings

    @functools.cached_property
    def conversations(self) -> Conversations:
        from agentlobby.conversations import Conversations

        return Conversations(self.settings.project)

    def transcript(self, conversation_id: str) -> list[Envelope]:
        return self.conversations.transcript(conversation_id)

    @functools.cached_property
    def model(self) -> ModelClient:
        from agentlobby.model import ModelClient

        return ModelClient.for_agent(self.agent, self.settings)


Handler = Callable[[Envelope, AgentContext], Sequence[Outgoing]]


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
    lease_s: float | None = None
    settings: dict[str, object] = field(default_factory=dict)
