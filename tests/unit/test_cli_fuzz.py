"""Every subcommand's arguments, fuzzed: the CLI never shows a traceback for user input.

Each example builds one command line from slots (a lobby name, an agent name, a conversation
id, a number of seconds, a file...), each either valid or hostile: spaces, '/', non-ASCII,
control characters, lone surrogates (what undecodable bytes in argv become), megabytes. It runs
`agentlobby_cli.main.main(argv)` in-process, with no stack anywhere (and `up` and the model
server's serving stubbed), and asserts:

- main returns an exit status; nothing escapes it;
- nothing looks like a traceback, and stderr is at most one short line;
- a hostile value the library's rules refuse is a usage error: exit status 2, before anything
  connects;
- a command line of valid values gets as far as looking for the stack (exit status 1) or
  does its work (0).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentlobby_cli.demo
import agentlobby_cli.run_code
import agentlobby_cli.up
from agentlobby.errors import ConfigError, SandboxUnavailable
from agentlobby.messages import AGENT_NAME, LOBBY_NAME, MAX_TEXT_CHARS, MESSAGE_ID
from agentlobby_cli import arguments as check
from agentlobby_cli.main import main
from local_emulator.model_server import server as model_server
from local_emulator.stack_state import STACK_NAME

EXAMPLES = 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32

# What users type by mistake, and what attackers type on purpose.
NASTY = [
    "",
    " ",
    "a b",
    "chat/../x",
    "/",
    ".",
    "..",
    "é",
    "名前",
    "chat\x00",
    "\x1b[31mred",
    "line\nbreak",
    "\udcff\udcfe",
    "x" * 100_000,
    "CHAT",
    "Echo",
    "__id__",
    "%s%n",
    "{}",
    "nan",
    "inf",
    "-1",
    "0",
    "1e309",
    "99999999999999999999999",
    "http://",
    "javascript:alert(1)",
    "=",
    "KEY=",
    "=value",
    "a" * 65,
]
ANY_CHAR = st.characters(codec=None, exclude_categories=())
HOSTILE = st.one_of(st.sampled_from(NASTY), st.text(ANY_CHAR, max_size=40))


@dataclass(frozen=True)
class Slot:
    """One argument: its valid values, and which values the CLI must refuse."""

    valid: list[str]
    refused: Callable[[str], bool]


def _not_number(low: float, high: float) -> Callable[[str], bool]:
    def refused(value: str) -> bool:
        try:
            number = float(value)
        except ValueError:
            return True
        return not (math.isfinite(number) and low <= number <= high)

    return refused


def _not_whole(low: int, high: int) -> Callable[[str], bool]:
    def refused(value: str) -> bool:
        try:
            return not low <= int(value) <= high
        except ValueError:
            return True

    return refused


def _surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _refused_by(parse: Callable[[str], object], value: str) -> bool:
    """For free-form values (URLs, KEY=VALUE): the CLI's own check is the oracle; the other
    assertions (no traceback, one line) still hold."""
    try:
        parse(value)
    except argparse.ArgumentTypeError:
        return True
    return False


def _not_file(value: str) -> bool:  # the fixture's files are the only ones in the folder
    return value not in ("tests.py", "image.png", "script.json")


LOBBY = Slot(["chat", "coding", "my-lobby"], lambda v: not LOBBY_NAME.fullmatch(v))
AGENT = Slot(["echo", "coder"], lambda v: not AGENT_NAME.fullmatch(v))
CONVERSATION = Slot(["abc123", "0123456789abcdef"], lambda v: not MESSAGE_ID.fullmatch(v))
STACK = Slot(["stack-8680", "mine"], lambda v: not STACK_NAME.fullmatch(v))
SECONDS = Slot(["1", "0.5"], lambda v: _not_number(0, math.inf)(v) or float(v) <= 0)
TEXT = Slot(
    ["hello", "Write fizzbuzz(n)"],
    lambda v: not v.strip() or len(v) > MAX_TEXT_CHARS or _surrogates(v),
)
TESTS = Slot(["tests.py"], _not_file)
IMAGE = Slot(["image.png"], _not_file)
SCRIPT = Slot(["script.json"], _not_file)
ROUNDS = Slot(["3"], _not_whole(1, 20))
BUDGET = Slot(["20000"], _not_whole(1, 100_000_000))
DOLLARS = Slot(["0.05", "$2"], lambda v: _refused_by(check.dollars, v))
PORT_BASE = Slot(["9000", "0"], lambda v: _not_whole(0, 65535)(v) or 0 < int(v) < 1024)
PORT = Slot(["0", "8700"], _not_whole(0, 65535))
SETTING = Slot(["max_rounds=5", 'note="hi"'], lambda v: _refused_by(check.setting, v))
URL = Slot(["http://127.0.0.1:9/"], lambda v: _refused_by(check.url, v))
HOST = Slot(["127.0.0.1", "::1"], lambda v: _refused_by(check.host, v))
EXTRA = Slot(["--json"], lambda v: True)  # no positional argument is expected
# A line of the command: fixed words, and slots to fill.
Line = list[str | Slot]
COMMANDS: dict[str, list[Line]] = {
    "send": [
        ["send", LOBBY, TEXT],
        ["send", LOBBY, TEXT, "--conversation", CONVERSATION, "--wait"],
        ["send", "coding", TEXT, "--tests", TESTS, "--image", IMAGE],
        ["send", "coding", TEXT, "--max-rounds", ROUNDS, "--token-budget", BUDGET],
        ["send", "coding", TEXT, "--cost-budget", DOLLARS],
        ["send", LOBBY, TEXT, "--wait", "--timeout", SECONDS, "--idle", SECONDS],
        ["--stack", STACK, "send", LOBBY, TEXT],
    ],
    "watch": [["watch", CONVERSATION], ["watch", CONVERSATION, "--timeout", SECONDS]],
    "trace": [["trace", CONVERSATION], ["trace", CONVERSATION, "--json"]],
    "logs": [
        ["logs", CONVERSATION, "--follow"],
        ["logs", "--stack", STACK, CONVERSATION, "--json"],
    ],
    "chat": [["chat", LOBBY], ["chat", LOBBY, "--conversation", CONVERSATION]],
    "enter": [["enter", AGENT, LOBBY], ["enter", "--stack", STACK, AGENT, LOBBY]],
    "leave": [["leave", AGENT, LOBBY]],
    "lobbies": [["lobbies", "create", LOBBY], ["lobbies", "--stack", STACK]],
    "agents": [
        ["agents", "set", AGENT, SETTING],
        ["agents", "register", AGENT, "--endpoint", URL],
        ["agents", "register", "probe", "--endpoint", URL],
    ],
    "env": [["env", "--stack", STACK], ["--stack", STACK, "env"]],
    "stacks": [["stacks", EXTRA]],
    "up": [
        ["up", "--port-base", PORT_BASE],
        ["up", "--name", STACK],
        ["up", "--model-script", SCRIPT, "--port-base", PORT_BASE],
    ],
    "demo": [["demo", EXTRA]],
    "run-code": [
        ["run-code", TESTS, "--timeout", SECONDS],
        ["run-code", TESTS, "--memory-mb", Slot(["64"], _not_whole(1, 10**100))],
        ["run-code", Slot(["x"], lambda v: True)],
    ],
    "model-server": [
        ["model-server", "--script", SCRIPT, "--port", PORT],
        ["model-server", "--record", Slot(["new.json"], lambda v: True), "--host", HOST],
        ["model-server", "--script", SCRIPT, "--upstream", URL],
    ],
}


@st.composite
def command_lines(draw: st.DrawFn, command: str) -> tuple[list[str], bool]:
    """(argv, whether some value in it must be refused as a usage error)."""
    line = draw(st.sampled_from(COMMANDS[command]))
    argv, refused = [], False
    for part in line:
        if isinstance(part, str):
            argv.append(part)
            continue
        if draw(st.booleans()):
            argv.append(draw(st.sampled_from(part.valid)))
            continue
        value = draw(HOSTILE)
        argv.append(value)
        # A value that starts with '-' is read as an option: argparse's call, not ours.
        if not value.startswith("-") and part.refused(value):
            refused = True
    return argv, refused


@pytest.fixture
def no_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder to run in, an empty state directory, nothing pointing at any stack,
    and `up` and the model server unable to start anything."""
    for name in list(os.environ):
        if name.startswith(("AGENTLOBBY_", "PUBSUB_", "FIRESTORE_", "OPENAI_")):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("AGENTLOBBY_STATE_DIR", str(tmp_path / "state"))
    (work / "tests.py").write_text("assert True\n")
    (work / "image.png").write_bytes(PNG)
    (work / "script.json").write_text('{"rules": []}')
    monkeypatch.setattr(agentlobby_cli.up, "run_up", lambda **kwargs: 0)
    monkeypatch.setattr(agentlobby_cli.demo, "run_demo", lambda: 0)

    def no_sandbox(*args: object, **kwargs: object) -> object:
        raise SandboxUnavailable("the fuzz test runs no code")

    monkeypatch.setattr(agentlobby_cli.run_code, "run_python", no_sandbox)

    class NoServer:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise ConfigError("the fuzz test starts no model server")

    monkeypatch.setattr(model_server, "ModelServer", NoServer)
    yield work


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_argument_gets_a_traceback(
    command: str, no_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    @FUZZ
    @given(case=command_lines(command))
    def check(case: tuple[list[str], bool]) -> None:
        argv, refused = case
        code, out, err = run(argv, capsys)
        shown = (argv, code, out[:300], err[:600])
        assert isinstance(code, int), shown
        assert "Traceback" not in out + err, shown
        assert err.count("\n") <= 1 and len(err) < 1200, shown
        if refused:
            assert code == 2, shown
            assert err.startswith("agentlobby"), shown
        else:
            assert code in (0, 1, 2, 3), shown

    check()


def test_the_fuzzed_commands_are_every_subcommand() -> None:
    from tests.unit.test_cli_usage import subcommands

    assert sorted(COMMANDS) == subcommands()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["send", "a b", "hi"], "lobby name 'a b' must be 3-63 characters"),
        (["send", "chat/x", "hi"], "lobby name 'chat/x' must be"),
        (["send", "chat", "hi", "--conversation", "é"], "conversation id 'é' must be"),
        (["watch", "a\x1b[2Jb"], "conversation id 'a\\x1b[2Jb' must be"),
        (["watch", "\udcff"], "conversation id '\\udcff' must be"),
        (
            ["watch", "x" * 1_000_000],
            "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (1000000 characters)",
        ),
        (["enter", "echo bot", "chat"], "agent name 'echo bot' must be 2-40 characters"),
        (["leave", "echo", "\tchat"], "lobby name '\\tchat' must be"),
        (["chat", "Chat"], "lobby name 'Chat' must be"),
        (["lobbies", "create", "x" * 64], "lobby name 'xxxx"),
        (["agents", "set", "echo", "no equals"], "is not KEY=VALUE"),
        (["agents", "register", "probe", "--endpoint", "ftp://x"], "is not an http(s) URL"),
        (["--stack", "../etc", "lobbies"], "stack name '../etc' must be"),
        (["up", "--name", "a/b"], "stack name 'a/b' must be"),
        (["up", "--port-base", "70000"], "70000 is not from 0 to 65535"),
        (["send", "chat", "hi", "--timeout", "-1"], "'-1' must be a positive number of seconds"),
        (["send", "chat", "hi", "--timeout", "nan"], "'nan' must be a positive number"),
        (["send", "coding", "hi", "--max-rounds", "21"], "21 is not from 1 to 20"),
        (["model-server", "--port", "99999", "--script", "script.json"], "99999 is not from 0"),
        (["run-code", "no\x00file.py"], "cannot read FILE 'no\\x00file.py'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], expected: str, no_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert out == ""
    assert err.count("\n") == 1, err
    assert expected in err
    prog = " ".join(w for w in ["agentlobby", *argv[:1]] if not w.startswith("-"))
    assert err.startswith(f"{prog}: ") or err.startswith("agentlobby: "), err
    assert err.rstrip().endswith("--help`"), err
