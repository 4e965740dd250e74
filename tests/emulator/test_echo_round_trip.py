"""Echo round trip over HTTP on the real emulators: answered once, in order."""

from __future__ import annotations

import time

from tests.support.user import JsonUser, wait_for_messages


def test_posted_text_is_echoed_once_in_order(user: JsonUser) -> None:
    posted = user.post("chat", "hello lobby")
    messages = wait_for_messages(user, posted["conversation_id"], 2)
    time.sleep(1.0)  # a second echo, if there were one, would have arrived by now
    conversation = user.conversation(posted["conversation_id"])
    assert [(m["sender"], m["kind"], m["text"]) for m in conversation["messages"]] == [
        ("user", "text", "hello lobby"),
        ("echo", "text", "hello lobby"),
    ]
    assert messages[0]["id"] == posted["message_id"]
    assert messages[1]["parent_id"] == posted["message_id"]
    assert conversation["status"] == "open"
