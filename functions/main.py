"""Cloud Function entry points: one per function, named exactly as the deployed target.

Each lobby agent hands the CloudEvent to the delivery pipeline with its agent module; the module is
imported on first delivery, so a function loads only its own agent (echo never imports
openai). To add an agent: write its module, then add one entry point here.
"""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http import CloudEvent

from agentlobby.api.flask_app import json_errors, respond
from agentlobby.api.routes import handle_request
from agentlobby.delivery.dead_letters import record_dead_lettered
from agentlobby.delivery.pipeline import deliver
from agentlobby.delivery.remote import deliver_remote
from agentlobby.delivery.sweeper import handle_sweep
from agentlobby.sandbox.service import handle_run

json_errors()


@functions_framework.http
def user(request: flask.Request) -> flask.Response:
    """HTTP trigger: post to lobbies and read conversations."""
    return respond(handle_request, request)


@functions_framework.http
def sandbox(request: flask.Request) -> flask.Response:
    """HTTP trigger: runs code for the interpreter, in a function with no roles and no egress."""
    return respond(handle_run, request)


@functions_framework.http
def sweeper(request: flask.Request) -> flask.Response:
    """HTTP trigger on a schedule: drives again the steps that stalled (delivery/sweeper.py)."""
    return respond(handle_sweep, request)


@functions_framework.cloud_event
def echo(event: CloudEvent) -> None:
    deliver(event, "agentlobby.agents.echo")


@functions_framework.cloud_event
def dead_letters(event: CloudEvent) -> None:
    """Records what Pub/Sub gave up on, so the conversation shows it."""
    record_dead_lettered(event)


@functions_framework.cloud_event
def vision(event: CloudEvent) -> None:
    deliver(event, "agentlobby.agents.vision")


@functions_framework.cloud_event
def coder(event: CloudEvent) -> None:
    deliver(event, "agentlobby.agents.coder")


@functions_framework.cloud_event
def interpreter(event: CloudEvent) -> None:
    deliver(event, "agentlobby.agents.interpreter")


@functions_framework.cloud_event
def checker(event: CloudEvent) -> None:
    deliver(event, "agentlobby.agents.checker")


@functions_framework.cloud_event
def remote(event: CloudEvent) -> None:
    """Every remote A2A member (`agentlobby agents add-remote`): the push path names which."""
    deliver_remote(event, flask.request.path)
