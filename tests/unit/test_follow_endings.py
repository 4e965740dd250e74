"""When `send --wait` and `watch` stop, what they say, and their exit status, by conversation.

The user API is a fake whose answers change on a timeline and the live lobby tail is silent,
so everything arrives through the transcript reads (every STATUS_CHECK_S, shortened here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentlobby.api.schema import ConversationView
from agentlobby_cli import follow
from agentlobby_cli.follow import follow_conversation

CID = "c0ffee"


def message(index: int, sender: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"m{index}",
        "sender": sender,
        "kind": content["kind"],
        "lobby": "coding",
        "parent_id": None,
        "hops": index,
        "created_at": "2025-01-01T00:00:00Z",
        "content": content,
        "usage": None,
        "text": content.get("text"),
    }


def view(status: str, *messages: dict[str, Any], **extra: Any) -> ConversationView:
    return ConversationView.model_validate(
        {
            "conversation_id": CID,
            "lobby": "coding",
            "status": status,
            "reason": None,
            "rounds": 0,
            "final_code": None,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "messages": list(messages),
            "dead_letters": [],
            **extra,
        }
    )


TASK = message(0, "user", {"kind": "task", "text": "Write add(a, b)."})
SPEC = message(1, "vision", {"kind": "spec", "text": "add(a, b) returns a + b"})
HELLO = message(0, "user", {"kind": "text", "text": "hello"})
ECHO = message(1, "echo", {"kind": "text", "text": "hello"})


class Timeline:
    """The fake user API: `conversation()` answers the latest view whose time has come."""

    def __init__(self, *steps: tuple[float, ConversationView]) -> None:
        self.steps = steps
        self.started = time.monotonic()

    def conversation(self, conversation_id: str) -> ConversationView:
        assert conversation_id == CID
        now = time.monotonic() - self.started
        return [v for at, v in self.steps if at <= now][-1]


class SilentTail:
    def __init__(self, project: str, lobby: str) -> None:
        pass

    def __enter__(self) -> SilentTail:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def get(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.02))


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(follow, "LobbyTail", SilentTail)
    monkeypatch.setattr(follow, "STATUS_CHECK_S", 0.05)
    yield


def run(
    timeline: Timeline, capsys: pytest.CaptureFixture[str], timeout: float | None, **kw: Any
) -> tuple[int, list[str], str, float]:
    started = time.monotonic()
    code = follow_conversation(timeline, "p", CID, timeout, **kw)  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.strip(), time.monotonic() - started


def test_a_task_is_followed_to_success_and_its_final_code_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = message(
        2,
        "checker",
        {
            "kind": "result",
            "status": "succeeded",
            "rounds": 1,
            "code": "def add(a, b):\n    return a + b\n",
            "output": None,
            "reason": None,
        },
    )
    done = view(
        "succeeded",
        TASK,
        SPEC,
        result,
        rounds=1,
        final_code="def add(a, b):\n    return a + b\n",
        usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    )
    # Silence longer than any idle time on the way: a task is waited for, not given up on.
    timeline = Timeline((0, view("running", TASK)), (0.3, view("running", TASK, SPEC)), (1.0, done))
    code, out, err, took = run(timeline, capsys, 10, quiet_s=0.1, after_id="m0")
    assert code == 0
    assert out == [
        "[vision] spec: add(a, b) returns a + b",
        "[checker] result: succeeded after 1 round(s)",
        "--- final code (round 1):",
        "def add(a, b):",
        "    return a + b",
    ]
    assert err == f"conversation {CID} succeeded after 1 round(s), 15 tokens"
    assert took >= 1.0


def test_a_failed_task_exits_1_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    failed = view("failed", TASK, rounds=3, reason="no passing code after 3 round(s)")
    timeline = Timeline((0, view("running", TASK)), (0.2, failed))
    code, _out, err, _took = run(timeline, capsys, 10, quiet_s=0.1, after_id="m0")
    assert code == 1
    assert err == f"conversation {CID} failed after 3 round(s): no passing code after 3 round(s)"


def test_a_task_still_running_at_the_timeout_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    timeline = Timeline((0, view("running", TASK, SPEC)))
    code, out, err, took = run(timeline, capsys, 0.5, quiet_s=0.1, after_id="m0")
    assert code == 3
    assert out == ["[vision] spec: add(a, b) returns a + b"]
    assert err == (
        f"conversation {CID} is still running after 0.5s (--timeout): stopped waiting; "
        f"`agentlobby watch {CID}` follows it further"
    )
    assert 0.5 <= took < 3


def test_a_chat_answered_then_quiet_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    timeline = Timeline((0, view("open", HELLO)), (0.2, view("open", HELLO, ECHO)))
    code, out, err, took = run(timeline, capsys, 10, quiet_s=0.3, after_id="m0")
    assert code == 0
    assert out == ["[echo] text: hello"]
    assert err == (
        f"conversation {CID} is open (a chat never ends by itself): 1 reply, then nothing for 0.3s"
    )
    assert took < 3


def test_a_chat_without_a_reply_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    timeline = Timeline((0, view("open", HELLO)))
    code, out, err, _took = run(timeline, capsys, 0.4, quiet_s=0.1, after_id="m0")
    assert (code, out) == (3, [])
    assert err == (
        f"no reply in conversation {CID} after 0.4s (--timeout); "
        "is any agent in lobby coding? (`agentlobby lobbies`)"
    )


def test_a_chat_that_becomes_a_task_is_waited_for(capsys: pytest.CaptureFixture[str]) -> None:
    """An agent that takes the message up as a task moves it to running: no quiet stop."""
    timeline = Timeline(
        (0, view("open", TASK)),
        (0.1, view("running", TASK, SPEC)),
        (0.8, view("succeeded", TASK, SPEC, rounds=1)),
    )
    code, _out, err, took = run(timeline, capsys, 10, quiet_s=0.1, after_id="m0")
    assert code == 0
    assert err.endswith("succeeded after 1 round(s)")
    assert took >= 0.8


def test_watching_a_chat_says_it_never_ends_and_stops_at_the_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    timeline = Timeline((0, view("open", HELLO, ECHO)))
    code, out, err, _took = run(timeline, capsys, 0.3)
    assert code == 0
    assert out == ["[user] text: hello", "[echo] text: hello"]
    assert (
        err
        == f"conversation {CID} is still open after 0.3s (--timeout); a chat never ends by itself"
    )


def test_watching_a_chat_without_a_timeout_says_how_it_stops(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Interrupted(Timeline):
        def conversation(self, conversation_id: str) -> ConversationView:
            if time.monotonic() - self.started > 0.3:
                raise KeyboardInterrupt
            return super().conversation(conversation_id)

    with pytest.raises(KeyboardInterrupt):
        follow_conversation(Interrupted((0, view("open", HELLO))), "p", CID, None)  # type: ignore[arg-type]
    assert capsys.readouterr().err == (
        f"conversation {CID} is open: a chat never ends by itself, so this prints its messages "
        "until Ctrl-C (or pass --timeout SECONDS)\n"
    )


def test_settling_prints_nothing_and_returns_the_state_and_the_ending(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The pytest plugin's wait: the same stops as `send --wait`, silently."""
    answered = Timeline((0, view("open", HELLO)), (0.2, view("open", HELLO, ECHO)))
    state, ending = follow.settle(answered, "p", CID, 10, 0.1)  # type: ignore[arg-type]
    assert [m.sender for m in state.messages] == ["user", "echo"]
    assert ending.code == follow.EXIT_SUCCEEDED
    silent = Timeline((0, view("open", HELLO)))
    _state, ending = follow.settle(silent, "p", CID, 0.3, 0.1)  # type: ignore[arg-type]
    assert ending.code == follow.EXIT_TIMEOUT
    assert ending.summary.startswith(f"no reply in conversation {CID}")
    assert capsys.readouterr() == ("", "")
