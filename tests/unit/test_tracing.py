"""Tracing without I/O: the configuration's refusals, trace context on envelopes, and the tree
`agentlobby trace` prints (the collector is tested in tests/tools/test_span_collector.py)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from pydantic import ValidationError

from agentlobby.api.traces import SpanView, TraceView, span_views
from agentlobby.config import load_settings
from agentlobby.errors import ConfigError
from agentlobby.messages import USER_SENDER, Envelope, TextContent, new_id, now
from agentlobby.tracing import context_of, enabled, exporter_name, trace_id_of
from agentlobby_cli.trace import describe, tree_lines

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _envelope(**fields: object) -> Envelope:
    return Envelope.model_validate(
        {
            "id": new_id(),
            "conversation_id": new_id(),
            "lobby": "chat",
            "sender": USER_SENDER,
            "content": TextContent(text="hi").model_dump(),
            "created_at": now().isoformat(),
            **fields,
        }
    )


def test_tracing_is_off_unless_an_exporter_is_named() -> None:
    assert not enabled(load_settings({}))
    assert not enabled(load_settings({"OTEL_TRACES_EXPORTER": "none"}))
    assert enabled(load_settings({"OTEL_TRACES_EXPORTER": "otlp"}))
    assert exporter_name({"OTEL_TRACES_EXPORTER": " GCP_TRACE "}) == "gcp_trace"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
        ),
    ],
)
def test_an_exporter_we_do_not_ship_is_refused_naming_the_fix(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        exporter_name(env)


def test_an_envelope_carries_its_traceparent_in_the_body_and_the_attributes() -> None:
    envelope = _envelope(traceparent=TRACEPARENT)
    assert envelope.attributes()["traceparent"] == TRACEPARENT
    assert Envelope.model_validate_json(envelope.to_json_bytes()).traceparent == TRACEPARENT
    assert "traceparent" not in _envelope().attributes()


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        TRACEPARENT.upper(),
        TRACEPARENT + "-extra",
        "01" + TRACEPARENT[2:],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01",
    ],
)
def test_a_malformed_traceparent_is_refused_on_the_wire_and_ignored_as_a_parent(bad: str) -> None:
    with pytest.raises(ValidationError):
        _envelope(traceparent=bad)
    assert context_of(bad) is None
    assert trace_id_of(bad) is None


def test_a_traceparent_names_its_remote_parent() -> None:
    context = context_of(TRACEPARENT)
    assert context is not None
    parent = trace.get_current_span(context).get_span_context()
    assert f"{parent.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{parent.span_id:016x}" == "b7ad6b7169203331"
    assert trace_id_of(TRACEPARENT) == "0af7651916cd43dd8448eb211c80319c"


def _span(
    span_id: str, parent: str | None, name: str, start: int, **attributes: object
) -> SpanView:
    return SpanView.model_validate(
        {
            "span_id": span_id,
            "parent_id": parent,
            "name": name,
            "agent": "coder",
            "start_unix_nano": start,
            "end_unix_nano": start + 2_000_000,
            "status": "ok",
            "attributes": attributes,
        }
    )


def test_the_tree_puts_children_under_parents_in_start_order_and_orphans_at_the_top() -> None:
    view = TraceView(
        conversation_id=new_id(),
        trace_id="a" * 32,
        where="test",
        spans=[
            _span("2" * 16, "1" * 16, "second child", 30),
            _span("1" * 16, None, "root", 10),
            _span("3" * 16, "1" * 16, "first child", 20, **{"agentlobby.redelivery": True}),
            _span("4" * 16, "9" * 16, "orphan", 5),
        ],
    )
    assert [line.split("  [")[0] for line in tree_lines(view)] == [
        "orphan",
        "root",
        "  first child",
        "  second child",
    ]
    assert "REDELIVERY" in tree_lines(view)[2]


def test_a_model_call_line_shows_its_tokens_and_a_sandbox_run_its_outcome() -> None:
    call = _span(
        "1" * 16,
        None,
        "chat m",
        0,
        **{"gen_ai.usage.input_tokens": 40, "gen_ai.usage.output_tokens": 12},
    )
    run = _span(
        "2" * 16,
        None,
        "sandbox run",
        0,
        **{"agentlobby.sandbox.exit_code": -1, "agentlobby.sandbox.timed_out": True},
    )
    assert describe(call) == "chat m  [coder]  2 ms  40+12 tokens"
    assert describe(run) == "sandbox run  [coder]  2 ms  timed out"


@pytest.mark.parametrize("cost", [-0.5, float("nan"), float("inf")])
def test_a_cost_no_price_table_gives_is_not_a_traceback(cost: float) -> None:
    """Spans come from whatever reached the collector: a cost attribute that is negative or
    not a number is left out of the line, not a crash of `agentlobby trace`."""
    shown = describe(_span("1" * 16, None, "chat m", 0, **{"agentlobby.cost_usd": cost}))
    assert shown == "chat m  [coder]  2 ms"


def test_spans_that_are_not_ours_are_left_out_of_the_trace_view() -> None:
    """Anything on loopback may export to the collector under the conversation's trace id:
    what does not read as a span (a short span id, an agent that is not a name, no name at
    all) is skipped, so GET /conversations/{id}/trace answers the rest instead of a 500."""
    good = {
        "trace_id": "a" * 32,
        "span_id": "1" * 16,
        "parent_id": None,
        "name": "coder handles spec",
        "service": "coder",
        "start_unix_nano": 1,
        "end_unix_nano": 2,
        "status": "ok",
        "attributes": {"agentlobby.agent": "coder"},
    }
    foreign = [
        {**good, "span_id": "abcd"},
        {**good, "attributes": {"agentlobby.agent": 7}},
        {**good, "attributes": {"nested": {"a": 1}}},
        {**good, "start_unix_nano": "soon"},
        {key: value for key, value in good.items() if key != "name"},
        "not a span",
    ]
    assert [view.name for view in span_views([*foreign, good])] == ["coder handles spec"]
