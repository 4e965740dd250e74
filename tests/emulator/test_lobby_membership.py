"""Lobby membership: several lobbies, agents entering and leaving at runtime, two echoes in one
lobby, and what a post becomes depending on who is in the lobby."""

from __future__ import annotations

import json
import time
from pathlib import Path

from agentlobby.messages import now
from agentlobby.store import membership
from agentlobby.store.registry import AgentRecord, Registry
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.cli import cli_ok
from tests.support.lobbies import (
    create_lobby_with,
    function_server,
    new_lobby_name,
    recording,
    registered_agent,
    settings_for,
)
from tests.support.user import JsonUser, wait_for_messages

QUIET_S = 3.0  # an echo arrives in well under a second; silence this long means none is coming


def texts(user: JsonUser, conversation_id: str) -> list[tuple[str, str, str]]:
    messages = user.conversation(conversation_id)["messages"]
    return [(m["sender"], m["lobby"], m["text"]) for m in messages]


def test_an_agent_in_two_lobbies_answers_each_in_its_own(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    first, second = lobby_name, new_lobby_name()
    settings = settings_for(info)
    for lobby in (first, second):
        create_lobby_with(settings, lobby, "echo")
    with (
        recording(info.project, first) as first_tail,
        recording(info.project, second) as second_tail,
    ):
        to_first = user.post(first, "to the first lobby")
        to_second = user.post(second, "to the second lobby")
        wait_for_messages(user, to_first["conversation_id"], 2)
        wait_for_messages(user, to_second["conversation_id"], 2)
        heard_first = first_tail.messages(settle_s=1.0)
        heard_second = second_tail.messages()
    assert texts(user, to_first["conversation_id"]) == [
        ("user", first, "to the first lobby"),
        ("echo", first, "to the first lobby"),
    ]
    assert texts(user, to_second["conversation_id"]) == [
        ("user", second, "to the second lobby"),
        ("echo", second, "to the second lobby"),
    ]
    # On the wire too: each lobby carried its own message and its reply, nothing of the other.
    assert sorted((m.sender, m.conversation_id) for m in heard_first) == [
        ("echo", to_first["conversation_id"]),
        ("user", to_first["conversation_id"]),
    ]
    assert sorted((m.sender, m.conversation_id) for m in heard_second) == [
        ("echo", to_second["conversation_id"]),
        ("user", to_second["conversation_id"]),
    ]


def members(env: dict[str, str], lobby: str) -> list[str]:
    rows = json.loads(cli_ok(env, "lobbies", "--json"))
    return next(row["members"] for row in rows if row["name"] == lobby)


def test_enter_and_leave_at_runtime(
    stack: Stack, user: JsonUser, cli_env: dict[str, str], lobby_name: str
) -> None:
    echo_server = next(c for c in stack.children if c.name == "function-echo").process
    cli_ok(cli_env, "lobbies", "create", lobby_name)
    assert members(cli_env, lobby_name) == []

    assert cli_ok(cli_env, "enter", "echo", lobby_name) == f"echo entered {lobby_name}\n"
    assert members(cli_env, lobby_name) == ["echo"]
    before = user.post(lobby_name, "anyone here?")
    wait_for_messages(user, before["conversation_id"], 2)

    assert cli_ok(cli_env, "leave", "echo", lobby_name) == f"echo left {lobby_name}\n"
    assert members(cli_env, lobby_name) == []
    assert cli_ok(cli_env, "leave", "echo", lobby_name) == f"echo was not in {lobby_name}\n"
    alone = user.post(lobby_name, "hello? anyone?")
    time.sleep(QUIET_S)
    assert [m["sender"] for m in user.conversation(alone["conversation_id"])["messages"]] == [
        "user"
    ]

    cli_ok(cli_env, "enter", "echo", lobby_name)
    after = user.post(lobby_name, "back again?")
    assert [m["text"] for m in wait_for_messages(user, after["conversation_id"], 2)] == [
        "back again?",
        "back again?",
    ]
    # The message sent while echo was away stays unanswered, and nothing was restarted.
    assert len(user.conversation(alone["conversation_id"])["messages"]) == 1
    assert echo_server.poll() is None
    assert (
        echo_server.pid == next(c for c in stack.children if c.name == "function-echo").process.pid
    )


def test_two_echo_agents_do_not_answer_each_other(
    info: StackInfo, user: JsonUser, lobby_name: str, tmp_path: Path
) -> None:
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name, "echo")
    with (
        function_server("echo_twin", info, tmp_path / "logs") as url,
        registered_agent(settings, "echo_twin", url, lobby_name),
        recording(info.project, lobby_name) as tail,
    ):
        posted = user.post(lobby_name, "echo, echo")
        cid = posted["conversation_id"]
        wait_for_messages(user, cid, 3)
        heard = tail.messages(settle_s=QUIET_S)
        transcript = user.conversation(cid)["messages"]
    assert sorted((m["sender"], m["text"], m["hops"]) for m in transcript) == [
        ("echo", "echo, echo", 1),
        ("echo_twin", "echo, echo", 1),
        ("user", "echo, echo", 0),
    ]
    assert all(m["parent_id"] == posted["message_id"] for m in transcript[1:])
    assert transcript[0]["sender"] == "user"
    assert sorted(m.sender for m in heard) == ["echo", "echo_twin", "user"]


def test_a_member_that_takes_tasks_counts_from_its_enter_until_its_leave(
    info: StackInfo, user: JsonUser, lobby_name: str
) -> None:
    """enter and leave take effect at once for what a post becomes, not after a cache expires."""
    settings = settings_for(info)
    worker = f"worker_{lobby_name[2:]}"
    Registry(info.project).put_agent(
        AgentRecord(
            name=worker,
            endpoint="http://127.0.0.1:9",  # never answers: nothing will finish the task
            listens_to=("task",),
            registered_at=now(),
        )
    )

    def post() -> tuple[str, list[str]]:
        state = user.conversation(user.post(lobby_name, "build me something")["conversation_id"])
        return state["status"], [m["kind"] for m in state["messages"]]

    create_lobby_with(settings, lobby_name)
    try:
        assert post() == ("open", ["text"])
        membership.enter(settings, worker, lobby_name)
        assert post() == ("running", ["task"])
        membership.leave(settings, worker, lobby_name)
        # A task nobody takes on would stay "running" for ever.
        assert post() == ("open", ["text"])
    finally:
        membership.leave(settings, worker, lobby_name)


def test_a_task_no_member_takes_on_stays_open(user: JsonUser) -> None:
    """A task posted to chat (where only echo listens, and not to tasks) is not `running`."""
    posted = user.post("chat", "write something", tests="assert True")
    time.sleep(1.5)
    state = user.conversation(posted["conversation_id"])
    assert state["status"] == "open"
    assert [m["kind"] for m in state["messages"]] == ["task"]
