"""`agentlobby logs` reads function log files: JSON lines kept, others skipped, lines of several
files merged in time order, a half-written line left until it ends, and hostile text escaped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentlobby_cli.logs import LogFiles, of_conversation, parse_line, readable


def line(time: str, message: str, conversation_id: str = "c1", **fields: Any) -> str:
    record = {"severity": "INFO", "message": message, "time": time, **fields}
    return json.dumps({**record, "conversation_id": conversation_id}) + "\n"


def test_lines_of_every_function_merge_in_time_order_and_others_are_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "function-coder.log").write_text(
        "[2025-01-01 00:00:00 +0000] [7] [INFO] Booting worker with pid: 7\n"
        + line("2025-01-01T00:00:02.000000Z", "coder second")
        + line("2025-01-01T00:00:02.500000Z", "other conversation", conversation_id="c2")
        + "{not json\n"
        + '["a list"]\n'
    )
    (tmp_path / "function-vision.log").write_text(
        line("2025-01-01T00:00:01.000000Z", "vision first")
        + line("2025-01-01T00:00:03.000000Z", "vision third")
    )
    (tmp_path / "model-server.log").write_text(
        line("2025-01-01T00:00:00.000000Z", "not a function")
    )
    kept = of_conversation(LogFiles(tmp_path).read_new(), "c1")
    assert [(x.function, x.record["message"]) for x in kept] == [
        ("vision", "vision first"),
        ("coder", "coder second"),
        ("vision", "vision third"),
    ]


def test_following_reads_only_what_was_appended_and_waits_for_a_line_to_end(
    tmp_path: Path,
) -> None:
    path = tmp_path / "function-echo.log"
    path.write_text(line("2025-01-01T00:00:01.000000Z", "one"))
    files = LogFiles(tmp_path)
    assert [x.record["message"] for x in files.read_new()] == ["one"]
    assert files.read_new() == []
    whole = line("2025-01-01T00:00:02.000000Z", "two")
    with path.open("a") as f:
        f.write(whole[:20])
    assert files.read_new() == []  # half a line: not yet
    with path.open("a") as f:
        f.write(whole[20:])
    (tmp_path / "function-checker.log").write_text(line("2025-01-01T00:00:03.000000Z", "new"))
    fresh = of_conversation(files.read_new(), "c1")  # each read in time order
    assert [x.record["message"] for x in fresh] == ["two", "new"]


def test_a_readable_line_shows_the_fields_and_escapes_control_characters() -> None:
    parsed = parse_line(
        "coder",
        line(
            "2025-01-01T03:04:05.123456Z",
            "model said \x1b[2J hi",
            agent="coder",
            message_id="m1",
            delivery_attempt=2,
            **{"logging.googleapis.com/trace": "projects/p/traces/abc123"},
        ).strip(),
    )
    assert parsed is not None
    shown = readable(parsed)
    assert "\x1b" not in shown
    assert shown.startswith("03:04:05.123 coder        INFO    model said \\x1b[2J hi")
    assert shown.endswith("(message m1, attempt 2, trace abc123)")


def test_a_stack_trace_is_indented_under_its_line() -> None:
    parsed = parse_line(
        "user",
        line(
            "2025-01-01T03:04:05.123456Z", "boom", agent="coder", stack_trace="Trace\n  x"
        ).strip(),
    )
    assert parsed is not None
    first, *rest = readable(parsed).splitlines()
    assert "user/coder" in first
    assert rest == ["    Trace", "      x"]


def test_a_line_whose_fields_are_not_strings_is_shown_not_a_traceback() -> None:
    """Any process writing to a function's output can leave a JSON line of its own: a field
    of the wrong type is shown as it is, and the command goes on."""
    for odd in ({}, ["ERROR"], None, 3, {"level": "x"}):
        parsed = parse_line(
            "coder", line("2025-01-01T03:04:05.123456Z", "odd", severity=odd, agent=odd).strip()
        )
        assert parsed is not None
        shown = readable(parsed)
        assert "odd" in shown
        assert "\n" not in shown
