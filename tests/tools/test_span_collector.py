"""The local stack's span collector: what the official OTLP exporter sends comes back as a
trace, and what is not a trace export is refused. It listens on loopback only."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from local_emulator.span_collector import MAX_BODY_BYTES, SpanCollector, read_spans
from local_emulator.stack import free_port


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[SpanCollector]:
    running = SpanCollector(free_port(), tmp_path).start()
    try:
        yield running
    finally:
        running.stop()


def test_spans_exported_by_the_official_exporter_come_back_from_the_collector(
    collector: SpanCollector,
) -> None:
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=collector.url + "/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("parent", attributes={"gen_ai.agent.name": "coder"}) as p,
        tracer.start_as_current_span("child", attributes={"n": 3, "ok": True}),
    ):
        pass
    provider.shutdown()
    trace_id = f"{p.get_span_context().trace_id:032x}"

    with urllib.request.urlopen(f"{collector.url}/traces/{trace_id}", timeout=5) as answer:
        spans = json.loads(answer.read())["spans"]
    assert [s["name"] for s in spans] == ["parent", "child"]
    parent, child = spans
    assert parent["parent_id"] is None
    assert child["parent_id"] == parent["span_id"]
    assert child["attributes"] == {"n": 3, "ok": True}
    assert parent["attributes"]["gen_ai.agent.name"] == "coder"
    assert read_spans(collector.path, "f" * 32) == []


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/traces", b"\xff\xfe not protobuf \x00", 400),
        ("/v1/logs", b"", 404),
    ],
)
def test_the_collector_refuses_what_is_not_a_trace_export(
    collector: SpanCollector, path: str, body: bytes, status: int
) -> None:
    request = urllib.request.Request(collector.url + path, data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == status
    assert collector.path.read_text() == ""


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_body_that_inflates_past_the_limit_is_refused_unread(
    collector: SpanCollector, encoding: str
) -> None:
    """A few kilobytes that inflate to 64 MB (a gzip bomb, scaled down): refused by its size,
    never inflated whole (a real bomb of 1 MB inflates to 1 GB)."""
    inflated = b"\x00" * (4 * MAX_BODY_BYTES)
    body = gzip.compress(inflated) if encoding == "gzip" else zlib.compress(inflated)
    assert len(body) < MAX_BODY_BYTES // 100
    request = urllib.request.Request(
        collector.url + "/v1/traces",
        data=body,
        method="POST",
        headers={"Content-Encoding": encoding, "Content-Type": "application/x-protobuf"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 413
    assert f"more than {MAX_BODY_BYTES} bytes" in json.loads(refused.value.read())["error"]
    assert collector.path.read_text() == ""


def test_a_compressed_export_within_the_limit_is_taken(collector: SpanCollector) -> None:
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=collector.url + "/v1/traces", compression=Compression.Gzip)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("zipped") as span:
        pass
    provider.shutdown()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert [s["name"] for s in read_spans(collector.path, trace_id)] == ["zipped"]


def test_a_torn_line_in_the_spans_file_is_skipped_not_fatal_to_the_trace(tmp_path: Path) -> None:
    """A collector stopped half-way through a write leaves a torn line, and the next run
    appends after it: the spans that can be read are answered, the torn one skipped."""
    trace_id = "ab" * 16
    whole = {"trace_id": trace_id, "span_id": "1" * 16, "start_unix_nano": 5, "name": "kept"}
    path = tmp_path / "spans.jsonl"
    path.write_text(
        json.dumps({**whole, "name": "torn"})[:60]
        + json.dumps(whole)
        + "\n"
        + f'{{"trace_id": "{trace_id}", "start_unix_nano": "x"}}\n'
        + json.dumps(whole)
        + "\n"
    )
    assert [span["name"] for span in read_spans(path, trace_id)] == ["kept"]
