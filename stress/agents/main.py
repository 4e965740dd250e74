"""Entry points of the stress-only agents; the loops scenario serves each with its own
functions-framework server. Like functions/main.py: one function per target, handing the event
to the runtime with the agent's module."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from agentlobby.delivery.pipeline import deliver


@functions_framework.cloud_event
def ping(event: CloudEvent) -> None:
    deliver(event, "stress.agents.ping")


@functions_framework.cloud_event
def pong(event: CloudEvent) -> None:
    deliver(event, "stress.agents.pong")


@functions_framework.cloud_event
def fan(event: CloudEvent) -> None:
    deliver(event, "stress.agents.fan")


@functions_framework.cloud_event
def fan_twin(event: CloudEvent) -> None:
    deliver(event, "stress.agents.fan_twin")
