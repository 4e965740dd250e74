"""The command line's argument checks: each refuses bad input with one line, before any I/O.

`Parser` is argparse with one change: a usage error is one line (what was wrong, and where
the help is) and exit status 2, with anything the user typed shown escaped and shortened, so a
control character or a megabyte of input cannot garble the terminal. The `type=` functions
below check names and ids with the library's own rules (agentlobby.messages), so the CLI
refuses exactly what the API would refuse, and read the files `send` attaches.

Standard library only at import time (`run-code` must start fast); the library's rules are
imported when a check runs.
"""

from __future__ import annotations

import argparse
import base64
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

EXIT_USAGE = 2
SHOWN_CHARS = 60
MESSAGE_CHARS = 400
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 1000
MAX_SETTING_CHARS = 10_000
# A message is at most 900,000 bytes serialised, and base64 makes 4 bytes of 3.
MAX_IMAGE_BYTES = 600_000
IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
SETTING_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
HOST = re.compile(r"^[A-Za-z0-9.:_-]{1,253}$")


def escaped(text: str, keep: str = "") -> str:
    """`text` with every unprintable character (control, lone surrogate) but those in `keep`
    as its escape."""
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def shown(value: str) -> str:
    """A value as an error message shows it: quoted, escaped, and shortened when long."""
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return f"{value[:40]!r}... ({len(value)} characters)"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        message = escaped(message)
        if len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS] + "..."
        self.exit(EXIT_USAGE, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def _library_check(check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace(repr(value), shown(value))) from None


def lobby_name(value: str) -> str:
    from agentlobby.messages import check_lobby_name

    return _library_check(check_lobby_name, value)


def agent_name(value: str) -> str:
    from agentlobby.messages import check_agent_name

    return _library_check(check_agent_name, value)


def conversation_id(value: str) -> str:
    from agentlobby.messages import MESSAGE_ID

    if not MESSAGE_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"conversation id {shown(value)} must be 1-64 characters of A-Z, a-z, 0-9, '_' and "
            "'-' (as `send` prints it)"
        )
    return value


def stack_name(value: str) -> str:
    from local_emulator.stack_state import check_stack_name

    return _library_check(check_stack_name, value)


def message_text(value: str) -> str:
    from agentlobby.messages import MAX_TEXT_CHARS

    if not value.strip():
        raise argparse.ArgumentTypeError("the message is empty: give some text")
    if len(value) > MAX_TEXT_CHARS:
        raise argparse.ArgumentTypeError(
            f"the message is {len(value)} characters; the limit is {MAX_TEXT_CHARS}"
        )
    _utf8(value, "the message")
    return value


def _utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(
            f"{what} is not valid UTF-8 text: {shown(value)}"
        ) from None


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is not a number of seconds, e.g. 60"
        ) from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise argparse.ArgumentTypeError(f"{shown(value)} must be a positive number of seconds")
    return seconds


def dollars(value: str) -> float:
    """A cost budget in US dollars: positive, finite, at most MAX_COST_BUDGET."""
    from agentlobby.messages import MAX_COST_BUDGET

    try:
        amount = float(value.strip().removeprefix("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is not an amount of US dollars, e.g. 0.05"
        ) from None
    if not (0 < amount <= MAX_COST_BUDGET and math.isfinite(amount)):
        raise argparse.ArgumentTypeError(
            f"{shown(value)} must be more than 0 and at most {MAX_COST_BUDGET:,.0f} US dollars"
        )
    return amount


def int_from(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{shown(value)} is not {what} from {low} to {high}"
            ) from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number} is not from {low} to {high}")
        return number

    parse.__name__ = what
    return parse


def port_base(value: str) -> int:
    number = int_from(0, 65535, "a port")(value)
    if 0 < number < 1024:
        raise argparse.ArgumentTypeError(
            f"{number} is a privileged port: pass 1024-65535, or 0 for free ports"
        )
    return number


def _path(value: str, what: str) -> Path:
    if not value or "\0" in value or len(value) > 4096:
        raise argparse.ArgumentTypeError(f"{shown(value)} is not a {what} path")
    _utf8(value, f"the {what} path")
    return Path(value)


def _not_a_file(path: Path) -> str | None:
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder"
    return "is not a regular file" if path.exists() else "does not exist"


def _read(value: str, what: str) -> bytes:
    path = _path(value, what)
    try:
        if problem := _not_a_file(path):
            raise argparse.ArgumentTypeError(f"{what} {shown(value)} {problem}")
        if path.stat().st_size > 4 * MAX_IMAGE_BYTES:
            raise argparse.ArgumentTypeError(
                f"{what} {shown(value)} is {path.stat().st_size} bytes; far too big to send"
            )
        return path.read_bytes()
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot read {what} {shown(value)}: {exc.strerror}"
        ) from None


