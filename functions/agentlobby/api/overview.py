"""What the page lists: the lobbies with their members, and the most recent conversations.

    GET /lobbies        -> 200 {"lobbies": [{"name", "created_at", "members": [...]}]}
    GET /conversations  -> 200 {"conversations": [summary, ...]}, newest first, at most RECENT

A summary carries what a list shows (status, rounds, tokens, cost); rounds and tokens are
derived from the transcript on read, as GET /conversations/{id} derives them (api/views.py),
so the list and the conversation never disagree. The same reads feed the live streams
(api/events.py).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Literal

from agentlobby.api.schema import UsageView
from agentlobby.api.views import conversation_view
from agentlobby.config import Settings
from agentlobby.errors import UnknownConversation
from agentlobby.lifecycle import Status, is_over
from agentlobby.messages import MESSAGE_ID, Identifier, LobbyName, Wire
from agentlobby.store.conversations import ConversationRecord, Conversations
from agentlobby.store.rate_limits import RateWindows
from agentlobby.store.registry import Registry

RECENT = 30  # conversations in the list: enough for a page, few enough to read at once
TITLE_CHARS = 120

__all__ = [
    "RECENT",
    "ConversationList",
    "ConversationSummary",
    "LimitView",
    "LobbyList",
    "LobbyView",
    "MemberView",
    "conversation_list",
    "conversation_summary",
    "lobby_list",
    "over",
    "read_conversation",
    "summary_of",
]


class MemberView(Wire):
    name: str
    description: str
    listens_to: list[str]


class LobbyView(Wire):
    name: LobbyName
    created_at: str
    members: list[MemberView]


class LimitView(Wire):
    """A rate limit in force, as the functions that apply it last reported it: a model's
    requests and tokens per window (and the agents that call it), or the posts per token."""

    what: Literal["model", "posts"]
    name: str
    limits: dict[str, float]
    agents: list[str]
    reported_at: str


class LobbyList(Wire):
    """200 on GET /lobbies: every lobby and the agents in it, by name, and the rate limits."""

    lobbies: list[LobbyView]
    limits: list[LimitView]


class ConversationSummary(Wire):
    """One line of the list: what a conversation is, where it stands and what it cost."""

    conversation_id: Identifier
    lobby: LobbyName
    status: Status
    reason: str | None
    created_at: str
    title: str  # the first message's text, cut to TITLE_CHARS
    messages: int
    rounds: int
    usage: UsageView
    cost_usd: float


class ConversationList(Wire):
    """200 on GET /conversations: the RECENT most recently created conversations, newest first."""

    conversations: list[ConversationSummary]


_READS = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="page-reads")


def lobby_list(config: Settings) -> LobbyList:
    registry = Registry(config.project)
    lobbies = _READS.submit(registry.lobbies)
    memberships = _READS.submit(registry.memberships)
    limits = _READS.submit(RateWindows(config.project).reported)
    agents = {agent.name: agent for agent in registry.agents()}
    members: dict[str, list[MemberView]] = {}
    for membership in memberships.result():
        agent = agents.get(membership.agent)
        if agent is None:  # a membership left behind by a removed agent: no member
            continue
        members.setdefault(membership.lobby, []).append(
            MemberView(
                name=agent.name, description=agent.description, listens_to=list(agent.listens_to)
            )
        )
    return LobbyList(
        lobbies=[
            LobbyView(
                name=lobby.name,
                created_at=lobby.created_at.isoformat(),
                members=members.get(lobby.name, []),
            )
            for lobby in lobbies.result()
        ],
        limits=[
            LimitView(
                what="posts" if limit.what == "posts" else "model",
                name=limit.name,
                limits={k: float(v) for k, v in limit.limits.items() if _is_number(v)},
                agents=limit.agents,
                reported_at=limit.reported_at,
            )
            for limit in limits.result()
        ],
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_conversation(config: Settings, conversation_id: str) -> dict[str, Any]:
    """GET /conversations/{id}'s answer as JSON; UnknownConversation for an id with none."""
    if not MESSAGE_ID.fullmatch(conversation_id):
        raise UnknownConversation(conversation_id)  # no stored conversation has such an id
    conversations = Conversations(config.project)
    # Three reads issued together: one Firestore round trip, not three (two once it ended).
    transcript = _READS.submit(conversations.transcript, conversation_id)
    letters = _READS.submit(conversations.dead_letters, conversation_id)
    record = conversations.get(conversation_id)
    if is_over(record.status):
        # A step stores its reply (or dead letter) before it ends the conversation, but reads
        # issued together may see the end and miss what led to it: read them again, after it.
        transcript = _READS.submit(conversations.transcript, conversation_id)
        letters = _READS.submit(conversations.dead_letters, conversation_id)
    view = conversation_view(record, transcript.result(), letters.result(), config.prices)
    return view.model_dump(mode="json")


def conversation_summary(config: Settings, record: ConversationRecord) -> ConversationSummary:
    transcript = Conversations(config.project).transcript(record.id)
    view = conversation_view(record, transcript, [], config.prices)
    first = transcript[0].text() if transcript else None
    return ConversationSummary(
        conversation_id=record.id,
        lobby=record.lobby,
        status=record.status,
        reason=record.reason,
        created_at=record.created_at.isoformat(),
        title=(first or "")[:TITLE_CHARS],
        messages=len(transcript),
        rounds=view.rounds,
        usage=view.usage,
        cost_usd=view.cost.total_usd,
    )


def conversation_list(config: Settings) -> ConversationList:
    records = Conversations(config.project).recent(RECENT)
    summaries = _READS.map(lambda record: conversation_summary(config, record), records)
    return ConversationList(conversations=list(summaries))


def summary_of(config: Settings, conversation_id: str) -> ConversationSummary | None:
    """The summary of one conversation, or None if it is gone (or was never there)."""
    record = Conversations(config.project).find(conversation_id)
    return conversation_summary(config, record) if record is not None else None


def over(view: dict[str, Any]) -> bool:
    return is_over(view["status"])
