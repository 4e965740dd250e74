"""Logging as one JSON line per record, in Cloud Logging's structured shape.

Each line has `severity`, `message`, `time` (RFC 3339, microseconds, UTC, so lines of several
functions merge in time order), the logger, and, when known, the fields that let one query
follow a conversation across every function: `conversation_id`, `agent`, `lobby`,
`message_id`, `delivery_attempt` (and `kind`). They come from the log context, which the
delivery pipeline sets once per delivery (`with log_context(...)`), so no log call has to pass
them; a field passed in `extra=` wins over the context's.

While an OpenTelemetry span is active, the line also carries
`logging.googleapis.com/trace` (`projects/PROJECT/traces/TRACE_ID`),
`logging.googleapis.com/spanId` and `logging.googleapis.com/trace_sampled`, which Cloud Logging
uses to show the line under its trace.

The context lives in a contextvar: each gunicorn thread (one request each) has its own, so
concurrent deliveries never mix their fields.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from opentelemetry import trace

CONTEXT_FIELDS = ("conversation_id", "agent", "lobby", "message_id", "delivery_attempt", "kind")
TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
SAMPLED_KEY = "logging.googleapis.com/trace_sampled"

_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "agentlobby_log_context", default=MappingProxyType({})
)


class LogContext:
    """The fields of the `with log_context(...)` block that made it; `add` sets more of them
    (a delivery learns its attempt only once it holds its claim)."""

    def add(self, **fields: object) -> None:
        _context.set({**_context.get(), **_known(fields)})


def _known(fields: Mapping[str, object]) -> dict[str, object]:
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"log context fields {sorted(unknown)} unknown: use {CONTEXT_FIELDS}")
    return {k: v for k, v in fields.items() if v is not None}


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[LogContext]:
    """Every record logged in this block (in this thread) carries these fields; blocks nest,
    and the fields outside come back when the block ends, even if it raised."""
    token = _context.set({**_context.get(), **_known(fields)})
    try:
        yield LogContext()
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, object]:
    return _context.get()


def rfc3339(created: float) -> str:
    """A record's creation time as Cloud Logging reads it: `2025-01-02T03:04:05.123456Z`."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record; `project` names the trace (`projects/P/traces/T`)."""

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": rfc3339(record.created),
            "logger": record.name,
        }
        context = _context.get()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = context.get(name)
            if value is not None:
                entry[name] = value
        entry.update(self._trace_fields())
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)

    def _trace_fields(self) -> dict[str, object]:
        span_context = trace.get_current_span().get_span_context()
        if not span_context.is_valid:
            return {}
        trace_id = trace.format_trace_id(span_context.trace_id)
        return {
            TRACE_KEY: f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id,
            SPAN_KEY: trace.format_span_id(span_context.span_id),
            SAMPLED_KEY: span_context.trace_flags.sampled,
        }


def configure(level: str = "INFO", project: str | None = None) -> None:
    """Install the JSON handler on the root logger once per process. Without `project`, the
    settings' project (config.py) names the traces."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, CloudLoggingFormatter) for h in root.handlers):
        return
    if project is None:
        from agentlobby.config import settings

        project = settings().project
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CloudLoggingFormatter(project))
    root.addHandler(handler)
    root.setLevel(level)
