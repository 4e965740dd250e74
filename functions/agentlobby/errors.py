"""Every error agentlobby raises, split by who must act.

    AgentlobbyError                 root: catch this to catch everything of ours
    ├── PermanentError              retrying cannot help: record it, acknowledge, never retry
    │   ├── InvalidMessage          a payload (HTTP body, Pub/Sub data, document) is malformed
    │   │   └── PayloadTooLarge     a payload is over its size limit
    │   ├── UnknownLobby            a lobby name that the registry does not hold
    │   ├── UnknownAgent            an agent name that the registry or main.py does not hold
    │   ├── UnknownConversation     a conversation id that Firestore does not hold
    │   ├── RunawayConversation     agents kept answering each other: the conversation is stopped
    │   │   ├── HopLimitExceeded    a message chain grew past the hop limit (depth, ping-pong)
    │   │   ├── MessageLimitExceeded  a conversation grew past its message limit (breadth)
    │   │   ├── ModelCallLimitExceeded  a conversation asked its model too many times
    │   │   └── CostBudgetSpent     a model call would go past the conversation's cost budget
    │   ├── ApiError                the user API refused a request (the CLI's HTTP client)
    │   ├── ModelOutputError        the model kept answering without what was asked for
    │   ├── ModelRejected           the model API refused the request (4xx other than 429)
    │   └── RemoteAgentRejected     a remote A2A agent refused the request (a protocol error)
    ├── TransientError              the world is briefly unavailable: raise so Pub/Sub redelivers
    │   ├── BackendUnavailable      Pub/Sub, Firestore or a function server did not answer
    │   ├── ModelUnavailable        the model API answered 429/5xx or timed out, after retries
    │   └── RemoteAgentUnavailable  a remote A2A agent timed out, was down or answered 5xx
    └── ConfigError                 a setting is missing or malformed: the operator must fix it
        ├── StackNotFound           no running local stack and no variables that point at one
        └── SandboxUnavailable      no isolation level that was asked for works on this machine

Messages say what was expected, what was found, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AgentlobbyError",
    "ApiError",
    "BackendUnavailable",
    "ConfigError",
    "CostBudgetSpent",
    "HopLimitExceeded",
    "InvalidMessage",
    "MessageLimitExceeded",
    "ModelCallLimitExceeded",
    "ModelOutputError",
    "ModelRejected",
    "ModelUnavailable",
    "PayloadTooLarge",
    "PermanentError",
    "RemoteAgentRejected",
    "RemoteAgentUnavailable",
    "RunawayConversation",
    "SandboxUnavailable",
    "StackNotFound",
    "TransientError",
    "UnknownAgent",
    "UnknownConversation",
    "UnknownLobby",
]


class AgentlobbyError(Exception):
    """Root of every error agentlobby raises on purpose."""


class PermanentError(AgentlobbyError):
    """Retrying the same input can never succeed."""


class InvalidMessage(PermanentError):
    """A payload failed validation; the message names the field and the rule."""


class PayloadTooLarge(InvalidMessage):
    """A payload is over its size limit; the message gives the size and the limit."""


class ApiError(PermanentError):
    """The user API refused a request (4xx, or an answer that is not the API's); `status` is
    the HTTP status. A 5xx reaches the CLI as BackendUnavailable instead: retrying may help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class UnknownLobby(PermanentError):
    def __init__(self, lobby: str) -> None:
        super().__init__(
            f"unknown lobby {lobby!r}: create it with `agentlobby lobbies create {lobby}` "
            "or list the lobbies with `agentlobby lobbies`"
        )
        self.lobby = lobby


class UnknownAgent(PermanentError):
    def __init__(self, agent: str, known: list[str] | None = None) -> None:
        hint = f"; known agents: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown agent {agent!r}{hint} (list them with `agentlobby agents`)")
        self.agent = agent


class UnknownConversation(PermanentError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"unknown conversation {conversation_id!r}")
        self.conversation_id = conversation_id


class RunawayConversation(PermanentError):
    """Agents are probably answering each other forever: the conversation fails, naming them."""


class HopLimitExceeded(RunawayConversation):
    """A reply would exceed the hop limit, so agents are probably answering each other forever."""


class MessageLimitExceeded(RunawayConversation):
    """A conversation would grow past its message limit (agents multiplying each other)."""


class ModelCallLimitExceeded(RunawayConversation):
    """A conversation would make more model calls than its limit allows."""


class CostBudgetSpent(RunawayConversation):
    """The conversation spent its cost budget: the next model call is not made, and the
    conversation is stopped like a runaway (failed, open or running), the reason first."""


class ModelOutputError(PermanentError):
    """The model's answers stayed unusable after the corrective retries."""

    usage: object = None  # the tokens the unusable answers cost, a messages.Usage


class ModelRejected(PermanentError):
    """The model API refused the request itself (bad key, unknown model, no scripted reply)."""


class RemoteAgentRejected(PermanentError):
    """A remote A2A agent refused the request itself (invalid params, unsupported, a 4xx):
    sending the same message again cannot succeed."""


class TransientError(AgentlobbyError):
    """A dependency is briefly unavailable; the same input may succeed later."""


class BackendUnavailable(TransientError):
    """Pub/Sub, Firestore or a function server could not be reached."""


class ModelUnavailable(TransientError):
    """The model API kept answering 429/5xx or timing out after the retries."""


class RemoteAgentUnavailable(TransientError):
    """A remote A2A agent timed out, refused the connection or answered 5xx, after the
    in-process tries: the redelivery tries again."""


class ConfigError(AgentlobbyError):
    """A setting is missing or malformed."""


class StackNotFound(ConfigError):
    """No local stack is running and no variables point at one."""


class SandboxUnavailable(ConfigError):
    """The sandbox could not start: no isolation level that was asked for works here."""
