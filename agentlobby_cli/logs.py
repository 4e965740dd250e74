"""`agentlobby logs CONVERSATION_ID [--follow]`: one conversation's log lines from every function
of the local stack, merged in time order.

The stack writes each function server's output to `function-NAME.log` in its log directory
(`agentlobby stacks` shows it). The library logs one JSON object per line (agentlobby/logs.py);
the lines whose `conversation_id` matches are kept and sorted by their `time`, and the rest
(gunicorn's own lines, other conversations) are skipped. `--follow` then reads what is
appended to the files (a new function log too, such as a restarted server's), printing the
new lines of each read in time order, until the conversation is over and FOLLOW_GRACE_S more
seconds have passed (the last steps still log after the end), or Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlobby.errors import ApiError, ConfigError
from agentlobby.lifecycle import is_over
from agentlobby_cli.arguments import escaped

FUNCTION_LOG_PREFIX = "function-"
FOLLOW_READ_S = 0.25
STATUS_CHECK_S = 2.0
FOLLOW_GRACE_S = 3.0
SHOWN_FIELDS = (("message_id", "message"), ("delivery_attempt", "attempt"), ("kind", "kind"))


@dataclass(frozen=True)
class LogLine:
    """One JSON log record and the function whose log file held it."""

    function: str
    record: Mapping[str, Any]
    raw: str

    @property
    def time(self) -> str:
        return str(self.record.get("time", ""))


def parse_line(function: str, text: str) -> LogLine | None:
    """A log line as a record; None for what is not one of ours (gunicorn's lines, junk)."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or "message" not in record:
        return None
    return LogLine(function, record, text)


def function_of(path: Path) -> str:
    return path.stem.removeprefix(FUNCTION_LOG_PREFIX)


def of_conversation(lines: Iterable[LogLine], conversation_id: str) -> list[LogLine]:
    """The lines of one conversation in time order (the file order among equal times)."""
    kept = [line for line in lines if line.record.get("conversation_id") == conversation_id]
    return sorted(kept, key=lambda line: line.time)


def readable(line: LogLine) -> str:
    """`HH:MM:SS.mmm function[/agent] SEVERITY message (fields)`, control characters escaped."""
    record = line.record
    clock = line.time[11:23] if len(line.time) >= 23 else line.time or "?"
    who = line.function
    agent = record.get("agent")
    if agent and agent != who:
        who = f"{who}/{agent}"
    fields = [f"{label} {record[key]}" for key, label in SHOWN_FIELDS if key in record]
    trace = str(record.get("logging.googleapis.com/trace", ""))
    if trace:
        fields.append(f"trace {trace.rsplit('/', 1)[-1]}")
    tail = f"  ({', '.join(fields)})" if fields else ""
    severity = str(record.get("severity", "?"))  # any JSON: a stray line's is not a string
    text = f"{clock} {who:<12} {severity:<7} {record['message']}{tail}"
    shown = escaped(text)
    stack = record.get("stack_trace")
    if stack:
        shown += "\n" + "\n".join("    " + escaped(row) for row in str(stack).splitlines())
    return shown


@dataclass
class LogFiles:
    """The function logs of a folder, read from where the last read stopped (like `tail -f`);
    a partial last line waits for its end."""

    folder: Path
    offsets: dict[Path, int] = field(default_factory=dict)

    def read_new(self) -> list[LogLine]:
        found: list[LogLine] = []
        for path in sorted(self.folder.glob(f"{FUNCTION_LOG_PREFIX}*.log")):
            start = self.offsets.get(path, 0)
            try:
                with path.open("rb") as f:
                    f.seek(start)
                    chunk = f.read()
            except OSError:
                continue
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[path] = start + len(complete)
            function = function_of(path)
            for text in complete.decode("utf-8", "replace").splitlines():
                line = parse_line(function, text)
                if line is not None:
                    found.append(line)
        return found


def log_folder(info: Any) -> Path:
    """The stack's log folder; ConfigError naming the fix when there is none to read."""
    if not info.log_dir:
        raise ConfigError(
            "this stack was given by AGENTLOBBY_USER_URL, so its log files are not known here: "
            "`agentlobby logs` reads a local stack started by `agentlobby up`; for a deployed "
            "one, query Cloud Logging: gcloud logging read 'jsonPayload.conversation_id=\"ID\"'"
        )
    folder = Path(info.log_dir)
    if not folder.is_dir():
        raise ConfigError(
            f"the stack's log folder {folder} is gone: was it deleted? restart the stack with "
            "`agentlobby up`"
        )
    return folder


def run_logs(info: Any, client: Any, conversation_id: str, *, follow: bool, as_json: bool) -> int:
    """Print the conversation's lines; with `follow`, go on until it is over plus the grace."""
    status = _status(client, conversation_id, info)
    files = LogFiles(log_folder(info))
    shown = _show(of_conversation(files.read_new(), conversation_id), as_json)
    if not follow:
        if shown == 0:
            print(
                f"no log lines for conversation {conversation_id} in {files.folder} "
                "(its functions have not logged yet, or the stack was restarted since)",
                file=sys.stderr,
            )
        return 0
    over_since = time.monotonic() if is_over(status) else None
    last_check = time.monotonic()
    while over_since is None or time.monotonic() - over_since < FOLLOW_GRACE_S:
        time.sleep(FOLLOW_READ_S)
        _show(of_conversation(files.read_new(), conversation_id), as_json)
        if over_since is None and time.monotonic() - last_check >= STATUS_CHECK_S:
            last_check = time.monotonic()
            if is_over(_status(client, conversation_id, info)):
                over_since = last_check
    return 0


def _status(client: Any, conversation_id: str, info: Any) -> str:
    try:
        return str(client.conversation(conversation_id).status)
    except ApiError as exc:
        if exc.status != 404:
            raise
        where = f"stack {info.name}" if info.name else info.user_url
        raise ApiError(
            404,
            f"no conversation {conversation_id!r} in {where}: check the id (`agentlobby send` "
            "prints it as conversation_id), or pick the stack it ran on with --stack NAME",
        ) from None


def _show(lines: list[LogLine], as_json: bool) -> int:
    for line in lines:
        print(line.raw if as_json else readable(line), flush=True)
    return len(lines)
