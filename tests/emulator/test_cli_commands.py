"""The `agentlobby` command on the stack, as a user runs it: a subprocess finding the stack by
its state file. Its help and its answer without a stack are in tests/unit/test_cli_usage.py."""

from __future__ import annotations

import json
import queue
import secrets
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from local_emulator.roster import declared_agent
from local_emulator.stack import FUNCTIONS_DIR, Stack
from local_emulator.stack_state import StackInfo
from tests.support.cli import cli_ok, run_cli
from tests.support.coding import (
    ADD_TESTS,
    GOOD_ADD,
    IMAGE,
    add_task,
    model_stats,
    play,
    python_block,
    requests_of,
    token,
)
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
    """A chat never ends: --wait stops once the reply came and nothing more for --idle."""
    done = run_cli(
        cli_env, "send", echo_lobby, "ping over cli", "--wait", "--timeout", "20", "--idle", "1"
    )
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    posted = json.loads(first)
    assert set(posted) == {"conversation_id", "message_id"}
    assert rest == ["[echo] text: ping over cli"]
    assert done.stderr.splitlines() == [
        f"conversation {posted['conversation_id']} is open (a chat never ends by itself): "
        "1 reply, then nothing for 1s"
    ]
    messages = user.conversation(posted["conversation_id"])["messages"]
    assert [(m["id"], m["sender"]) for m in messages] == [
        (posted["message_id"], "user"),
        (messages[1]["id"], "echo"),
    ]


