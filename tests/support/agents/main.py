"""Entry points of the test-only agents; the tests serve each with its own functions-framework.

Like functions/main.py, one plain function per target, handing the event to the runtime.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from agentlobby.delivery.pipeline import deliver


@functions_framework.cloud_event
def flaky(event: CloudEvent) -> None:
    deliver(event, "tests.support.agents.flaky")


@functions_framework.cloud_event
def echo_twin(event: CloudEvent) -> None:
    deliver(event, "tests.support.agents.echo_twin")
