"""Tracing while the collector is down: requests do not wait for it, and no span is lost.

The SDK's force_flush exports in the caller's thread, and the OTLP exporter retries for up to
10 s: before requests stopped waiting for a failing exporter, every delivery and every post
paid that while a collector (say a local Jaeger not started) was down. Run in a fresh
interpreter: a tracer provider can be installed only once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.paths import REPO

SCRIPT = r"""
import json, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seen = []
answer = [400]  # a collector refusing every export (400: the exporter does not retry)

class Collector(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        seen.append(answer[0])
        self.send_response(answer[0])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"

from agentlobby import tracing
from agentlobby.config import load_settings

tracing.setup(load_settings(), "test")
counts = []
for name in ("first", "second", "third"):
    with tracing.tracer().start_as_current_span(name):
        pass
    tracing.flush()
    counts.append(len(seen))
answer[0] = 200  # the collector is back: what was kept is sent
tracing._provider.force_flush()
counts.append(len(seen))
print(json.dumps(counts))
os._exit(0)  # no exit-time export
"""


def test_requests_stop_waiting_for_a_failing_exporter_and_keep_their_spans() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # the processor's own thread stays out of it
        "AGENTLOBBY_PROJECT": "tracing-outage",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout.splitlines()[-1])
    # The first flush meets the failure; the next two do not call the collector at all;
    # once it answers again, the spans they left in the batch go out in one export.
    assert counts == [1, 1, 1, 2], counts
    assert "requests stop waiting for the exporter" in done.stderr
