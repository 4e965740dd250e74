"""The `agentlobby` command without a stack: its help, its exit statuses, the files `send`
reads, and what it says when no stack is running."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from agentlobby_cli.arguments import image_file
from agentlobby_cli.main import build_parser, main
from tests.support.cli import run_cli

PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"
IMAGES = {
    "image/png": PNG,
    "image/jpeg": b"\xff\xd8\xff\xe0\0\x10JFIF",
    "image/gif": b"GIF89a\x01\0\x01\0",
    "image/webp": b"RIFF\x24\0\0\0WEBPVP8 ",
}


def subcommands() -> list[str]:
    parser = build_parser()
    choices = next(a.choices for a in parser._actions if a.dest == "command")
    assert choices is not None
    return sorted(choices)


def test_help() -> None:
    done = run_cli({}, "--help")
    assert done.returncode == 0
    for command in subcommands():
        assert command in done.stdout
    assert "exit status: 0 done" in " ".join(done.stdout.split())


@pytest.mark.parametrize("command", subcommands())
def test_each_subcommand_has_help_with_its_own_usage_line(command: str) -> None:
    done = run_cli({}, command, "--help", timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: agentlobby {command} ")


@pytest.mark.parametrize("command", ["send", "watch"])
def test_the_waiting_commands_document_their_exit_statuses(command: str) -> None:
    done = run_cli({}, command, "--help")
    text = " ".join(done.stdout.split())
    assert "1 the conversation failed" in text
    assert "3 --timeout passed before the conversation ended" in text


@pytest.mark.parametrize(
    "args",
    [
        ("lobbies",),
        ("agents",),
        ("send", "chat", "hi"),
        ("chat", "chat"),
        ("watch", "x"),
        ("env",),
    ],
)
def test_no_stack_says_to_run_up(tmp_path: Path, args: tuple[str, ...]) -> None:
    env = {"PATH": "/usr/bin:/bin", "AGENTLOBBY_STATE_DIR": str(tmp_path)}
    done = run_cli(env, *args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "no running local stack found: start one with `agentlobby up`" in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("mime_type", sorted(IMAGES))
def test_an_image_type_is_read_from_its_bytes_not_its_name(tmp_path: Path, mime_type: str) -> None:
    path = tmp_path / "picture.txt"
    path.write_bytes(IMAGES[mime_type])
    assert image_file(str(path)) == {
        "mime_type": mime_type,
        "data_base64": base64.b64encode(IMAGES[mime_type]).decode(),
    }


@pytest.fixture
def no_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(("AGENTLOBBY_", "PUBSUB_", "FIRESTORE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGENTLOBBY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("option", "content", "expected"),
    [
        ("--image", b"not an image", "image 'f' is not a PNG, JPEG, GIF or WebP image (its first"),
        ("--image", b"", "is not a PNG, JPEG, GIF or WebP image (its first bytes are missing"),
        ("--image", PNG + b"\0" * 700_000, "image 'f' is 700016 bytes; the limit is 600000"),
        ("--image", None, "image 'f' does not exist"),
        ("--image", "folder", "image 'f' is a folder"),
        ("--tests", b"\xff\xfe not utf-8", "tests file 'f' is not UTF-8 text"),
        ("--tests", b"  \n", "tests file 'f' is empty"),
        ("--tests", None, "tests file 'f' does not exist"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(
    no_stack: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    content: bytes | str | None,
    expected: str,
) -> None:
    if content == "folder":
        (no_stack / "f").mkdir()
    elif isinstance(content, bytes):
        (no_stack / "f").write_bytes(content)
    assert main(["send", "coding", "task", option, "f"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"agentlobby send: argument {option}: ")
    assert expected in err


def test_an_unreadable_file_is_one_line_and_exit_2(
    no_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    (no_stack / "f").write_text("assert True\n")
    (no_stack / "f").chmod(0)
    assert main(["send", "coding", "task", "--tests", "f"]) == 2
    assert "cannot read tests file 'f': Permission denied" in capsys.readouterr().err


def test_good_files_get_as_far_as_looking_for_the_stack(
    no_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_stack / "tests.py").write_text("assert add(1, 2) == 3\n")
    (no_stack / "board.png").write_bytes(PNG)
    argv = ["send", "coding", "task", "--tests", "tests.py", "--image", "board.png"]
    argv += ["--max-rounds", "2", "--token-budget", "9000", "--wait", "--timeout", "5"]
    assert main(argv) == 1
    assert "no running local stack found" in capsys.readouterr().err
