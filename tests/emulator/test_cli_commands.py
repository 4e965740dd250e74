"""The `agentlobby` command on the stack, as a user runs it: a subprocess finding the stack by
its state file. Its help and its answer without a stack are in tests/unit/test_cli_usage.py."""

from __future__ import annotations

import json
import queue
import secrets
import subprocess
import threading

import pytest

from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.cli import cli_ok, run_cli
from tests.support.envelopes import stored_user_message
from tests.support.lobbies import create_lobby_with, settings_for
from tests.support.paths import AGENTLOBBY
from tests.support.pubsub import republish
from tests.support.user import JsonUser, wait_for_messages


@pytest.fixture
def echo_lobby(info: StackInfo, lobby_name: str) -> str:
    create_lobby_with(settings_for(info), lobby_name, "echo")
    return lobby_name


def test_chat_prints_user_lines_and_echo_replies(
    cli_env: dict[str, str], user: JsonUser, echo_lobby: str
) -> None:
    done = run_cli(cli_env, "chat", echo_lobby, stdin="hello chat\n\nsecond line\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(lines) == sorted(
        [
            "[user] text: hello chat",
            "[echo] text: hello chat",
            "[user] text: second line",
            "[echo] text: second line",
        ]
    )
    assert lines.index("[user] text: hello chat") < lines.index("[echo] text: hello chat")
    # Both lines went to one conversation, which the chat names when it ends.
    conversation_id = done.stderr.strip().rsplit(" ", 1)[-1]
    assert done.stderr.strip() == f"conversation {conversation_id}"
    transcript = user.conversation(conversation_id)["messages"]
    asked = {m["text"]: m["id"] for m in transcript if m["sender"] == "user"}
    answered = {m["text"]: m["parent_id"] for m in transcript if m["sender"] == "echo"}
    assert len(transcript) == 4
    assert asked == answered
    assert list(asked) == ["hello chat", "second line"]


def test_chat_shows_a_duplicated_message_once(
    cli_env: dict[str, str], info: StackInfo, echo_lobby: str
) -> None:
    """Pub/Sub delivers at least once; the chat still prints each message once."""
    chat = subprocess.Popen(
        [str(AGENTLOBBY), "chat", echo_lobby],
        env=cli_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in chat.stdout or ()], daemon=True)
    reader.start()
    try:
        assert chat.stdin is not None
        chat.stdin.write("are you listening?\n")
        chat.stdin.flush()
        # The echo of that line shows the chat's subscription is live.
        while lines.get(timeout=30) != "[echo] text: are you listening?\n":
            pass
        envelope = stored_user_message(settings_for(info), echo_lobby, "said twice")
        republish(info.project, envelope, times=2)
        chat.stdin.close()
        assert chat.wait(timeout=60) == 0
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
    reader.join(timeout=5)
    rest = []
    while not lines.empty():
        rest.append(lines.get().rstrip("\n"))
    twice = sorted(line for line in rest if "said twice" in line)
    assert twice == ["[echo] text: said twice", "[user] text: said twice"]


def test_send_wait_prints_the_reply(
    cli_env: dict[str, str], user: JsonUser, echo_lobby: str
) -> None:
    done = run_cli(cli_env, "send", echo_lobby, "ping over cli", "--wait", "--timeout", "20")
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    posted = json.loads(first)
    assert set(posted) == {"conversation_id", "message_id"}
    assert rest == ["[echo] text: ping over cli"]
    messages = user.conversation(posted["conversation_id"])["messages"]
    assert [(m["id"], m["sender"]) for m in messages] == [
        (posted["message_id"], "user"),
        (messages[1]["id"], "echo"),
    ]


def test_send_without_wait_and_then_watch(
    cli_env: dict[str, str], user: JsonUser, echo_lobby: str
) -> None:
    posted = json.loads(cli_ok(cli_env, "send", echo_lobby, "watch this"))
    wait_for_messages(user, posted["conversation_id"], 2)
    done = run_cli(cli_env, "watch", posted["conversation_id"], "--timeout", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[user] text: watch this", "[echo] text: watch this"]


def test_lobbies_lists_members(cli_env: dict[str, str], echo_lobby: str, lobby_name: str) -> None:
    rows = json.loads(cli_ok(cli_env, "lobbies", "--json"))
    assert {"name": echo_lobby, "members": ["echo"]} in rows
    assert {"name": "chat", "members": ["echo"]} in rows
    table = cli_ok(cli_env, "lobbies").splitlines()
    assert any(line.split() == [echo_lobby, "echo"] for line in table), table


def test_lobbies_create(cli_env: dict[str, str], lobby_name: str) -> None:
    assert cli_ok(cli_env, "lobbies", "create", lobby_name) == f"lobby {lobby_name} is ready\n"
    assert cli_ok(cli_env, "lobbies", "create", lobby_name) == f"lobby {lobby_name} is ready\n"
    rows = json.loads(cli_ok(cli_env, "lobbies", "--json"))
    assert {"name": lobby_name, "members": []} in rows
    table = cli_ok(cli_env, "lobbies").splitlines()
    assert any(line.split() == [lobby_name, "(no", "agents)"] for line in table), table


def test_agents_lists_and_registers(cli_env: dict[str, str], stack: Stack) -> None:
    rows = {row["name"]: row for row in json.loads(cli_ok(cli_env, "agents", "--json"))}
    assert rows["echo"]["endpoint"] == stack.url("echo")
    assert "chat" in rows["echo"]["lobbies"]
    assert rows["echo"]["description"]
    table = cli_ok(cli_env, "agents").splitlines()
    assert any(line.split()[:1] == ["echo"] and stack.url("echo") in line for line in table)

    name = f"probe_{secrets.token_hex(3)}"
    out = cli_ok(cli_env, "agents", "register", name, "--endpoint", "http://127.0.0.1:9/")
    assert out == f"agent {name} registered at http://127.0.0.1:9/\n"
    rows = {row["name"]: row for row in json.loads(cli_ok(cli_env, "agents", "--json"))}
    assert rows[name]["endpoint"] == "http://127.0.0.1:9/"
    assert rows[name]["lobbies"] == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("send", "no-such-lobby", "hi"), "`agentlobby lobbies create no-such-lobby`"),
        (("chat", "no-such-lobby"), "`agentlobby lobbies create no-such-lobby`"),
        (("enter", "echo", "no-such-lobby"), "`agentlobby lobbies create no-such-lobby`"),
        (("enter", "nobody", "chat"), "unknown agent 'nobody'; known agents: "),
        (("leave", "nobody", "chat"), "(list them with `agentlobby agents`)"),
        (("watch", "0123456789abcdef"), "unknown conversation '0123456789abcdef'"),
    ],
)
def test_unknown_names_exit_1_naming_the_fix(
    cli_env: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    done = run_cli(cli_env, *args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"agentlobby {args[0]}: ")
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("lobbies", "create", "Bad_Name"), "lobby name 'Bad_Name' must be 3-63 characters"),
        (("enter", "Echo", "chat"), "agent name 'Echo' must be 2-40 characters"),
        (("agents", "register", "probe"), "give NAME and --endpoint URL"),
    ],
)
def test_bad_arguments_exit_2(
    cli_env: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    done = run_cli(cli_env, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert expected in done.stderr