def existing_file(value: str) -> Path:
    path = _path(value, "file")
    try:
        if problem := _not_a_file(path):
            raise argparse.ArgumentTypeError(f"file {shown(value)} {problem}")
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {shown(value)}: {exc.strerror}") from None
    return path


def output_file(value: str) -> Path:
    path = _path(value, "output file")
    try:
        usable = not path.is_dir() and path.parent.is_dir()
    except OSError:
        usable = False
    if not usable:
        raise argparse.ArgumentTypeError(
            f"cannot write {shown(value)}: give a file in an existing folder"
        )
    return path


def tests_file(value: str) -> str:
    """The tests of a coding task: a UTF-8 Python file, run after the code."""
    from agentlobby.messages import MAX_TEXT_CHARS

    data = _read(value, "tests file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise argparse.ArgumentTypeError(
            f"tests file {shown(value)} is not UTF-8 text: pass a Python file"
        ) from None
    if not text.strip():
        raise argparse.ArgumentTypeError(f"tests file {shown(value)} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise argparse.ArgumentTypeError(
            f"tests file {shown(value)} has {len(text)} characters; the limit is {MAX_TEXT_CHARS}"
        )
    return text


def image_mime_type(data: bytes) -> str | None:
    """The image type its first bytes say (PNG, JPEG, GIF, WebP), whatever the file's name."""
    for signature, mime_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_file(value: str) -> dict[str, Any]:
    """An image for a coding task, as the API takes it: its type read from its bytes, base64."""
    data = _read(value, "image")
    mime_type = image_mime_type(data)
    if mime_type is None:
        raise argparse.ArgumentTypeError(
            f"image {shown(value)} is not a PNG, JPEG, GIF or WebP image (its first bytes are "
            f"{data[:8].hex(' ') or 'missing: the file is empty'})"
        )
    if len(data) > MAX_IMAGE_BYTES:
        raise argparse.ArgumentTypeError(
            f"image {shown(value)} is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES} "
            "(a message holds at most 900,000 bytes): send a smaller image"
        )
    return {"mime_type": mime_type, "data_base64": base64.b64encode(data).decode("ascii")}


def url(value: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        ok = False
    if not ok or len(value) > MAX_URL_CHARS or not value.isprintable() or " " in value:
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is not an http(s) URL, e.g. http://127.0.0.1:8090"
        )
    return value


def a2a_url(value: str) -> str:
    """`--a2a URL`: an http(s) URL without credentials in it (the registry is readable by
    every function) and without a fragment."""
    from urllib.parse import urlsplit

    checked = url(value)
    parts = urlsplit(checked)
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise argparse.ArgumentTypeError(
            f"{shown(value)} must not carry a user, a password or a #fragment: give the A2A "
            "agent's base URL, e.g. http://127.0.0.1:9999"
        )
    return checked


def host(value: str) -> str:
    if not HOST.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is not a host name or address, e.g. 127.0.0.1"
        )
    return value


def description(value: str) -> str:
    if len(value) > MAX_DESCRIPTION_CHARS or not value.isprintable():
        raise argparse.ArgumentTypeError(
            f"the description must be one line of at most {MAX_DESCRIPTION_CHARS} printable "
            f"characters, not {shown(value)}"
        )
    _utf8(value, "the description")
    return value


def service_account(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.gserviceaccount\.com", value):
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is not a service account e-mail, e.g. "
            "pusher@PROJECT.iam.gserviceaccount.com"
        )
    return value


def setting(value: str) -> str:
    """`KEY=VALUE` of `agents set`: the key a lower-case name, the value one line."""
    key, sep, raw = value.partition("=")
    if not sep or not SETTING_KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is not KEY=VALUE with a lower-case KEY, e.g. max_rounds=5"
        )
    if len(raw) > MAX_SETTING_CHARS or not raw.isprintable():
        raise argparse.ArgumentTypeError(
            f"the value of {key} must be one line of at most {MAX_SETTING_CHARS} printable "
            "characters"
        )
    _utf8(raw, f"the value of {key}")
    return value


def kinds(value: str) -> list[str]:
    """`--listens-to text,task`: message kinds the envelope knows, comma-separated."""
    from agentlobby.messages import KINDS

    given = [kind.strip() for kind in value.split(",") if kind.strip()]
    unknown = [kind for kind in given if kind not in KINDS]
    if not given or unknown:
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is not a comma-separated list of message kinds: "
            f"choose from {', '.join(KINDS)}"
        )
    return given


def say_error(command: str, message: str) -> None:
    """One line on stderr, as every command reports what it could not do."""
    text = escaped(message, keep="\n")
    print(f"agentlobby {command}: {text}", file=sys.stderr, flush=True)