def test_send_wait_in_a_conversation_prints_only_what_follows(
    cli_env: dict[str, str], echo_lobby: str
) -> None:
    posted = json.loads(cli_ok(cli_env, "send", echo_lobby, "first line"))
    done = run_cli(
        cli_env,
        "send",
        echo_lobby,
        "second line",
        "--conversation",
        posted["conversation_id"],
        "--wait",
        "--idle",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["[echo] text: second line"]


def test_send_wait_without_a_reply_times_out_with_3(
    cli_env: dict[str, str], info: StackInfo, lobby_name: str
) -> None:
    create_lobby_with(settings_for(info), lobby_name)
    done = run_cli(cli_env, "send", lobby_name, "anyone?", "--wait", "--timeout", "2")
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert done.stderr.strip().startswith("no reply in conversation ")
    assert f"after 2s (--timeout); is any agent in lobby {lobby_name}?" in done.stderr


def test_send_posts_a_coding_task_and_waits_for_success(
    cli_env: dict[str, str], stack: Stack, tmp_path: Path
) -> None:
    tok = token()
    play(stack, {"agent": "coder", "match": tok, "replies": [python_block(GOOD_ADD)]})
    tests = tmp_path / "test_add.py"
    tests.write_text(ADD_TESTS)
    done = run_cli(
        cli_env,
        "send",
        "coding",
        add_task(tok),
        "--tests",
        str(tests),
        "--max-rounds",
        "2",
        "--token-budget",
        "5000",
        "--wait",
        "--timeout",
        "60",
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    out = done.stdout
    assert out.index("[checker] result: succeeded after 1 round(s)") < out.index(
        "--- final code (round 1):\n" + GOOD_ADD.rstrip()
    )
    assert out.rstrip().endswith(GOOD_ADD.rstrip())
    cid = json.loads(out.splitlines()[0])["conversation_id"]
    assert done.stderr.strip().startswith(f"conversation {cid} succeeded after 1 round(s)")
    stats = model_stats(stack)
    coder = requests_of(stats, "coder")
    assert len(coder) == 1
    assert "assert add(2, 3) == 5" in coder[0]["last_user_text"]


def test_send_wait_exits_1_when_the_task_fails(
    cli_env: dict[str, str], stack: Stack, tmp_path: Path
) -> None:
    """Without a usable model a task fails, and --wait says so with exit status 1."""
    play(stack)  # no rules: every model request is refused
    tests = tmp_path / "tests.py"
    tests.write_text(ADD_TESTS)
    done = run_cli(cli_env, "send", "coding", add_task(token()), "--tests", str(tests), "--wait")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert " failed" in done.stderr
    assert "no script rule matches agent 'coder'" in done.stderr


def test_send_wait_times_out_with_3_while_a_task_runs(
    cli_env: dict[str, str], info: StackInfo, lobby_name: str
) -> None:
    """A task in a lobby where only vision works stays running: --timeout ends the wait."""
    create_lobby_with(settings_for(info), lobby_name, "vision")
    done = run_cli(cli_env, "send", lobby_name, "Write add(a, b).", "--wait", "--timeout", "3")
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "[vision] spec: Write add(a, b)." in done.stdout
    assert "is still running after 3s (--timeout): stopped waiting" in done.stderr


def test_send_an_image_task(cli_env: dict[str, str], stack: Stack, tmp_path: Path) -> None:
    """--image reads the file's type from its bytes (whatever its name) and sends it base64."""
    tok = token()
    play(
        stack,
        {"agent": "vision", "match": tok, "replies": ["A 4 by 4 checkerboard."]},
        {"agent": "coder", "match": tok, "replies": [python_block("print('#.#.')\n")]},
        {"agent": "checker", "match": tok, "replies": ['{"passed": true, "feedback": "ok"}']},
    )
    image = tmp_path / "board.dat"
    image.write_bytes(IMAGE.read_bytes())
    done = run_cli(
        cli_env, "send", "coding", f"Draw the board [{tok}]", "--image", str(image), "--wait"
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert " succeeded after 1 round(s)" in done.stderr
    vision = requests_of(model_stats(stack), "vision")
    assert [r["has_image"] for r in vision] == [True]


def test_watch_a_chat_says_it_never_ends_and_stops_at_the_timeout(
    cli_env: dict[str, str], user: JsonUser, echo_lobby: str
) -> None:
    posted = json.loads(cli_ok(cli_env, "send", echo_lobby, "watch this"))
    wait_for_messages(user, posted["conversation_id"], 2)
    done = run_cli(cli_env, "watch", posted["conversation_id"], "--timeout", "1")
    assert done.returncode == 0, done.stderr
    *messages, status = done.stdout.splitlines()
    assert messages == ["[user] text: watch this", "[echo] text: watch this"]
    assert status.startswith("-- open, waiting | ")  # watch's status: nobody is working
    assert done.stderr.splitlines() == [
        f"conversation {posted['conversation_id']} is still open after 1s (--timeout); "
        "a chat never ends by itself"
    ]


def test_watch_a_chat_without_a_timeout_says_so(
    cli_env: dict[str, str], user: JsonUser, echo_lobby: str
) -> None:
    posted = json.loads(cli_ok(cli_env, "send", echo_lobby, "forever"))
    wait_for_messages(user, posted["conversation_id"], 2)
    watch = subprocess.Popen(
        [str(AGENTLOBBY), "watch", posted["conversation_id"]],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stderr is not None
        line = watch.stderr.readline()
        assert "is open: a chat never ends by itself" in line
        assert "until Ctrl-C (or pass --timeout SECONDS)" in line
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=30) == 130
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert "Traceback" not in (watch.stderr.read() if watch.stderr else "")


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


URL_9 = "http://127.0.0.1:9/"  # the discard port: nothing answers there


def test_agents_lists_and_registers(cli_env: dict[str, str], stack: Stack) -> None:
    rows = {row["name"]: row for row in json.loads(cli_ok(cli_env, "agents", "--json"))}
    assert rows["echo"]["endpoint"] == stack.url("echo")
    assert "chat" in rows["echo"]["lobbies"]
    assert rows["echo"]["description"]
    table = cli_ok(cli_env, "agents").splitlines()
    assert any(line.split()[:1] == ["echo"] and stack.url("echo") in line for line in table)

    name = f"probe_{secrets.token_hex(3)}"
    out = cli_ok(cli_env, "agents", "register", name, "--endpoint", URL_9)
    assert out == f"agent {name} registered at http://127.0.0.1:9/\n"
    rows = {row["name"]: row for row in json.loads(cli_ok(cli_env, "agents", "--json"))}
    assert rows[name]["endpoint"] == "http://127.0.0.1:9/"
    assert rows[name]["lobbies"] == []
    assert rows[name]["listens_to"] == []  # not an agent of functions/main.py
    assert rows["coder"]["listens_to"] == ["spec", "verdict"]

    other = f"probe_{secrets.token_hex(3)}"
    cli_ok(cli_env, "agents", "register", other, "--endpoint", URL_9, "--listens-to", "text,task")
    rows = {row["name"]: row for row in json.loads(cli_ok(cli_env, "agents", "--json"))}
    assert rows[other]["listens_to"] == ["text", "task"]


def test_a_deployed_agent_is_registered_with_what_main_py_declares() -> None:
    """`infra/deploy.sh` registers each agent by name only: the registry must still learn what
    it listens to, or the sweeper would never expect it to handle anything."""
    spec = declared_agent("checker", FUNCTIONS_DIR)
    assert spec is not None and spec.listens_to == frozenset({"execution-result"})
    assert declared_agent("user", FUNCTIONS_DIR) is None  # an HTTP function, not an agent
    assert declared_agent("nobody", FUNCTIONS_DIR) is None


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


def test_agents_set_takes_only_what_the_agent_declares(cli_env: dict[str, str]) -> None:
    """Checked against the agent's own declaration: unknown keys name the valid ones, values
    are typed and bounded, and `agents` shows the value in force and where it comes from."""
    checker = {row["name"]: row for row in json.loads(cli_ok(cli_env, "agents", "--json"))}[
        "checker"
    ]
    (rounds,) = checker["settings"]
    assert (rounds["name"], rounds["value"]) == ("max_rounds", 3)
    assert "AGENTLOBBY_MAX_ROUNDS" in rounds["source"]
    for setting, problem in [
        ("max_round=5", "has no setting 'max_round'; its settings: max_rounds"),
        ("max_rounds=50", "max_rounds must be at most 20"),
        ("max_rounds=0", "max_rounds must be at least 1"),
        ("max_rounds=three", "max_rounds takes a whole number, not 'three'"),
    ]:
        done = run_cli(cli_env, "agents", "set", "checker", setting)
        assert done.returncode == 2, (setting, done.stderr)
        assert problem in done.stderr and "Traceback" not in done.stderr
    echo = run_cli(cli_env, "agents", "set", "echo", "max_rounds=5")
    assert "its settings: none" in echo.stderr
    try:
        out = cli_ok(cli_env, "agents", "set", "checker", "max_rounds=5")
        assert out == 'agent checker settings: {"max_rounds": 5}\n'
        rows = {row["name"]: row for row in json.loads(cli_ok(cli_env, "agents", "--json"))}
        assert rows["checker"]["settings"][0]["value"] == 5
        assert rows["checker"]["settings"][0]["source"] == "registry (agents set)"
    finally:
        cli_ok(cli_env, "agents", "set", "checker", "max_rounds=3")
