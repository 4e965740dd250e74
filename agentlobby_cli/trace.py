"""`agentlobby trace ID`: one conversation's spans as a tree, read through the user API.

Each line is one span: what ran (a delivery to an agent, a model call, a sandbox run), in
which agent, for how long, the tokens a model call spent, and how it ended. A redelivery is a
line of its own, marked, beside the delivery it repeats.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Mapping

from agentlobby.api.traces import SpanView, TraceView
from agentlobby.cost import usd
from agentlobby_cli.client import UserClient

EXIT_OK = 0
EXIT_NO_TRACE = 1


def show_trace(client: UserClient, conversation_id: str, *, as_json: bool = False) -> int:
    view = client.trace(conversation_id)
    if as_json:
        print(view.model_dump_json(indent=2))
        return EXIT_OK if view.spans else EXIT_NO_TRACE
    if not view.spans:
        print(
            f"agentlobby trace: {conversation_id} has no spans here: {view.where}", file=sys.stderr
        )
        return EXIT_NO_TRACE
    print(f"trace {view.trace_id} of conversation {conversation_id}")
    for line in tree_lines(view):
        print(line)
    return EXIT_OK


def tree_lines(view: TraceView) -> list[str]:
    """The spans as indented lines, children under their parent in start order; a span whose
    parent is missing (not exported, or still running) is shown at the top level."""
    ids = {span.span_id for span in view.spans}
    children: dict[str | None, list[SpanView]] = defaultdict(list)
    for span in view.spans:
        parent = span.parent_id if span.parent_id in ids else None
        children[parent].append(span)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_unix_nano):
            lines.append("  " * depth + describe(span))
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return lines


def describe(span: SpanView) -> str:
    attributes = span.attributes
    duration_ms = (span.end_unix_nano - span.start_unix_nano) / 1e6
    parts = [span.name, f"[{span.agent or '?'}]", f"{duration_ms:.0f} ms"]
    tokens_in = attributes.get("gen_ai.usage.input_tokens")
    tokens_out = attributes.get("gen_ai.usage.output_tokens")
    if tokens_in is not None or tokens_out is not None:
        parts.append(f"{tokens_in or 0}+{tokens_out or 0} tokens")
    cost = attributes.get("agentlobby.cost_usd")
    if isinstance(cost, int | float) and 0 <= cost < math.inf:  # a foreign span's may be -1
        parts.append(usd(cost))
    if "agentlobby.sandbox.exit_code" in attributes:
        parts.append(sandbox_outcome(attributes))
    outcome = attributes.get("agentlobby.outcome")
    if outcome:
        parts.append(str(outcome))
    if attributes.get("agentlobby.redelivery"):
        parts.append("REDELIVERY")
    if span.status == "error":
        parts.append("ERROR")
    return "  ".join(parts)


def sandbox_outcome(attributes: Mapping[str, object]) -> str:
    if attributes.get("agentlobby.sandbox.timed_out"):
        return "timed out"
    if attributes.get("agentlobby.sandbox.stopped"):
        return "stopped"
    return f"exit {attributes.get('agentlobby.sandbox.exit_code')}"
