"""A conversation's status: where it starts, who moves it on, and when it is over. One place.

    open ──(an agent starts work on a task)──> running ──> succeeded | failed
      └──────────────────(a final reply)─────────────────────┘
    open | running ──(the user cancels)──> cancelled

- The user API picks the first status: `running` for a task posted where a member works on
  tasks, else `open` (a chat stays open; nothing ends it by itself).
- The agent that takes a task first (vision) moves `open` to `running`, for a task that was
  posted before any member took tasks.
- A stored final reply (`Outgoing.ends_conversation`) ends a conversation with its status and
  reason. The first end wins; a later one (a redelivery, a racing dead letter) changes nothing.
- A dead-lettered step fails a `running` conversation, saying why; an `open` one stays open,
  since a chat goes on without the agent that failed.
- A runaway (agents answering each other past the hop or message limit) fails the
  conversation, `open` or `running`, with a reason naming the agents.
- The user may cancel a conversation that is open or running (the A2A edge's CancelTask): it
  ends `cancelled`, a status of its own so a client can tell "stopped on request" from
  "failed"; one that is already over cannot be cancelled.
- Agents do no work on a conversation that is over: delivery skips its messages. A step that
  was already running when the conversation ended may still store its reply; it ends nothing.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Literal

from agentlobby.errors import UnknownConversation

if TYPE_CHECKING:
    from agentlobby.store.conversations import Conversations

Status = Literal["open", "running", "succeeded", "failed", "cancelled"]
FinalStatus = Literal["succeeded", "failed"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


def is_over(status: str) -> bool:
    return status in TERMINAL


def first_status(is_task: bool, lobby_takes_tasks: bool) -> Status:
    """A task is running from its post where a member works on tasks; anything else is open."""
    return "running" if is_task and lobby_takes_tasks else "open"


class Lifecycle:
    """The status moves of the conversations of one project, on top of the store's writes."""

    def __init__(self, conversations: Conversations) -> None:
        self._conversations = conversations

    def status(self, conversation_id: str) -> Status:
        return self._conversations.get(conversation_id).status

    def is_over(self, conversation_id: str) -> bool:
        return is_over(self.status(conversation_id))

    def start_work(self, conversation_id: str) -> None:
        """open -> running, once; a conversation that has moved on is left alone."""
        self._conversations.change_status(conversation_id, "running", None, only_from={"open"})

    def end(self, conversation_id: str, status: Status, reason: str | None) -> bool:
        """End it with a final reply's status; False when it had already ended."""
        return self._conversations.change_status(
            conversation_id, status, reason, only_from={"open", "running"}
        )

    def cancel(self, conversation_id: str, reason: str) -> bool:
        """The user stopped it: open or running -> cancelled; False when it was already over."""
        return self._conversations.change_status(
            conversation_id, "cancelled", reason, only_from={"open", "running"}
        )

    def stop_runaway(self, conversation_id: str, reason: str) -> None:
        """Agents kept answering each other: the conversation fails, open or running."""
        with contextlib.suppress(UnknownConversation):
            self._conversations.change_status(
                conversation_id, "failed", reason, only_from={"open", "running"}
            )

    def fail_step(self, conversation_id: str, reason: str) -> None:
        """A step was dead-lettered: a running conversation cannot go on, so it fails."""
        # No such conversation: the dead letter is all there is to record.
        with contextlib.suppress(UnknownConversation):
            self._conversations.change_status(
                conversation_id, "failed", reason, only_from={"running"}
            )
