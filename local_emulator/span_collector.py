"""A small OTLP/HTTP trace receiver for the local stack, so traces need no external service.

The functions export with the official OTLP exporter (protobuf over HTTP) to
`POST /v1/traces`; each span is appended as one JSON line to `spans.jsonl` in the stack's log
folder, and `GET /traces/{trace_id}` answers a trace's spans, which is what
`agentlobby trace` and the user trigger's `/conversations/{id}/trace` read. Any other OTLP
collector can take the functions' spans instead: set OTEL_EXPORTER_OTLP_ENDPOINT to it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPANS_FILE = "spans.jsonl"
MAX_BODY_BYTES = 16 * 1024 * 1024
_TRACE_PATH = re.compile(r"^/traces/([0-9a-f]{32})/?$")
_STATUS = {0: "unset", 1: "ok", 2: "error"}
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def spans_of_request(body: bytes) -> list[dict[str, Any]]:
    """The spans of one OTLP ExportTraceServiceRequest, flattened to JSON-ready dicts;
    ValueError when the body is not one."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise ValueError(f"not an OTLP ExportTraceServiceRequest: {exc}") from exc
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_id": span.parent_span_id.hex() or None,
                        "name": span.name,
                        "kind": _KINDS.get(span.kind, "unspecified"),
                        "service": resource.get("service.name"),
                        "start_unix_nano": span.start_time_unix_nano,
                        "end_unix_nano": span.end_time_unix_nano,
                        "status": _STATUS.get(span.status.code, "unset"),
                        "status_message": span.status.message or None,
                        "attributes": _attributes(span.attributes),
                        "events": [
                            {"name": e.name, "attributes": _attributes(e.attributes)}
                            for e in span.events
                        ],
                    }
                )
    return spans


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which in (None, "kvlist_value", "bytes_value"):
        return None
    return getattr(value, which)


class SpanCollector:
    """Receives spans on a loopback port and keeps them in one JSON-lines file."""

    def __init__(self, port: int, folder: Path) -> None:
        self.path = folder / SPANS_FILE
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                collector._receive(self)

            def do_GET(self) -> None:
                collector._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return  # one line per export would drown the stack's own log

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> SpanCollector:
        self.path.touch()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans_of(self, trace_id: str) -> list[dict[str, Any]]:
        return read_spans(self.path, trace_id)

    def _receive(self, request: BaseHTTPRequestHandler) -> None:
        if request.path.rstrip("/") != "/v1/traces":
            return _reply(request, 404, b'{"error": "spans go to POST /v1/traces"}')
        try:
            length = int(request.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY_BYTES:
                raise TooLarge(f"a body of {length} bytes is not taken")
            body = _decoded(request.rfile.read(length), request.headers.get("Content-Encoding"))
            spans = spans_of_request(body)
        except (ValueError, OSError, zlib.error) as exc:
            status = 413 if isinstance(exc, TooLarge) else 400
            return _reply(request, status, json.dumps({"error": str(exc)}).encode())
        lines = "".join(json.dumps(span) + "\n" for span in spans)
        with self._lock, self.path.open("a") as out:
            out.write(lines)
        # An empty ExportTraceServiceResponse: everything was taken.
        _reply(request, 200, b"", "application/x-protobuf")

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        match = _TRACE_PATH.match(request.path)
        if match is None:
            return _reply(request, 404, b'{"error": "GET /traces/{32-hex trace id}"}')
        body = json.dumps({"spans": self.spans_of(match.group(1))}).encode()
        _reply(request, 200, body)


def read_spans(path: Path, trace_id: str) -> list[dict[str, Any]]:
    """The spans of one trace in a spans file, in start order. A line that is not a span (torn
    by a collector stopped mid-write, then appended to) is skipped, not fatal to the trace."""
    found = []
    try:
        with path.open(errors="replace") as lines:
            for line in lines:
                if trace_id not in line:
                    continue
                try:
                    span = json.loads(line)
                    if span.get("trace_id") == trace_id:
                        found.append((int(span["start_unix_nano"]), span))
                except (ValueError, TypeError, KeyError, AttributeError):
                    log.warning("skipped a line of %s that is not a span", path)
    except FileNotFoundError:
        return []
    return [span for _, span in sorted(found, key=lambda pair: pair[0])]


class TooLarge(ValueError):
    """A body, or what it inflates to, past MAX_BODY_BYTES: answered 413."""


def _decoded(body: bytes, encoding: str | None) -> bytes:
    """The body inflated, never past MAX_BODY_BYTES: a few compressed kilobytes may inflate
    to gigabytes (a gzip bomb), so it is inflated in bounded steps, not whole."""
    if encoding not in ("gzip", "deflate"):
        return body
    # 16 + MAX_WBITS: a gzip header and trailer; MAX_WBITS: a zlib one (what "deflate" sends)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    inflated = inflater.decompress(body, MAX_BODY_BYTES + 1)
    if len(inflated) > MAX_BODY_BYTES:
        raise TooLarge(f"the body inflates to more than {MAX_BODY_BYTES} bytes: not taken")
    if not inflater.eof:
        raise ValueError(f"the {encoding} body is cut short")
    return inflated


def _reply(
    request: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
