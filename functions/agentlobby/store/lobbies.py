"""Lobbies on Pub/Sub: a topic per lobby, a push subscription per member, publishing envelopes.

Only this module talks to Pub/Sub's admin and publish APIs; errors from the SDK are translated
here into ours (BackendUnavailable is transient, UnknownLobby is permanent).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from agentlobby.errors import BackendUnavailable, UnknownLobby
from agentlobby.messages import Envelope
from agentlobby.store.clients import publisher_client, subscriber_client

log = logging.getLogger(__name__)

DEAD_LETTER_TOPIC = "agentlobby-dead-letter"
PUBLISH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SubscriptionPolicy:
    """How Pub/Sub retries a member: long ack deadline, backoff, then the dead-letter topic."""

    ack_deadline_s: int = 600
    max_delivery_attempts: int = 5
    min_retry_delay_s: int = 10
    max_retry_delay_s: int = 600


def topic_path(project: str, lobby: str) -> str:
    return f"projects/{project}/topics/{lobby}"


def subscription_id(lobby: str, agent: str) -> str:
    return f"agentlobby-{lobby}-{agent}"


def subscription_path(project: str, lobby: str, agent: str) -> str:
    return f"projects/{project}/subscriptions/{subscription_id(lobby, agent)}"


def push_endpoint(agent_endpoint: str, project: str, lobby: str) -> str:
    """The path names the topic, so functions-framework puts the lobby in the event's source."""
    return f"{agent_endpoint.rstrip('/')}/{topic_path(project, lobby)}"


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL: what Cloud Run takes as a token's audience."""
    scheme, _sep, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def ensure_topic(project: str, name: str) -> bool:
    """Create the topic if missing; True when it was created now."""
    from google.api_core import exceptions

    try:
        publisher_client().create_topic(name=topic_path(project, name))
        return True
    except exceptions.AlreadyExists:
        return False
    except exceptions.GoogleAPICallError as exc:
        raise BackendUnavailable(f"Pub/Sub could not create topic {name!r}: {exc}") from exc


def topic_exists(project: str, name: str) -> bool:
    from google.api_core import exceptions

    try:
        publisher_client().get_topic(topic=topic_path(project, name))
        return True
    except exceptions.NotFound:
        return False
    except exceptions.GoogleAPICallError as exc:
        raise BackendUnavailable(f"Pub/Sub could not look up topic {name!r}: {exc}") from exc


def delete_topic(project: str, name: str) -> None:
    from google.api_core import exceptions

    with contextlib.suppress(exceptions.NotFound):
        publisher_client().delete_topic(topic=topic_path(project, name))


def ensure_push_subscription(
    project: str,
    lobby: str,
    agent: str,
    endpoint: str,
    *,
    policy: SubscriptionPolicy,
    push_auth_service_account: str | None = None,
) -> str:
    """Subscribe an agent's endpoint to a lobby; an existing subscription is updated in place."""
    from google.api_core import exceptions
    from google.cloud import pubsub_v1
    from google.protobuf import duration_pb2, field_mask_pb2

    types = pubsub_v1.types
    url = push_endpoint(endpoint, project, lobby)
    oidc = (
        # The audience is the function's URL, which is what Cloud Run checks the token against:
        # without the path a remote member's endpoint adds (/agents/NAME).
        types.PushConfig.OidcToken(
            service_account_email=push_auth_service_account, audience=_origin(endpoint)
        )
        if push_auth_service_account
        else None
    )
    subscription = types.Subscription(
        name=subscription_path(project, lobby, agent),
        topic=topic_path(project, lobby),
        push_config=types.PushConfig(
            push_endpoint=url,
            attributes={"x-goog-version": "v1"},
            oidc_token=oidc,
        ),
        ack_deadline_seconds=policy.ack_deadline_s,
        dead_letter_policy=types.DeadLetterPolicy(
            dead_letter_topic=topic_path(project, DEAD_LETTER_TOPIC),
            max_delivery_attempts=policy.max_delivery_attempts,
        ),
        retry_policy=types.RetryPolicy(
            minimum_backoff=duration_pb2.Duration(seconds=policy.min_retry_delay_s),
            maximum_backoff=duration_pb2.Duration(seconds=policy.max_retry_delay_s),
        ),
    )
    client = subscriber_client()
    try:
        client.create_subscription(request=subscription)
    except exceptions.AlreadyExists:
        mask = field_mask_pb2.FieldMask(
            paths=["push_config", "ack_deadline_seconds", "dead_letter_policy", "retry_policy"]
        )
        client.update_subscription(request={"subscription": subscription, "update_mask": mask})
    except exceptions.NotFound as exc:
        raise UnknownLobby(lobby) from exc
    except exceptions.GoogleAPICallError as exc:
        raise BackendUnavailable(
            f"Pub/Sub could not subscribe {agent!r} to {lobby!r}: {exc}"
        ) from exc
    return str(subscription.name)


def ensure_plain_push_subscription(project: str, topic: str, name: str, endpoint: str) -> None:
    """A push subscription without dead-lettering: for the dead-letter topic itself."""
    from google.api_core import exceptions

    with contextlib.suppress(exceptions.AlreadyExists):
        subscriber_client().create_subscription(
            request={
                "name": f"projects/{project}/subscriptions/{name}",
                "topic": topic_path(project, topic),
                "push_config": {"push_endpoint": endpoint},
                "ack_deadline_seconds": 60,
            }
        )


def delete_subscription(path: str) -> bool:
    """Remove a subscription; False when it was already gone."""
    from google.api_core import exceptions

    try:
        subscriber_client().delete_subscription(subscription=path)
        return True
    except exceptions.NotFound:
        return False
    except exceptions.GoogleAPICallError as exc:
        raise BackendUnavailable(f"Pub/Sub could not delete {path}: {exc}") from exc


def publish(project: str, envelope: Envelope) -> str:
    """Publish to the envelope's lobby and wait for Pub/Sub's message id. The envelope's size
    was checked where it was made (messages.check_size), once per hop."""
    from google.api_core import exceptions

    future = publisher_client().publish(
        topic_path(project, envelope.lobby), envelope.to_json_bytes(), **envelope.attributes()
    )
    try:
        message_id: object = future.result(timeout=PUBLISH_TIMEOUT_S)
        return str(message_id)
    except exceptions.NotFound as exc:
        raise UnknownLobby(envelope.lobby) from exc
    except (exceptions.GoogleAPICallError, TimeoutError) as exc:
        raise BackendUnavailable(f"Pub/Sub did not take message {envelope.id}: {exc}") from exc
