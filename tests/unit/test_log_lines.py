"""One log record is one JSON line in Cloud Logging's shape, carrying the delivery's context and
the active trace; the trace fields are checked against a real OpenTelemetry SDK span."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from agentlobby.logs import (
    SAMPLED_KEY,
    SPAN_KEY,
    TRACE_KEY,
    CloudLoggingFormatter,
    current_context,
    log_context,
)

PROJECT = "proj-123"


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(CloudLoggingFormatter(PROJECT))
    logger = logging.getLogger(f"test.logs.{id(out)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_has_severity_message_and_a_utc_microsecond_time(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    logger.warning("disk %s", "full")
    (entry,) = records(out)
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "disk full"
    assert entry["time"].endswith("Z")
    parsed = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert len(entry["time"].split(".")[1]) == 7  # six digits and the Z
    assert abs(parsed.timestamp() - datetime.now(UTC).timestamp()) < 3600
    for key in ("conversation_id", "agent", TRACE_KEY, SPAN_KEY, SAMPLED_KEY):
        assert key not in entry


def test_the_context_reaches_every_line_in_the_block_and_extra_wins(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    with log_context(conversation_id="c1", agent="coder", lobby="coding", message_id="m1") as ctx:
        logger.info("one")
        ctx.add(delivery_attempt=2)
        logger.info("two", extra={"agent": "someone-else"})
        with log_context(message_id="m2"):
            logger.info("nested")
        logger.info("after nested")
    logger.info("outside")
    one, two, nested, after, outside = records(out)
    assert one["conversation_id"] == "c1" and one["lobby"] == "coding"
    assert "delivery_attempt" not in one
    assert two["delivery_attempt"] == 2
    assert two["agent"] == "someone-else"
    assert nested["message_id"] == "m2" and nested["delivery_attempt"] == 2
    assert after["message_id"] == "m1"
    assert "conversation_id" not in outside and "delivery_attempt" not in outside
    assert current_context() == {}


def test_the_context_is_left_even_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), log_context(conversation_id="c1"):
        raise RuntimeError("boom")
    assert current_context() == {}


def test_an_unknown_context_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"), log_context(conversation="c1"):
        pass


def test_another_thread_does_not_see_this_threads_context(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    with log_context(conversation_id="mine"):
        thread = threading.Thread(target=logger.info, args=("from the other thread",))
        thread.start()
        thread.join()
    (entry,) = records(out)
    assert "conversation_id" not in entry


def test_inside_a_span_the_line_names_its_trace_and_span(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("deliver") as span:
        logger.info("inside")
        context = span.get_span_context()
    logger.info("outside")
    inside, outside = records(out)
    assert inside[TRACE_KEY] == f"projects/{PROJECT}/traces/{context.trace_id:032x}"
    assert inside[SPAN_KEY] == f"{context.span_id:016x}"
    assert len(inside[SPAN_KEY]) == 16
    assert inside[SAMPLED_KEY] is True
    for key in (TRACE_KEY, SPAN_KEY, SAMPLED_KEY):
        assert key not in outside


def test_a_span_not_sampled_says_so(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("deliver"):
        logger.info("inside")
    (entry,) = records(out)
    assert entry[SAMPLED_KEY] is False
    assert entry[TRACE_KEY].startswith(f"projects/{PROJECT}/traces/")


def test_an_exception_is_kept_as_its_stack_trace(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = lines
    try:
        raise KeyError("lost")
    except KeyError:
        logger.exception("failed")
    (entry,) = records(out)
    assert entry["severity"] == "ERROR"
    assert "KeyError: 'lost'" in entry["stack_trace"]
