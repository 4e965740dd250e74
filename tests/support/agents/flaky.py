"""An echo that fails on the first attempt at a message, as the message's text asks.

The text's first word picks the failure; the first attempt leaves a marker file named after the
message id (in AGENTLOBBY_TEST_MARKERS) holding its pid, so a redelivery behaves normally:

    kill ...         SIGKILL this worker inside the handler, before any reply exists
    kill-stored ...  SIGKILL this worker after the reply is stored, before it is published
    raise ...        raise inside the handler (functions-framework answers 500)
    always-raise ... raise on every attempt, so Pub/Sub gives up and dead-letters it
anything else is echoed at once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from agentlobby.agents import AgentContext, AgentSpec, Outgoing
from agentlobby.messages import USER_SENDER, Envelope
from agentlobby.store import lobbies

MODES = ("kill", "kill-stored", "raise", "always-raise")


def _mode(message: Envelope) -> str:
    words = (message.text() or "").split()
    return words[0] if words and words[0] in MODES else ""


def _first_attempt(message_id: str, mode: str) -> bool:
    """True once per message: leaves a marker with this process's pid."""
    marker = Path(os.environ["AGENTLOBBY_TEST_MARKERS"]) / f"{message_id}.{mode}"
    try:
        with marker.open("x") as f:
            f.write(str(os.getpid()))
    except FileExistsError:
        return False
    return True


def handle(message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    if message.sender != USER_SENDER:
        return []
    mode = _mode(message)
    if mode == "always-raise":
        raise RuntimeError(f"flaky fails on every attempt at {message.id}")
    if mode in ("kill", "raise") and _first_attempt(message.id, mode):
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"flaky fails on the first attempt at {message.id}")
    return [Outgoing(content=message.content)]


_publish = lobbies.publish


def _publish_or_die(project: str, envelope: Envelope) -> str:
    """Fault injection at the runtime's publish step: the reply is stored, not yet published."""
    if (
        envelope.sender == AGENT.name
        and _mode(envelope) == "kill-stored"
        and _first_attempt(envelope.parent_id or envelope.id, "kill-stored")
    ):
        os.kill(os.getpid(), signal.SIGKILL)
    return _publish(project, envelope)


lobbies.publish = _publish_or_die

AGENT = AgentSpec(
    name="flaky",
    description="Echo that fails on the first attempt (tests only).",
    listens_to=frozenset({"text"}),
    handle=handle,
)
