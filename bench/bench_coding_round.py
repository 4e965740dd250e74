"""One coding round end to end on the local stack, split by hop.

A task with tests that pass in round 1: user -> vision (spec) -> coder (code, one scripted model
call) -> interpreter (sandbox run) -> checker (verdict and result, no model call). Each step's
time is the gap between the `created_at` of consecutive messages, so it holds one Pub/Sub push
hop plus the agent's own work. The baseline is a raw push hop on the same emulator in the same
run (publish to a bare topic, received by a bare HTTP endpoint). Goal: none stated by the
issue; the point is where a round's time goes. Run: .venv/bin/python bench/bench_coding_round.py
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from datetime import datetime

from bench_lobby import Endpoint, raw_hop, raw_push_target
from timing import machine, median, p95, ratio, summary

from agentlobby_cli.client import UserClient
from local_emulator.model_server.script import Script
from local_emulator.model_server.server import ModelServer
from local_emulator.stack import Stack

CODE = "```python\ndef double(x):\n    return 2 * x\n\nprint(double(21))\n```"
TESTS = "assert double(2) == 4\n"
STEPS = [
    ("task -> spec (vision)", "task", "spec"),
    ("spec -> code (coder + model)", "spec", "code"),
    ("code -> execution-result (interpreter + sandbox)", "code", "execution-result"),
    ("execution-result -> verdict (checker)", "execution-result", "verdict"),
]
TIMEOUT_S = 60.0


def one_round(user: UserClient, tag: str) -> dict[str, float]:
    """Seconds per step of one conversation, from the messages' creation times."""
    posted = user.post("coding", f"Write double(x) [{tag}]", tests=TESTS)
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        state = user.conversation(posted.conversation_id)
        if state.status in ("succeeded", "failed"):
            break
        time.sleep(0.02)
    else:
        raise TimeoutError(f"round {tag} did not finish in {TIMEOUT_S}s")
    if state.status != "succeeded":
        raise RuntimeError(f"round {tag} ended {state['status']}: {state['reason']}")
    created = {m.kind: datetime.fromisoformat(m.created_at) for m in state.messages}
    steps = {label: (created[b] - created[a]).total_seconds() for label, a, b in STEPS}
    steps["whole round (task -> result)"] = (created["result"] - created["task"]).total_seconds()
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=20, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first")
    args = parser.parse_args(argv)
    total = args.count + args.warmup

    print(machine())
    stack = Stack(port_base=0, progress=lambda m: print(f"[stack] {m}", file=sys.stderr))
    endpoint: Endpoint | None = None
    model = ModelServer(
        Script.from_dict({"rules": [{"agent": "coder", "replies": [CODE] * total}]})
    ).start()
    try:
        stack.extra_env.update({"OPENAI_BASE_URL": model.url, "OPENAI_API_KEY": "bench"})
        info = stack.start()
        user = UserClient(info.user_url, info.api_token)
        topic, endpoint = raw_push_target(info.project)
        raw: list[float] = []
        rounds: list[dict[str, float]] = []
        for i in range(total):
            hop = raw_hop(info.project, topic, endpoint, str(i))
            steps = one_round(user, f"{i}-{secrets.token_hex(2)}")
            if i >= args.warmup:
                raw.append(hop)
                rounds.append(steps)
        base = median(raw)
        print(summary("raw push hop (baseline)", raw))
        for label in rounds[0]:
            values = [r[label] for r in rounds]
            print(
                f"{summary(label, values, width=52)}   "
                f"{ratio(median(values), base):5.1f}x the raw hop (p95 {p95(values) * 1000:.0f} ms)"
            )
        print(f"{machine()} at the end")
        return 0
    finally:
        if endpoint is not None:
            endpoint.close()
        stack.stop()
        model.stop()


if __name__ == "__main__":
    sys.exit(main())
