"""What tracing costs: the echo round trip with tracing off and on, against the raw Pub/Sub hop.

Two local stacks run side by side: tracing off (no exporter: the OpenTelemetry API's no-op
tracer) and tracing on (every function exports its spans over OTLP to the stack's collector
and flushes them before it answers, as deployed). Samples alternate between them, and each
stack's raw push hop (bench_lobby.py explains it) is measured among its own round trips, so
both ratios have baselines taken under the same load; compare the two by those ratios. It also
times, per phase, a push body POSTed straight to the echo function (no push tick: the work of
one delivery, where tracing's cost shows most), and in this process the no-op path that every
delivery runs when tracing is off.

    .venv/bin/python bench/bench_tracing.py [--count 40] [--warmup 5]

Printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

from bench_lobby import Endpoint, _pause, echo_direct, raw_hop, raw_push_target, round_trip
from timing import machine, median, ratio, summary

from agentlobby.messages import USER_SENDER, Envelope, TextContent, new_id, now
from agentlobby.tracing import current_traceparent, delivery_span
from agentlobby_cli.client import UserClient
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo

ECHO = "echo"
HOSTS = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST")


@contextlib.contextmanager
def talking_to(info: StackInfo) -> Iterator[None]:
    """Google's clients in this process are chosen by these variables (store/clients.py)."""
    saved = {name: os.environ.get(name) for name in HOSTS}
    os.environ["PUBSUB_EMULATOR_HOST"] = info.pubsub_emulator_host or ""
    os.environ["FIRESTORE_EMULATOR_HOST"] = info.firestore_emulator_host or ""
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Phase:
    """One stack, tracing off or on, and its samples."""

    def __init__(self, traced: bool) -> None:
        label = "on" if traced else "off"
        self.stack = Stack(
            port_base=0,
            trace=traced,
            progress=lambda msg: print(f"[stack, tracing {label}] {msg}", file=sys.stderr),
        )
        self.samples: dict[str, list[float]] = {"raw": [], "trip": [], "direct": []}
        self.endpoint: Endpoint | None = None

    def start(self) -> None:
        info = self.stack.start()
        self.info = info
        self.user = UserClient(info.user_url, info.api_token)
        with talking_to(info):
            self.topic, self.endpoint = raw_push_target(info.project)

    def sample(self, seq: str, keep: bool) -> None:
        info = self.info
        assert self.endpoint is not None
        with talking_to(info):
            hop = raw_hop(info.project, self.topic, self.endpoint, seq)
            _pause()
            trip = round_trip(self.user, info.project, "listener").visible
            _pause()
            direct = echo_direct(self.stack.url(ECHO), info.project)
            _pause()
        if keep:
            self.samples["raw"].append(hop)
            self.samples["trip"].append(trip)
            self.samples["direct"].append(direct)

    def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
        self.stack.stop()


def per_call(run: Callable[[], object], times: int = 20_000) -> float:
    started = time.perf_counter()
    for _ in range(times):
        run()
    return (time.perf_counter() - started) / times


def noop_path() -> None:
    """What a delivery runs for tracing when it is off: a span and a traceparent, no-op."""
    envelope = Envelope(
        id=new_id(),
        conversation_id=new_id(),
        lobby="chat",
        sender=USER_SENDER,
        content=TextContent(text="x"),
        created_at=now(),
    )

    def one() -> None:
        with delivery_span(ECHO, envelope, "1"):
            current_traceparent()

    off = per_call(one)
    bare = per_call(lambda: None)
    print(f"no-op tracing per delivery, in process: {(off - bare) * 1e6:.1f} us")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=40, help="measured samples per phase")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured samples first")
    args = parser.parse_args(argv)
    print(machine())
    noop_path()
    phases = [Phase(traced=False), Phase(traced=True)]
    started: list[Phase] = []
    try:
        for each in phases:
            each.start()
            started.append(each)
        for i in range(args.warmup + args.count):
            for each in phases if i % 2 else reversed(phases):  # neither always goes first
                each.sample(str(i), keep=i >= args.warmup)
    finally:
        for each in reversed(started):  # each stack puts back the variables it found
            each.stop()
    off, on = (each.samples for each in phases)
    print("\n== tracing: echo round trip, off and on, each against its own raw hop ==")
    for name, samples in (("off", off), ("on", on)):
        print(summary(f"tracing {name}: raw hop", samples["raw"]))
        print(summary(f"tracing {name}: echo round trip", samples["trip"]))
        print(summary(f"tracing {name}: push straight to echo", samples["direct"]))
    for name, samples in (("off", off), ("on", on)):
        trip_ratio = ratio(median(samples["trip"]), median(samples["raw"]))
        print(f"round trip / raw hop, tracing {name}: {trip_ratio:.2f}x")
    on_off = ratio(
        ratio(median(on["trip"]), median(on["raw"])),
        ratio(median(off["trip"]), median(off["raw"])),
    )
    print(f"tracing on / off, by those ratios: {on_off:.2f}x")
    direct = ratio(median(on["direct"]), median(off["direct"]))
    print(f"one delivery without the push tick, on / off: {direct:.2f}x")
    print(f"{machine()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
