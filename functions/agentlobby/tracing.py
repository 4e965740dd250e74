"""One OpenTelemetry trace per conversation, across every function, off unless configured.

The standard variables turn it on, read once per process from the settings' environment:

    OTEL_TRACES_EXPORTER=otlp         OTLP over HTTP (protobuf) to OTEL_EXPORTER_OTLP_ENDPOINT
    OTEL_TRACES_EXPORTER=gcp_trace    Cloud Trace, with the function's own account (deployed)
    OTEL_TRACES_EXPORTER=console      spans as JSON on stderr (debugging)
    unset or none                     off: the API's no-op tracer, nothing recorded or sent

W3C trace context travels with every message: the user trigger starts the conversation's trace
and stores its `traceparent` on the conversation; each envelope carries the traceparent of the
span that published it (also as a Pub/Sub attribute), so every delivery is a child of the step
that caused it. Spans are flushed at the end of each delivery or request: a function's CPU may
be throttled once it has answered, so nothing waits in a batch for later.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentlobby.errors import ConfigError
from agentlobby.messages import TRACEPARENT_PATTERN, Envelope, Usage

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.util.types import AttributeValue

    from agentlobby.config import Settings

log = logging.getLogger(__name__)

TRACER_NAME = "agentlobby"
TRACEPARENT = "traceparent"
_VALID_TRACEPARENT = re.compile(TRACEPARENT_PATTERN)
EXPORTERS = ("otlp", "otlp_proto_http", "gcp_trace", "console", "none")
_PROPAGATOR = TraceContextTextMapPropagator()
_provider: object | None = None
_watched: list[_Watched] = []
RETRY_AFTER_S = 30.0  # after a failed export, flush() does not wait for this long


def exporter_name(env: Mapping[str, str]) -> str:
    """The configured exporter ('none' when off); ConfigError names the accepted values."""
    name = (env.get("OTEL_TRACES_EXPORTER") or "none").strip().lower()
    if name not in EXPORTERS:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={name!r} is not supported; use one of {', '.join(EXPORTERS)}"
        )
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    if name.startswith("otlp") and protocol and protocol.strip() != "http/protobuf":
        raise ConfigError(
            f"OTLP protocol {protocol!r} is not supported: agentlobby exports OTLP over HTTP; "
            "set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or unset it"
        )
    return name


def enabled(config: Settings) -> bool:
    return exporter_name(config.env) != "none"


def setup(config: Settings, service: str) -> None:
    """Install the SDK's tracer provider once per process, when an exporter is configured."""
    global _provider
    if _provider is not None or not enabled(config):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": config.env.get("OTEL_SERVICE_NAME") or service,
            "gcp.project_id": config.project,
        }
    )
    provider = TracerProvider(resource=resource)
    exporter = _Watched(_exporter(exporter_name(config.env)))
    # duck-typed: subclassing SpanExporter would import the SDK even when tracing is off
    provider.add_span_processor(BatchSpanProcessor(cast("SpanExporter", exporter)))
    trace.set_tracer_provider(provider)
    _provider = provider
    _watched.append(exporter)
    log.info("tracing on: spans go to %s", exporter_name(config.env))


