"""Ending a conversation: a finish that cannot be written says so rather than leave it running."""

from __future__ import annotations

from typing import Any

import pytest

from agentlobby.errors import TransientError
from agentlobby.lifecycle import Lifecycle
from agentlobby.messages import now
from agentlobby.store.conversations import Conversations
from local_emulator.stack_state import StackInfo
from tests.support.envelopes import started_conversation
from tests.support.lobbies import settings_for


class _AlwaysChangedMeanwhile(Conversations):
    """Conversations whose document another step writes between each read and update: every
    conditional update of change_status() meets a real precondition failure on the emulator."""

    def _doc(self, conversation_id: str) -> Any:
        ref = super()._doc(conversation_id)
        outer = self

        class Ref:
            def get(self) -> Any:
                snap = ref.get()
                outer._db.collection("conversations").document(conversation_id).update(
                    {"updated_at": now().isoformat()}
                )
                return snap

            def update(self, *args: Any, **kwargs: Any) -> Any:
                return ref.update(*args, **kwargs)

        return Ref()


def test_a_finish_that_keeps_losing_the_race_says_so_instead_of_leaving_it_running(
    info: StackInfo, lobby_name: str
) -> None:
    """Giving up silently would let the delivery be marked done with the conversation running."""
    settings = settings_for(info)
    message = started_conversation(settings, lobby_name)
    with pytest.raises(TransientError, match="changed under it"):
        Lifecycle(_AlwaysChangedMeanwhile(settings.project)).end(
            message.conversation_id, "succeeded", None
        )
    assert Conversations(settings.project).get(message.conversation_id).status == "running"
