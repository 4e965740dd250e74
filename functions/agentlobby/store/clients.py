"""The Google clients, one of each per process, created on first use.

Heavy SDKs are imported here, inside the functions, so a module that never touches Firestore
or Pub/Sub does not pay for their import at cold start. The clients find the emulators through
the standard variables (PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST); the cache is keyed by
them too, so a process that starts a second local stack gets clients for that one.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from agentlobby.errors import AgentlobbyError, BackendUnavailable, InvalidMessage

if TYPE_CHECKING:
    from google.cloud import firestore, pubsub_v1

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


def firestore_client(project: str) -> firestore.Client:
    return _firestore(project, os.environ.get("FIRESTORE_EMULATOR_HOST"))


def publisher_client() -> pubsub_v1.PublisherClient:
    return _publisher(os.environ.get("PUBSUB_EMULATOR_HOST"))


def subscriber_client() -> pubsub_v1.SubscriberClient:
    return _subscriber(os.environ.get("PUBSUB_EMULATOR_HOST"))


def translated(cls: type[T]) -> type[T]:
    """Class decorator: every public method's Google SDK error leaves as one of ours (ours()).

    Private methods stay as they are: a public method may catch a specific SDK error
    (AlreadyExists) from one of them, which a translation on the way would hide."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(member, staticmethod):
            setattr(cls, name, staticmethod(_translating(member.__func__)))
        elif isinstance(member, types.FunctionType):
            setattr(cls, name, _translating(member))
    return cls


def ours(exc: BaseException, what: str) -> AgentlobbyError | None:
    """Google's error as ours: InvalidMessage for a value the service refused (permanent),
    BackendUnavailable for anything else it raised (transient); None if not Google's."""
    from google.api_core import exceptions

    if isinstance(exc, exceptions.InvalidArgument):
        return InvalidMessage(f"{what} refused a value: {exc.message}")
    if isinstance(exc, exceptions.GoogleAPICallError | exceptions.RetryError):
        return BackendUnavailable(f"{what} failed, retry later: {exc}")
    return None


def _translating(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except AgentlobbyError:
            raise
        except Exception as exc:
            mine = ours(exc, "Firestore")
            if mine is None:
                raise
            raise mine from exc

    return call


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


def id_token(audience: str) -> str:
    """An ID token for a function's URL, from the metadata server (Cloud Run, Functions)."""
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.id_token

    try:
        token: str = google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
            google.auth.transport.requests.Request(), audience
        )
    except google.auth.exceptions.GoogleAuthError as exc:
        raise BackendUnavailable(f"no ID token for {audience}: {exc}") from exc
    return token