def _exporter(name: str) -> SpanExporter:
    if name in ("otlp", "otlp_proto_http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_ENDPOINT and headers itself
    if name == "gcp_trace":
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        return CloudTraceSpanExporter()  # type: ignore[no-untyped-call]
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()


def flush() -> None:
    """Send what this request recorded before answering (no-op when tracing is off). While
    the exporter is failing, requests do not wait for it: the processor's own thread goes on
    trying in the background, and the first export that succeeds makes flush() wait again."""
    if _provider is not None and not any(w.failing() for w in _watched):
        _provider.force_flush(timeout_millis=5_000)  # type: ignore[attr-defined]


class _Watched:
    """An exporter that remembers whether its last export failed. The SDK's force_flush
    exports in the caller's thread and ignores its timeout, and the OTLP exporter retries for
    up to 10 s: with the collector down, every delivery and post would wait that long."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._failed_at: float | None = None

    def failing(self) -> bool:
        return self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER_S

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self._inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._failed_at = None
        elif self._failed_at is None:
            log.warning(
                "spans could not be exported: requests stop waiting for the exporter and it "
                "goes on trying in the background (check OTEL_EXPORTER_OTLP_ENDPOINT)"
            )
            self._failed_at = time.monotonic()
        else:
            self._failed_at = time.monotonic()
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


@functools.cache
def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The active span as a traceparent, to carry on what it publishes; None when off."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_of(traceparent: str | None) -> Context | None:
    """The remote parent a traceparent names; None for none or a malformed one."""
    if not traceparent or not _VALID_TRACEPARENT.match(traceparent):
        return None
    return _PROPAGATOR.extract({TRACEPARENT: traceparent})


def trace_id_of(traceparent: str | None) -> str | None:
    return (
        traceparent.split("-")[1] if traceparent and _VALID_TRACEPARENT.match(traceparent) else None
    )


@contextlib.contextmanager
def delivery_span(agent: str, message: Envelope, pubsub_message_id: str) -> Iterator[trace.Span]:
    """One agent's handling of one delivery, a child of the span that published the message.
    A redelivery is a new span beside the first (marked `agentlobby.redelivery`), never hidden;
    an exception ends the span as an error and goes on (Pub/Sub redelivers)."""
    attributes: dict[str, AttributeValue] = {
        "agentlobby.agent": agent,
        "agentlobby.kind": message.kind,
        "agentlobby.sender": message.sender,
        "agentlobby.message_id": message.id,
        "agentlobby.hops": message.hops,
        "gen_ai.conversation.id": message.conversation_id,
        "gen_ai.agent.name": agent,
        "messaging.system": "gcp_pubsub",
        "messaging.operation.type": "process",
        "messaging.destination.name": message.lobby,
        "messaging.message.id": pubsub_message_id,
    }
    with tracer().start_as_current_span(
        f"{agent} handles {message.kind}",
        context=context_of(message.traceparent),
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        try:
            yield span
        except Exception:
            span.set_attribute("agentlobby.outcome", "retry")
            raise


def mark_failed(outcome: str, reason: str) -> None:
    """The active span ends as an error with why (a dead letter, a stopped conversation)."""
    span = trace.get_current_span()
    span.set_attribute("agentlobby.outcome", outcome)
    span.set_status(trace.Status(trace.StatusCode.ERROR, reason[:500]))


@contextlib.contextmanager
def model_call_span(model: str, agent: str, conversation_id: str | None) -> Iterator[trace.Span]:
    """A chat completion, named and attributed by the OpenTelemetry GenAI conventions."""
    attributes: dict[str, str] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.agent.name": agent,
    }
    if conversation_id:
        attributes["gen_ai.conversation.id"] = conversation_id
    with tracer().start_as_current_span(
        f"chat {model}", kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def record_model_answer(
    span: trace.Span, response_model: str | None, usage: Usage, cost_usd: float | None
) -> None:
    if not span.is_recording():
        return
    span.set_attributes(
        {
            "gen_ai.response.model": response_model or "",
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
        }
    )
    if cost_usd is not None:  # by the price table (cost.py); not a GenAI convention
        span.set_attribute("agentlobby.cost_usd", cost_usd)


@contextlib.contextmanager
def sandbox_span(remote: bool) -> Iterator[trace.Span]:
    """One run of model-written code; its outcome is added by record_sandbox_result."""
    with tracer().start_as_current_span(
        "sandbox run",
        kind=trace.SpanKind.CLIENT if remote else trace.SpanKind.INTERNAL,
        attributes={"agentlobby.sandbox.remote": remote},
    ) as span:
        yield span


def record_sandbox_result(
    span: trace.Span, exit_code: int | None, duration_ms: int, isolation: str, timed_out: bool
) -> None:
    if not span.is_recording():
        return
    span.set_attributes(
        {
            "agentlobby.sandbox.exit_code": -1 if exit_code is None else exit_code,
            "agentlobby.sandbox.stopped": exit_code is None,
            "agentlobby.sandbox.duration_ms": duration_ms,
            "agentlobby.sandbox.isolation": isolation,
            "agentlobby.sandbox.timed_out": timed_out,
        }
    )


@contextlib.contextmanager
def post_span(
    lobby: str, envelope: Envelope, conversation_traceparent: str | None
) -> Iterator[trace.Span]:
    """The user trigger's post: the root of a new conversation's trace, or a child of the root
    of the conversation it continues."""
    with tracer().start_as_current_span(
        f"user posts to {lobby}",
        context=context_of(conversation_traceparent) or Context(),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "agentlobby.agent": "user",
            "agentlobby.kind": envelope.kind,
            "agentlobby.message_id": envelope.id,
            "gen_ai.conversation.id": envelope.conversation_id,
            "messaging.system": "gcp_pubsub",
            "messaging.operation.type": "send",
            "messaging.destination.name": lobby,
        },
    ) as span:
        yield span
