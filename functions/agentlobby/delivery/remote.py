"""The `remote` function: one function for every remote A2A member, named by the push path.

`agentlobby agents add-remote NAME --a2a URL` registers NAME with the endpoint
`REMOTE_FUNCTION_URL/agents/NAME`, so each of its push subscriptions POSTs to
`.../agents/NAME/projects/P/topics/LOBBY` (functions-framework still finds the topic in that
path). Here the path says which member a push is for; its registry record says where the
remote answers and how patiently; then the ordinary pipeline delivers it, claims, stored
replies, dead letters and all.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from agentlobby.agents.remote import spec_for
from agentlobby.config import settings
from agentlobby.delivery.dead_letters import EXCERPT_CHARS, record_dead_letter
from agentlobby.delivery.pipeline import deliver_as
from agentlobby.delivery.push import read_push
from agentlobby.errors import InvalidMessage, UnknownAgent
from agentlobby.logs import configure
from agentlobby.messages import AGENT_NAME
from agentlobby.store.registry import Registry

log = logging.getLogger(__name__)

SERVICE = "remote"
_AGENT_IN_PATH = re.compile(r"^/agents/([^/]+)(?:/|$)")


def endpoint_for(function_url: str, agent: str) -> str:
    """The endpoint a remote member is registered with: the function's URL plus its name."""
    return f"{function_url.rstrip('/')}/agents/{agent}"


def agent_in_path(path: str) -> str:
    """The member a push was sent for; InvalidMessage when the path names none."""
    match = _AGENT_IN_PATH.match(path or "")
    if match is None or not AGENT_NAME.fullmatch(match.group(1)):
        raise InvalidMessage(
            f"push path {path[:200]!r} names no remote agent: expected /agents/NAME/projects/"
            "P/topics/LOBBY, the endpoint `agentlobby agents add-remote` registers"
        )
    return match.group(1)


def deliver_remote(event: Any, path: str) -> None:
    """Entry of the `remote` function: the CloudEvent and the path it was pushed to."""
    config = settings()
    configure(config.log_level)
    try:
        name = agent_in_path(path)
        record = Registry(config.project).agent(name)
        if record.a2a_url is None:
            raise InvalidMessage(
                f"agent {name!r} is registered, but not as a remote A2A agent (no a2a_url)"
            )
    except (InvalidMessage, UnknownAgent) as exc:
        # A subscription left pointing here: acknowledged and recorded, never redelivered.
        try:
            pushed = read_push(event.get("source"), str(event.get("id") or ""), event.data)
        except InvalidMessage:
            log.error("unreadable push for no remote agent: %s", exc)
            return
        excerpt = pushed.data[:EXCERPT_CHARS].decode("utf-8", "replace")
        reason = f"no remote agent to deliver to: {exc}"
        record_dead_letter(
            config, None, None, pushed.attributes, reason, excerpt, pushed.pubsub_message_id
        )
        return
    spec = spec_for(
        record.name, record.a2a_url, record.listens_to, record.settings, record.description
    )
    deliver_as(event, spec, SERVICE)
