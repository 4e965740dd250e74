"""`agentlobby agents add-remote NAME --a2a URL --lobby LOBBY`: a remote A2A agent joins lobbies.

The member is served by the `remote` function (functions/main.py, delivery/remote.py): it is
registered with the endpoint `REMOTE_FUNCTION_URL/agents/NAME` and its A2A URL, then it enters
each lobby like any agent. Everything is checked before anything is written: a lobby that
does not exist, or a name an agent of main.py already has, registers nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

REMOTE_URL_VARIABLE = "AGENTLOBBY_REMOTE_URL"


def remote_function_url(args: argparse.Namespace, info: Any) -> str:
    """--function-url, else AGENTLOBBY_REMOTE_URL, else the running stack's `remote` function."""
    from agentlobby.errors import StackNotFound

    found = args.function_url or os.environ.get(REMOTE_URL_VARIABLE) or info.remote_url
    if not found:
        raise StackNotFound(
            "no `remote` function to serve the agent: the stack has none (is `remote` in "
            f"functions/main.py?); for a deployment pass --function-url or set "
            f"{REMOTE_URL_VARIABLE} to its URL (gcloud functions describe remote "
            "--format='value(serviceConfig.uri)')"
        )
    return str(found)


def add_remote(args: argparse.Namespace, info: Any) -> int:
    from agentlobby.agents.remote import DEFAULT_LISTENS_TO, SETTINGS
    from agentlobby.config import load_settings
    from agentlobby.delivery.remote import endpoint_for
    from agentlobby.errors import InvalidMessage, UnknownLobby
    from agentlobby.messages import now
    from agentlobby.store import lobbies, membership
    from agentlobby.store.registry import AgentRecord, DeclaredSetting, Registry

    function_url = remote_function_url(args, info)
    settings = load_settings()
    registry = Registry(settings.project)
    known = {record.name: record for record in registry.agents_named([args.name])}
    earlier = known.get(args.name)
    if earlier is not None and earlier.a2a_url is None:
        raise InvalidMessage(
            f"agent {args.name!r} is already registered at {earlier.endpoint} and is not a "
            "remote A2A agent: choose another NAME"
        )
    wanted = list(dict.fromkeys(args.lobby or []))
    for lobby in wanted:
        registry.lobby(lobby)  # UnknownLobby names the fix
        if not lobbies.topic_exists(settings.project, lobby):
            raise UnknownLobby(lobby)
    registry.put_agent(
        AgentRecord(
            name=args.name,
            endpoint=endpoint_for(function_url, args.name),
            description=args.description or f"The remote A2A agent at {args.a2a}.",
            listens_to=tuple(sorted(args.listens_to or DEFAULT_LISTENS_TO)),
            declared=tuple(DeclaredSetting.model_validate(s.declared()) for s in SETTINGS),
            settings=dict(earlier.settings) if earlier else {},
            push_auth_service_account=args.push_auth_service_account,
            a2a_url=args.a2a,
            registered_at=now(),
        )
    )
    for lobby in wanted:
        membership.enter(settings, args.name, lobby)
    where = ", ".join(wanted) or "no lobby yet (`agentlobby enter NAME LOBBY`)"
    print(f"agent {args.name} forwards to the A2A agent at {args.a2a}; member of {where}")
    if not wanted:
        print("agentlobby: it gets no message until it enters a lobby", file=sys.stderr)
    return 0
