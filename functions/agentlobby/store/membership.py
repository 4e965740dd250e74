"""Lobby life cycle: create a lobby, let an agent enter or leave it, at runtime.

Each operation touches Pub/Sub (topic, push subscription) and the registry together, Pub/Sub
first, so a registry entry never points at a subscription that does not exist. Both steps are
idempotent: repeating a half-done call finishes it.
"""

from __future__ import annotations

from agentlobby.config import Settings
from agentlobby.errors import UnknownLobby
from agentlobby.messages import check_agent_name, check_lobby_name, now
from agentlobby.store import lobbies
from agentlobby.store.registry import LobbyRecord, MembershipRecord, Registry


def policy_from(settings: Settings) -> lobbies.SubscriptionPolicy:
    return lobbies.SubscriptionPolicy(
        ack_deadline_s=settings.ack_deadline_s,
        max_delivery_attempts=settings.max_delivery_attempts,
        min_retry_delay_s=settings.min_retry_delay_s,
        max_retry_delay_s=max(settings.min_retry_delay_s, settings.max_retry_delay_s),
    )


def create_lobby(settings: Settings, name: str) -> LobbyRecord:
    check_lobby_name(name)
    lobbies.ensure_topic(settings.project, name)
    return Registry(settings.project).put_lobby(name)


def enter(settings: Settings, agent: str, lobby: str) -> MembershipRecord:
    """Subscribe the agent's function to the lobby; messages published from now on reach it."""
    check_agent_name(agent)
    check_lobby_name(lobby)
    registry = Registry(settings.project)
    record = registry.agent(agent)
    registry.lobby(lobby)
    if not lobbies.topic_exists(settings.project, lobby):
        raise UnknownLobby(lobby)
    path = lobbies.ensure_push_subscription(
        settings.project,
        lobby,
        agent,
        record.endpoint,
        policy=policy_from(settings),
        push_auth_service_account=record.push_auth_service_account,
    )
    membership = MembershipRecord(lobby=lobby, agent=agent, subscription=path, entered_at=now())
    registry.put_membership(membership)
    return membership


def leave(settings: Settings, agent: str, lobby: str) -> bool:
    """Unsubscribe; False when the agent was not a member. Messages after this do not reach it."""
    check_agent_name(agent)
    check_lobby_name(lobby)
    registry = Registry(settings.project)
    registry.agent(agent)
    registry.lobby(lobby)
    deleted = lobbies.delete_subscription(lobbies.subscription_path(settings.project, lobby, agent))
    recorded = registry.delete_membership(lobby, agent)
    return deleted or recorded
