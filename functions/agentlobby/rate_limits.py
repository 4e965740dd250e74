"""Rate limits: a model's requests and tokens per minute, and a token's posts per minute.

Both count in fixed windows of `AGENTLOBBY_RATE_WINDOW_S` (60 s) shared by every instance
through Firestore (store/rate_limits.py), so a burst of conversations queues here instead of
earning the provider's 429s.

- A model call first counts itself in the current window. Within the window's request limit,
  and while the window's tokens are under its token limit, it goes ahead; otherwise it sleeps
  to the next window and tries again, up to `AGENTLOBBY_RATE_LIMIT_WAIT_S` (120 s), then gives
  up as ModelUnavailable (transient: Pub/Sub redelivers). Tokens are known only once a call
  returns, so they are added afterwards to the window the call went in: the token limit stops
  new calls in a window that reached it, and the call that passes it is not cut short.
- A user post counts itself against a digest of its bearer token (never the token); past
  `AGENTLOBBY_POST_RATE_LIMIT` in the window it is refused with the seconds to the next one.

A refused or waiting attempt is counted too; it only ever makes its window look fuller.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from agentlobby.errors import ConfigError, ModelUnavailable
from agentlobby.messages import MAX_COUNT, ModelName, Wire, describe_validation_error

if TYPE_CHECKING:
    from agentlobby.config import Settings
    from agentlobby.store.rate_limits import RateWindows

log = logging.getLogger(__name__)

_REPORTED: set[tuple[str, str, str, str]] = set()  # limits this process wrote down
PerWindow = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class ModelRateLimit(Wire):
    """One model's limits per window; at least one of them."""

    requests_per_minute: PerWindow | None = None
    tokens_per_minute: PerWindow | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> ModelRateLimit:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("give requests_per_minute, tokens_per_minute or both")
        return self


_LIMITS: TypeAdapter[dict[ModelName, ModelRateLimit]] = TypeAdapter(dict[ModelName, ModelRateLimit])


def parse_model_rate_limits(raw: str | None) -> dict[str, ModelRateLimit]:
    """AGENTLOBBY_MODEL_RATE_LIMITS: {"MODEL" or "*": {"requests_per_minute": N, ...}}."""
    if not raw:
        return {}
    try:
        return dict(_LIMITS.validate_json(raw))
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, "AGENTLOBBY_MODEL_RATE_LIMITS")
            + '; write {"gpt-4o-mini": {"requests_per_minute": 500, "tokens_per_minute": '
            '200000}} ("*" for every other model), or unset it for no limit'
        ) from None


def window_of(t: float, window_s: float) -> int:
    return math.floor(t / window_s)


def seconds_to_next(t: float, window_s: float) -> float:
    return (window_of(t, window_s) + 1) * window_s - t


def token_digest(token: str) -> str:
    """What a post limit is kept under: a digest, so no stored document holds the token."""
    return hashlib.sha256(b"agentlobby-post-limit/" + token.encode()).hexdigest()[:40]


class ModelLimiter:
    """One agent's side of a model's shared limit: wait_turn() before a call, spend() after."""

    def __init__(
        self,
        windows: RateWindows,
        model: str,
        agent: str,
        limit: ModelRateLimit,
        window_s: float,
        max_wait_s: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._windows = windows
        self.model = model
        self.agent = agent
        self.limit = limit
        self.window_s = window_s
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._window: int | None = None

    def wait_turn(self) -> None:
        """Return once the call may go ahead in the current window; ModelUnavailable when no
        window let it through within max_wait_s."""
        self._report()
        started = self._clock()
        while True:
            t = self._clock()
            window = window_of(t, self.window_s)
            counts = self._windows.count_request(self.model, window, self.window_s)
            if self._admits(counts.requests, counts.tokens):
                self._window = window
                return
            wait = seconds_to_next(t, self.window_s)
            if t + wait - started > self.max_wait_s:
                raise ModelUnavailable(
                    f"{self.agent}'s model {self.model} stayed at its rate limit "
                    f"({self._describe()}) for {self.max_wait_s:.0f}s "
                    "(AGENTLOBBY_RATE_LIMIT_WAIT_S): the call is tried again later"
                )
            log.info(
                "%s waits %.1fs for %s's next rate window (%d requests, %d tokens so far)",
                self.agent,
                wait,
                self.model,
                counts.requests,
                counts.tokens,
                extra={"agent": self.agent},
            )
            self._sleep(wait)

    def spend(self, tokens: int) -> None:
        """Add a finished call's tokens to the window it went in."""
        if self._window is not None and tokens > 0:
            self._windows.count_tokens(self.model, self._window, self.window_s, tokens)

    def _admits(self, requests: int, tokens: int) -> bool:
        rpm, tpm = self.limit.requests_per_minute, self.limit.tokens_per_minute
        return (rpm is None or requests <= rpm) and (tpm is None or tokens < tpm)

    def _describe(self) -> str:
        parts = []
        if self.limit.requests_per_minute is not None:
            parts.append(f"{self.limit.requests_per_minute} requests")
        if self.limit.tokens_per_minute is not None:
            parts.append(f"{self.limit.tokens_per_minute} tokens")
        return " and ".join(parts) + f" per {self.window_s:g}s"

    def _report(self) -> None:
        """Once per process: write down the limit in force, for `agentlobby agents`."""
        limits = {**self.limit.model_dump(exclude_none=True), "window_s": self.window_s}
        key = (self._windows.project, self.model, self.agent, repr(sorted(limits.items())))
        if key not in _REPORTED:
            self._windows.report_model_limit(self.model, self.agent, limits)
            _REPORTED.add(key)


def limiter_for(agent: str, model: str, settings: Settings) -> ModelLimiter | None:
    """The limiter of `agent`'s calls to `model`, or None when the model has no limit."""
    limit = settings.rate_limit_for(model)
    if limit is None:
        return None
    from agentlobby.store.rate_limits import RateWindows

    return ModelLimiter(
        RateWindows(settings.project),
        model,
        agent,
        limit,
        settings.rate_window_s,
        settings.rate_limit_wait_s,
    )


def post_retry_after(
    windows: RateWindows,
    token: str,
    limit: int,
    window_s: float,
    clock: Callable[[], float] = time.time,
) -> int | None:
    """Count one post by `token`; None when it is within the limit, else the whole seconds
    until the next window (at least 1), for a 429's Retry-After."""
    key = (windows.project, "posts", "", repr((limit, window_s)))
    if key not in _REPORTED:
        windows.report_post_limit({"posts_per_minute": limit, "window_s": window_s})
        _REPORTED.add(key)
    t = clock()
    count = windows.count_post(token_digest(token), window_of(t, window_s), window_s)
    if count <= limit:
        return None
    return max(1, math.ceil(seconds_to_next(t, window_s)))
