"""GET /conversations/{id} is consistent: it never shows an end without what ended it."""

from __future__ import annotations

import threading

import pytest

from agentlobby.api import overview, routes
from agentlobby.config import load_settings
from agentlobby.lifecycle import Lifecycle
from agentlobby.messages import Envelope
from agentlobby.store.conversations import ConversationRecord, Conversations, Reply
from local_emulator.stack_state import StackInfo
from tests.support.envelopes import reply_to, started_conversation
from tests.support.lobbies import settings_for


def test_a_get_that_sees_the_end_sees_the_message_that_ended_it(
    info: StackInfo, lobby_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last step stores its reply, then ends the conversation. A GET whose transcript read
    came just before those writes and whose status read just after must not show the end
    without the reply: a client that stops polling at the end would never see it."""
    settings = settings_for(info)
    message = started_conversation(settings, lobby_name)
    final = Reply(reply_to(message, "checker", "the verdict"), "succeeded")
    transcript_read = threading.Event()

    class EndsBetweenTheReads(Conversations):
        def transcript(self, conversation_id: str) -> list[Envelope]:
            read = super().transcript(conversation_id)
            if not transcript_read.is_set():  # the last step runs right after this read
                self.record_replies(message, [final])
                Lifecycle(self).end(message.conversation_id, "succeeded", None)
                transcript_read.set()
            return read

        def get(self, conversation_id: str) -> ConversationRecord:
            assert transcript_read.wait(10)
            return super().get(conversation_id)

    monkeypatch.setattr(overview, "Conversations", EndsBetweenTheReads)
    config = load_settings({**info.client_environment(), "AGENTLOBBY_API_TOKEN": "t"})
    answer, status = routes.handle_request(
        "GET",
        f"/conversations/{message.conversation_id}",
        {"authorization": "Bearer t"},
        b"",
        config,
    )
    assert status == 200
    assert answer["status"] == "succeeded"
    assert [m["sender"] for m in answer["messages"]] == ["user", "checker"]
