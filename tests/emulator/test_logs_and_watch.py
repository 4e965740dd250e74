"""Logs that follow a conversation, and `watch`'s live progress, on the local stack.

The functions' own log files are read back: each delivery's lines carry its conversation,
agent, lobby, message and attempt (a redelivered message says attempt 2), and `agentlobby
logs` merges one conversation's lines from every function. `watch` is run as a user runs it,
through a pipe (plain lines, no escape codes) and on a terminal (a pty: the status line is
redrawn in place), on coding tasks played by the offline model server, to its exit status.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path
from typing import Any

from agentlobby.cost import usd
from agentlobby.store.claims import Claim, Claims
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.cli import run_cli
from tests.support.coding import (
    ADD_TESTS,
    BAD_ADD,
    GOOD_ADD,
    add_task,
    finished,
    play,
    python_block,
    reply,
    token,
)
from tests.support.lobbies import (
    create_lobby_with,
    function_server,
    registered_agent,
    settings_for,
)
from tests.support.paths import AGENTLOBBY
from tests.support.user import JsonUser, wait_for_messages

CODING_FUNCTIONS = {"vision", "coder", "interpreter", "checker"}


def records_of(path: Path, conversation_id: str) -> list[dict[str, Any]]:
    found = []
    for text in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("conversation_id") == conversation_id:
            found.append(record)
    return found


def post_task(stack: Stack, user: JsonUser, code: str, delay_ms: int = 0, **fields: Any) -> str:
    """Post an add task whose coder answers `code` (once per round, after `delay_ms`);
    returns its id."""
    tok = token()
    answer = reply(python_block(code), 30, 10, delay_ms=delay_ms)
    play(stack, {"agent": "coder", "match": tok, "replies": [answer]})
    posted = user.post("coding", add_task(tok), tests=ADD_TESTS, **fields)
    return str(posted["conversation_id"])


def cli_env_with_path(cli_env: dict[str, str]) -> dict[str, str]:
    if "PYTHONPATH" in os.environ:
        return {**cli_env, "PYTHONPATH": os.environ["PYTHONPATH"]}
    return cli_env


# --- the lines a delivery logs ---------------------------------------------------------------


def test_a_redelivered_message_logs_delivery_attempt_2(
    info: StackInfo, user: JsonUser, lobby_name: str, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    logs = tmp_path / "logs"
    with function_server("flaky", info, logs, AGENTLOBBY_TEST_MARKERS=str(markers)) as url:
        settings = settings_for(info)
        create_lobby_with(settings, lobby_name)
        with registered_agent(settings, "flaky", url, lobby_name):
            posted = user.post(lobby_name, "raise once, then answer")
            wait_for_messages(user, posted["conversation_id"], 2, timeout_s=30)
    records = records_of(logs / "test-function-flaky.log", posted["conversation_id"])
    handling = [r for r in records if r["message"].startswith("handling text from user")]
    assert [r["delivery_attempt"] for r in handling] == [1, 2]
    for record in handling:
        assert record["agent"] == "flaky"
        assert record["lobby"] == lobby_name
        assert record["message_id"] == posted["message_id"]
        assert record["severity"] == "INFO"
    # The first attempt's failure is logged by functions-framework, not by us: but every line
    # we wrote during either attempt names its conversation.
    assert all(r["message_id"] == posted["message_id"] for r in records)


def test_an_exclusive_claim_counts_each_attempt_that_takes_it(info: StackInfo) -> None:
    message_id = f"m-{token()}"
    first, second, copy = Claims(info.project), Claims(info.project), Claims(info.project)
    assert first.claim("coder", message_id, lease_s=30) is Claim.TAKEN
    assert first.attempt == 1
    assert copy.claim("coder", message_id, lease_s=30) is Claim.BUSY
    assert copy.attempt is None  # a copy that found it busy started nothing
    first.release("coder", message_id, "RuntimeError: boom")
    assert second.claim("coder", message_id, lease_s=30) is Claim.TAKEN
    assert second.attempt == 2
    second.finish("coder", message_id)
    assert copy.claim("coder", message_id, lease_s=30) is Claim.DONE
    assert copy.attempt is None


def test_a_non_exclusive_start_counts_and_a_done_delivery_does_not_start(
    info: StackInfo,
) -> None:
    message_id = f"m-{token()}"
    claims = Claims(info.project)
    assert claims.start("echo", message_id) and claims.attempt == 1
    again = Claims(info.project)
    assert again.start("echo", message_id) and again.attempt == 2
    again.finish("echo", message_id)
    late = Claims(info.project)
    assert not late.start("echo", message_id)
    assert late.attempt is None


# --- agentlobby logs ---------------------------------------------------------------------------


def test_logs_shows_one_conversation_from_every_function_in_time_order(
    stack: Stack, user: JsonUser, cli_env: dict[str, str]
) -> None:
    conversation_id = post_task(stack, user, GOOD_ADD)
    assert finished(user, conversation_id)["status"] == "succeeded"
    other = post_task(stack, user, GOOD_ADD)
    finished(user, other)

    done = run_cli(cli_env, "logs", conversation_id, "--json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records and all(r["conversation_id"] == conversation_id for r in records)
    times = [r["time"] for r in records]
    assert times == sorted(times)
    handling = [r for r in records if r["message"].startswith("handling ")]
    assert {r["agent"] for r in handling} == CODING_FUNCTIONS
    assert [r["message"].split(" from ")[0] for r in handling] == [
        "handling task",
        "handling spec",
        "handling code",
        "handling execution-result",
        "handling verdict",  # the coder hears the passing verdict and does nothing
    ]
    assert all(r["delivery_attempt"] == 1 and r["lobby"] == "coding" for r in handling)

    readable = run_cli(cli_env, "logs", conversation_id)
    assert readable.returncode == 0, readable.stderr
    lines = readable.stdout.splitlines()
    assert len(lines) == len(records)
    assert any(" checker " in line and "handling execution-result" in line for line in lines)
    assert all("attempt 1" in line for line in lines if "handling " in line)


def test_logs_of_an_unknown_or_bad_id_is_one_line_naming_the_fix(
    info: StackInfo, cli_env: dict[str, str]
) -> None:
    unknown = run_cli(cli_env, "logs", f"nothing-{token()}")
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert len(unknown.stderr.splitlines()) == 1
    assert "no conversation" in unknown.stderr and "check the id" in unknown.stderr
    bad = run_cli(cli_env, "logs", "../etc")
    assert bad.returncode == 2
    assert len(bad.stderr.splitlines()) == 1 and "conversation id" in bad.stderr


def test_logs_follow_prints_lines_as_they_come_and_stops_after_the_end(
    stack: Stack, user: JsonUser, cli_env: dict[str, str]
) -> None:
    conversation_id = post_task(stack, user, GOOD_ADD)
    follower = subprocess.Popen(
        [str(AGENTLOBBY), "logs", conversation_id, "--follow"],
        env=cli_env_with_path(cli_env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = follower.communicate(timeout=90)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert user.conversation(conversation_id)["status"] == "succeeded"
    assert any("handling execution-result from interpreter" in line for line in out.splitlines())


# --- watch ---------------------------------------------------------------------------------


def test_watch_through_a_pipe_prints_plain_progress_and_exits_0_on_success(
    stack: Stack, user: JsonUser, cli_env: dict[str, str]
) -> None:
    conversation_id = post_task(stack, user, GOOD_ADD)
    done = run_cli(cli_env, "watch", conversation_id, "--timeout", "60", timeout=90)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\r" not in done.stdout
    progress = [line for line in done.stdout.splitlines() if line.startswith("-- ")]
    assert progress[-1].startswith("-- succeeded | round 1/3 | ")
    cost = usd(user.conversation(conversation_id)["cost"]["total_usd"])
    assert cost != "$0"  # the offline model is priced (functions/agentlobby/prices.json)
    assert f"| 40 tokens | {cost} | code round 1 (2 lines): exit 0" in progress[-1]
    assert "[checker] result: succeeded after 1 round(s)" in done.stdout
    assert done.stderr.strip().startswith(f"conversation {conversation_id} succeeded")


def test_watch_exits_1_when_the_task_fails(
    stack: Stack, user: JsonUser, cli_env: dict[str, str]
) -> None:
    conversation_id = post_task(stack, user, BAD_ADD, max_rounds=1)
    done = run_cli(cli_env, "watch", conversation_id, "--timeout", "60", timeout=90)
    assert done.returncode == 1, done.stderr
    progress = [line for line in done.stdout.splitlines() if line.startswith("-- ")]
    assert progress[-1].startswith("-- failed | round 1/1 | ")
    assert f"conversation {conversation_id} failed" in done.stderr


def test_watch_on_a_terminal_redraws_its_status_line_while_the_task_runs(
    stack: Stack, user: JsonUser, cli_env: dict[str, str]
) -> None:
    # The coder thinks for a while, so the watcher (a new process, a second or two to start)
    # meets the task at work, whatever the load on the machine.
    conversation_id = post_task(stack, user, GOOD_ADD, delay_ms=8_000)
    parent, child = pty.openpty()
    watcher = subprocess.Popen(
        [str(AGENTLOBBY), "watch", conversation_id, "--timeout", "60"],
        env=cli_env_with_path(cli_env),
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=subprocess.PIPE,
    )
    os.close(child)
    chunks = []
    try:
        while True:
            try:
                data = os.read(parent, 65536)
            except OSError:  # EIO: the watcher closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        watcher.wait(timeout=90)
    finally:
        watcher.kill()
        os.close(parent)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert watcher.returncode == 0
    assert "\r\x1b[2K" in screen
    assert "\x1b[2Kcoder working | round 1/3 | " in screen
    assert "\x1b[2Ksucceeded | round 1/3 | " in screen
    assert "[checker] result: succeeded after 1 round(s)" in screen
