"""Following a lobby live: a temporary pull subscription that streams every new message.

Used by `agentlobby chat` and `watch`: messages arrive as Pub/Sub delivers them, not by
polling. The subscription expires by itself a day after the last use if the CLI is killed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
from types import TracebackType
from typing import Any

from agentlobby.errors import InvalidMessage, UnknownLobby
from agentlobby.messages import Envelope, parse_envelope
from agentlobby.store.clients import subscriber_client
from agentlobby.store.lobbies import topic_path

log = logging.getLogger(__name__)


class LobbyTail:
    """Context manager: `tail.get(timeout)` returns the next envelope of the lobby, or None."""

    def __init__(self, project: str, lobby: str) -> None:
        self.project = project
        self.lobby = lobby
        self.subscription = (
            f"projects/{project}/subscriptions/agentlobby-tail-{lobby}-{secrets.token_hex(4)}"
        )
        self._queue: queue.Queue[Envelope] = queue.Queue()
        self._future: Any = None

    def __enter__(self) -> LobbyTail:
        from google.api_core import exceptions

        client = subscriber_client()
        try:
            client.create_subscription(
                request={
                    "name": self.subscription,
                    "topic": topic_path(self.project, self.lobby),
                    "ack_deadline_seconds": 10,
                    "expiration_policy": {"ttl": {"seconds": 86_400}},
                }
            )
        except exceptions.NotFound as exc:
            raise UnknownLobby(self.lobby) from exc
        try:
            self._future = client.subscribe(self.subscription, callback=self._on_message)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _on_message(self, message: Any) -> None:
        try:
            self._queue.put(parse_envelope(message.data))
        except InvalidMessage as exc:
            log.warning("skipping a malformed message in %s: %s", self.lobby, exc)
        message.ack()

    def get(self, timeout: float | None) -> Envelope | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._future is not None:
            self._future.cancel()
            with contextlib.suppress(Exception):
                self._future.result(timeout=5)
        try:
            subscriber_client().delete_subscription(subscription=self.subscription)
        except Exception as exc:
            log.info("could not delete %s: %s", self.subscription, exc)
