"""A conversation's trace as the user API answers it: `GET /conversations/{id}/trace`.

The trace id comes from the conversation (its first post started the trace, tracing.py). The
spans come from where the stack keeps them: the local stack's collector, whose address the
stack gives the user function as AGENTLOBBY_TRACE_QUERY_URL. Deployed, spans are in Cloud
Trace: the answer has the trace id and no spans, and `where` says where to look.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from agentlobby.config import Settings
from agentlobby.errors import BackendUnavailable
from agentlobby.messages import Identifier, Wire
from agentlobby.store.conversations import Conversations
from agentlobby.tracing import trace_id_of

log = logging.getLogger(__name__)

QUERY_TIMEOUT_S = 5.0
AttributeValue = str | int | float | bool | list[Any] | None


class SpanView(Wire):
    """One span: what ran, in which function, when, and how it ended."""

    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    parent_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None
    name: str
    agent: str | None
    start_unix_nano: int
    end_unix_nano: int
    status: Literal["ok", "error"]
    attributes: dict[str, AttributeValue]


class TraceView(Wire):
    """200 on GET /conversations/{id}/trace."""

    conversation_id: Identifier
    trace_id: str | None
    spans: list[SpanView]
    where: str


def conversation_trace(conversation_id: str, config: Settings) -> TraceView:
    record = Conversations(config.project).get(conversation_id)  # UnknownConversation: 404
    trace_id = trace_id_of(record.traceparent)
    query_url = config.env.get("AGENTLOBBY_TRACE_QUERY_URL")
    if trace_id is None:
        where = (
            "no trace: tracing was off when this conversation began (set OTEL_TRACES_EXPORTER, "
            "or run `agentlobby up --trace`; docs/observability.md)"
        )
        return TraceView(conversation_id=conversation_id, trace_id=None, spans=[], where=where)
    if not query_url:
        where = f"Cloud Trace (or your OTLP collector): look up trace {trace_id}"
        return TraceView(conversation_id=conversation_id, trace_id=trace_id, spans=[], where=where)
    spans = span_views(_query(query_url, trace_id))
    return TraceView(
        conversation_id=conversation_id, trace_id=trace_id, spans=spans, where=query_url
    )


def _query(query_url: str, trace_id: str) -> list[dict[str, Any]]:
    url = f"{query_url.rstrip('/')}/traces/{trace_id}"
    try:
        with urllib.request.urlopen(url, timeout=QUERY_TIMEOUT_S) as answer:
            spans: list[dict[str, Any]] = json.loads(answer.read())["spans"]
            return spans
    except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
        raise BackendUnavailable(
            f"the span collector at {query_url} did not answer: {exc}"
        ) from exc


def span_views(spans: list[Any]) -> list[SpanView]:
    """The collector's spans as views; one that does not read as a span is skipped: anything
    on loopback may export spans under a conversation's trace id, and the rest still shows."""
    views = []
    for span in spans:
        try:
            views.append(_span_view(span))
        except (ValidationError, KeyError, TypeError, ValueError, AttributeError):
            log.warning("a span in the collector is not one of ours: skipped")
    return views


def _span_view(span: dict[str, Any]) -> SpanView:
    attributes = span.get("attributes") or {}
    agent = attributes.get("agentlobby.agent") or attributes.get("gen_ai.agent.name")
    return SpanView(
        span_id=span["span_id"],
        parent_id=span.get("parent_id"),
        name=span["name"],
        agent=agent or span.get("service"),
        start_unix_nano=int(span["start_unix_nano"]),
        end_unix_nano=int(span["end_unix_nano"]),
        status="error" if span.get("status") == "error" else "ok",
        attributes=attributes,
    )
