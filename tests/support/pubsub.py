"""Pub/Sub as an entry point sees it: push bodies, posting them, and publishing to a lobby.

A push body is what Pub/Sub's push subscription POSTs: the message (base64 data, attributes,
its id and publish time, each under both spellings Pub/Sub sends) and the subscription's name.
Posted to `/projects/{project}/topics/{lobby}`, functions-framework turns it into a CloudEvent
whose source names the lobby.
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

from agentlobby.messages import Envelope, now
from agentlobby.store.lobbies import topic_path
from local_emulator.stack import Stack


def push_json(
    data: bytes,
    attributes: dict[str, str],
    message_id: str,
    *,
    project: str = "p",
    subscription: str = "x",
    published: datetime | None = None,
) -> dict[str, Any]:
    """The JSON body of one push delivery."""
    stamp = (published or now()).isoformat().replace("+00:00", "Z")
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": stamp,
            "publish_time": stamp,
        },
        "subscription": f"projects/{project}/subscriptions/{subscription}",
    }


def push_body(data: bytes, attributes: dict[str, str], message_id: str, **where: Any) -> bytes:
    """`push_json` as the bytes of a POST."""
    return json.dumps(push_json(data, attributes, message_id, **where)).encode()


def envelope_push(
    envelope: Envelope,
    message_id: str,
    extra_attributes: dict[str, str] | None = None,
    **where: Any,
) -> bytes:
    """The push of a published envelope: its JSON as the data, its routing fields as attributes."""
    attributes = {**envelope.attributes(), **(extra_attributes or {})}
    return push_body(envelope.to_json_bytes(), attributes, message_id, **where)


def dead_letter_push(project: str, message: Envelope, agent: str, attempts: int = 5) -> bytes:
    """What the dead-letter topic pushes once Pub/Sub gave up delivering `message` to `agent`."""
    source = f"projects/{project}/subscriptions/agentlobby-{message.lobby}-{agent}"
    gave_up = {
        "CloudPubSubDeadLetterSourceSubscription": source,
        "CloudPubSubDeadLetterSourceDeliveryCount": str(attempts),
    }
    return envelope_push(
        message,
        str(secrets.randbelow(10**9)),
        gave_up,
        project=project,
        subscription="agentlobby-dead-letter-recorder",
    )


def topic_url(base: str, project: str, lobby: str) -> str:
    """Where a push subscription of `lobby`'s topic POSTs, on a function served at `base`."""
    return f"{base}/projects/{project}/topics/{lobby}"


def push_url(stack: Stack, target: str, lobby: str) -> str:
    """The push endpoint of one of the stack's function servers for `lobby`."""
    return topic_url(stack.url(target), stack.project, lobby)


def post_push(url: str, body: bytes) -> int:
    """POST a push body as Pub/Sub does; the HTTP status, whatever it is."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def publish(
    project: str, lobby: str, data: bytes, attributes: dict[str, str], times: int = 1
) -> list[str]:
    """Publish `data` to a lobby's topic `times` times at once; Pub/Sub's message ids."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    try:
        topic = topic_path(project, lobby)
        futures = [publisher.publish(topic, data, **attributes) for _ in range(times)]
        return [future.result(timeout=30) for future in futures]
    finally:
        publisher.stop()


def republish(project: str, envelope: Envelope, times: int = 1) -> list[str]:
    """Publish an envelope again, as Pub/Sub would redeliver it, to every member of its lobby."""
    return publish(project, envelope.lobby, envelope.to_json_bytes(), envelope.attributes(), times)
