"""The Google clients, one of each per process, created on first use.

Heavy SDKs are imported here, inside the functions, so a module that never touches Firestore
or Pub/Sub does not pay for their import at cold start. The clients find the emulators through
the standard variables (PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST); the cache is keyed by
them too, so a process that starts a second local stack gets clients for that one.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import firestore, pubsub_v1


def firestore_client(project: str) -> firestore.Client:
    return _firestore(project, os.environ.get("FIRESTORE_EMULATOR_HOST"))


def publisher_client() -> pubsub_v1.PublisherClient:
    return _publisher(os.environ.get("PUBSUB_EMULATOR_HOST"))


def subscriber_client() -> pubsub_v1.SubscriberClient:
    return _subscriber(os.environ.get("PUBSUB_EMULATOR_HOST"))


def is_unavailable(exc: BaseException) -> bool:
    """Whether an exception is Google's way of saying a backend failed (worth a retry later)."""
    from google.api_core import exceptions

    return isinstance(exc, exceptions.GoogleAPICallError | exceptions.RetryError)


@functools.cache
def _firestore(project: str, emulator: str | None) -> firestore.Client:
    from google.cloud import firestore

    return firestore.Client(project=project)


@functools.cache
def _publisher(emulator: str | None) -> pubsub_v1.PublisherClient:
    from google.cloud import pubsub_v1

    # One message per batch: a lobby message should leave at once, not after a batching window.
    return pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=1, max_latency=0.0)
    )


@functools.cache
def _subscriber(emulator: str | None) -> pubsub_v1.SubscriberClient:
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient()
