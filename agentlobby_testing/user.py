"""What a test does as the user: post to a lobby, then wait for a reply or for the end.

It goes through the user function's HTTP API with the CLI's own client (UserClient), and waits
as `agentlobby send --wait` does (agentlobby_cli/follow.py), so a test sees what a user sees.
A wait that runs out fails the test with the conversation as it stood and where the logs are.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from agentlobby.api.schema import ConversationView, MessageView, Posted
from agentlobby.config import load_settings
from agentlobby.messages import USER_SENDER
from agentlobby.store import membership
from agentlobby_cli.client import UserClient
from agentlobby_cli.follow import EXIT_TIMEOUT, settle
from local_emulator.stack_state import StackInfo

POLL_S = 0.1


class LobbyUser:
    """The user of one stack: `post`, `wait_for_reply`, `wait`, `conversation`, `new_lobby`."""

    def __init__(self, info: StackInfo) -> None:
        self.info = info
        self.client = UserClient(info.user_url, info.api_token)

    def post(self, lobby: str, text: str, **fields: Any) -> Posted:
        """Post as the user (fields as the API takes them: `tests=`, `conversation_id=`,
        `max_rounds=`...); returns the conversation and message ids."""
        return self.client.post(lobby, text, **fields)

    def conversation(self, conversation_id: str) -> ConversationView:
        return self.client.conversation(conversation_id)

    def wait_for_reply(
        self, conversation_id: str, sender: str | None = None, timeout_s: float = 30.0
    ) -> MessageView:
        """The first message of the conversation from `sender` (any agent when None)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.conversation(conversation_id)
            for message in state.messages:
                if message.sender != USER_SENDER and sender in (None, message.sender):
                    return message
            if time.monotonic() >= deadline:
                who = f"from {sender}" if sender else "from any agent"
                raise AssertionError(f"no reply {who} in {timeout_s:g}s: {self._summary(state)}")
            time.sleep(POLL_S)

    def wait(
        self, conversation_id: str, timeout_s: float = 60.0, quiet_s: float = 1.0
    ) -> ConversationView:
        """Wait as `send --wait` does: a task until it is over; a chat (which never ends by
        itself) until it had a reply and then `quiet_s` seconds of nothing new."""
        state, ending = settle(self.client, self.info.project, conversation_id, timeout_s, quiet_s)
        if ending.code == EXIT_TIMEOUT:  # still running, no reply, or replies still coming
            raise AssertionError(f"{ending.summary}: {self._summary(state)}")
        return state  # succeeded, failed, or a chat that answered and went quiet

    def new_lobby(self, *agents: str) -> str:
        """A lobby of its own for one test, with these agents (entry point names) in it."""
        settings = load_settings(
            {"AGENTLOBBY_PROJECT": self.info.project, **self.info.client_environment()}
        )
        name = f"t-{secrets.token_hex(4)}"
        membership.create_lobby(settings, name)
        for agent in agents:
            membership.enter(settings, agent, name)
        return name

    def _summary(self, state: ConversationView) -> str:
        said = "; ".join(f"[{m.sender}] {m.kind}: {(m.text or '')[:80]}" for m in state.messages)
        reason = f" ({state.reason})" if state.reason else ""
        return (
            f"conversation {state.conversation_id} is {state.status}{reason} with "
            f"{len(state.messages)} message(s): {said}; the functions' logs are in "
            f"{self.info.log_dir}"
        )
