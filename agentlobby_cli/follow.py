"""Printing a conversation as it happens: what is stored first, then live lobby messages."""

from __future__ import annotations

import sys
import time

from agentlobby.api.schema import MessageView
from agentlobby.api.views import message_view
from agentlobby.lifecycle import is_over
from agentlobby.store.tail import LobbyTail
from agentlobby_cli.client import UserClient
from agentlobby_cli.render import message_line

STATUS_CHECK_S = 2.0


class ConversationPrinter:
    """Prints each message of one conversation once, whichever way it arrived."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.seen: set[str] = set()

    def show(self, view: MessageView) -> bool:
        if view.id in self.seen:
            return False
        self.seen.add(view.id)
        print(message_line(view), flush=True)
        return True


def follow_conversation(
    client: UserClient,
    project: str,
    conversation_id: str,
    timeout_s: float | None,
    *,
    idle_s: float | None = None,
    skip: int = 0,
) -> int:
    """Print until the conversation ends, `timeout_s` passes, or nothing arrives for `idle_s`.

    `skip` leaves out the first messages (the one `send` just posted). Returns an exit status:
    0 when it ended or stopped quietly, 1 when it ended `failed`.
    """
    first = client.conversation(conversation_id)
    printer = ConversationPrinter(conversation_id)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    if idle_s is None and skip:
        idle_s = 3.0
    with LobbyTail(project, first.lobby) as tail:
        state = client.conversation(conversation_id)
        for index, view in enumerate(state.messages):
            if index < skip:
                printer.seen.add(view.id)
            else:
                printer.show(view)
        last_news = last_check = time.monotonic()
        while not is_over(state.status):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if idle_s is not None and now - last_news >= idle_s:
                break
            message = tail.get(timeout=0.5)
            if now - last_check >= STATUS_CHECK_S:
                # A step can also end the conversation without a message (a dead letter).
                state, last_check = client.conversation(conversation_id), now
            if message is None or message.conversation_id != conversation_id:
                continue
            if printer.show(message_view(message)):
                last_news = time.monotonic()
            if message.kind == "result":
                state = client.conversation(conversation_id)
        state = client.conversation(conversation_id)
        for view in state.messages:
            printer.show(view)
    if is_over(state.status):
        reason = f": {state.reason}" if state.reason else ""
        print(f"conversation {conversation_id} {state.status}{reason}", file=sys.stderr)
    return 1 if state.status == "failed" else 0
