"""A remote A2A agent as a lobby member: each user message is forwarded, the answer posted.

There is no one remote agent but one per registration (`agentlobby agents add-remote NAME
--a2a URL`): delivery/remote.py reads the member's registry record and makes its AgentSpec
with `spec_for`. The member is exclusive, like every agent whose work is expensive or seen
outside: a duplicate delivery while the call runs is acknowledged, and once the answer is
stored a redelivery republishes it without calling the remote again (delivery/pipeline.py).
It answers the user's messages only, never another agent's, as echo does: two remote members
in one lobby never talk in a loop.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from agentlobby.a2a_remote.call import RemoteCall, ask
from agentlobby.a2a_remote.parts import outgoing_message, text_to_send
from agentlobby.agents import AgentContext, AgentSpec, Outgoing, Setting
from agentlobby.messages import USER_SENDER, Envelope, TextContent

DEFAULT_LISTENS_TO = ("text",)  # "task" would make every post to its lobbies a task
SETTINGS = (
    Setting(
        "timeout_s",
        float,
        default=60.0,
        doc="seconds one try at the remote may take, its card, answer and task together",
        minimum=1.0,
        maximum=500.0,
    ),
    Setting(
        "tries",
        int,
        default=3,
        doc="tries on a timeout, a refused connection or a 5xx, with backoff, before the "
        "delivery is retried",
        minimum=1,
        maximum=5,
    ),
)


def handle(call: RemoteCall, message: Envelope, ctx: AgentContext) -> list[Outgoing]:
    if message.sender != USER_SENDER:
        return []
    text = text_to_send(message)
    if text is None:
        return []
    answer = ask(call, outgoing_message(call.agent, message, text))
    return [Outgoing(content=TextContent(text=answer.text))]


def spec_for(
    name: str,
    a2a_url: str,
    listens_to: tuple[str, ...] = (),
    settings: Mapping[str, object] | None = None,
    description: str = "",
) -> AgentSpec:
    """The member `name`, forwarding to the A2A agent at `a2a_url`, tuned by its registry
    settings (`agentlobby agents set NAME timeout_s=30`)."""
    chosen = dict(settings or {})
    timeout_s = chosen.get("timeout_s", SETTINGS[0].default)
    tries = chosen.get("tries", SETTINGS[1].default)
    call = RemoteCall(
        agent=name,
        url=a2a_url,
        timeout_s=float(timeout_s) if isinstance(timeout_s, int | float) else 60.0,
        tries=int(tries) if isinstance(tries, int) and not isinstance(tries, bool) else 3,
    )
    return AgentSpec(
        name=name,
        description=description or f"The remote A2A agent at {a2a_url}.",
        listens_to=frozenset(listens_to or DEFAULT_LISTENS_TO),
        handle=functools.partial(handle, call),
        exclusive=True,
        settings=SETTINGS,
    )
