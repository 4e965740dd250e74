"""Settings, read from the environment in one place, once per cold start.

The same variables configure a function locally and on Google Cloud; docs/configuration.md
lists every one with its default. Standard variables win over ours: PUBSUB_EMULATOR_HOST,
FIRESTORE_EMULATOR_HOST, OPENAI_API_KEY, OPENAI_BASE_URL. Nothing is written back to os.environ.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from agentlobby.cost import PriceTable, load_prices
from agentlobby.errors import ConfigError
from agentlobby.rate_limits import ModelRateLimit, parse_model_rate_limits

DEFAULT_PROJECT = "agentlobby-local"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_CONCURRENCY = {"coder": 2}
FALLBACK_CONCURRENCY = 4

T = TypeVar("T", int, float)


@dataclass(frozen=True)
class ModelSettings:
    """How one agent reaches its model."""

    base_url: str | None
    api_key: str | None
    model: str
    timeout_s: float
    max_retries: int
    concurrency: int


@dataclass(frozen=True)
class Settings:
    """Everything a function or the CLI reads from its environment."""

    project: str
    pubsub_emulator_host: str | None
    firestore_emulator_host: str | None
    api_token: str | None
    max_hops: int
    max_messages: int
    max_model_calls: int
    max_rounds: int
    token_budget: int
    cost_budget: float | None
    prices: PriceTable
    model_rate_limits: Mapping[str, ModelRateLimit]
    rate_window_s: float
    rate_limit_wait_s: float
    post_rate_limit: int | None
    claim_lease_s: float
    stall_s: float
    max_redrives: int
    sweep_interval_s: float
    ack_deadline_s: int
    max_delivery_attempts: int
    min_retry_delay_s: int
    max_retry_delay_s: int
    sandbox_timeout_s: float
    sandbox_memory_mb: int
    sandbox_url: str | None
    sandbox_token: str | None
    log_level: str
    # Where clients reach the user function, for the A2A cards (a2a_edge/card.py); None:
    # the scheme and host each request came to.
    public_url: str | None
    env: Mapping[str, str]

    def rate_limit_for(self, model: str) -> ModelRateLimit | None:
        """The model's limit from AGENTLOBBY_MODEL_RATE_LIMITS, else its "*" entry, else None."""
        return self.model_rate_limits.get(model) or self.model_rate_limits.get("*")

    def model_for(self, agent: str) -> ModelSettings:
        """Per-agent model settings: AGENTLOBBY_<AGENT>_* wins over the shared ones."""
        prefix = f"AGENTLOBBY_{agent.upper().replace('-', '_')}_"
        env = self.env
        return ModelSettings(
            base_url=env.get(prefix + "BASE_URL") or env.get("OPENAI_BASE_URL") or None,
            api_key=env.get(prefix + "API_KEY") or env.get("OPENAI_API_KEY") or None,
            model=env.get(prefix + "MODEL") or env.get("AGENTLOBBY_MODEL") or DEFAULT_MODEL,
            timeout_s=_number(env, "AGENTLOBBY_MODEL_TIMEOUT_S", 60.0, float),
            max_retries=_number(env, "AGENTLOBBY_MODEL_MAX_RETRIES", 4, int),
            concurrency=_number(
                env,
                prefix + "CONCURRENCY",
                DEFAULT_CONCURRENCY.get(agent, FALLBACK_CONCURRENCY),
                int,
            ),
        )


def _number(env: Mapping[str, str], name: str, default: T, kind: type[T]) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a {kind.__name__}; set it to a number or unset it "
            f"(default {default})"
        ) from None
    if not value > 0 or value == float("inf"):  # NaN fails `> 0`
        raise ConfigError(f"{name}={raw!r} must be positive and finite (default {default})")
    return value


def _optional(env: Mapping[str, str], name: str, kind: type[T]) -> T | None:
    """A positive number, or None when unset (no limit, no budget)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a {kind.__name__}; set it to a number or unset it "
            "(unset: no limit)"
        ) from None
    if not value > 0 or value == float("inf"):  # NaN fails `> 0`
        raise ConfigError(f"{name}={raw!r} must be a positive finite number, or unset")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from a mapping (os.environ by default), validating every number."""
    env = dict(os.environ if env is None else env)
    project = (
        env.get("AGENTLOBBY_PROJECT")
        or env.get("GOOGLE_CLOUD_PROJECT")
        or env.get("GCLOUD_PROJECT")
        or DEFAULT_PROJECT
    )
    emulated = bool(env.get("PUBSUB_EMULATOR_HOST"))
    return Settings(
        project=project,
        pubsub_emulator_host=env.get("PUBSUB_EMULATOR_HOST") or None,
        firestore_emulator_host=env.get("FIRESTORE_EMULATOR_HOST") or None,
        api_token=env.get("AGENTLOBBY_API_TOKEN") or None,
        max_hops=_number(env, "AGENTLOBBY_MAX_HOPS", 64, int),
        max_messages=_number(env, "AGENTLOBBY_MAX_MESSAGES", 500, int),
        max_model_calls=_number(env, "AGENTLOBBY_MAX_MODEL_CALLS", 200, int),
        max_rounds=_number(env, "AGENTLOBBY_MAX_ROUNDS", 3, int),
        token_budget=_number(env, "AGENTLOBBY_TOKEN_BUDGET", 200_000, int),
        cost_budget=_optional(env, "AGENTLOBBY_COST_BUDGET", float),
        prices=load_prices(env),
        model_rate_limits=parse_model_rate_limits(env.get("AGENTLOBBY_MODEL_RATE_LIMITS")),
        # "Per minute" means per window of this many seconds; tests and demos shorten it.
        rate_window_s=_number(env, "AGENTLOBBY_RATE_WINDOW_S", 60.0, float),
        rate_limit_wait_s=_number(env, "AGENTLOBBY_RATE_LIMIT_WAIT_S", 120.0, float),
        post_rate_limit=_optional(env, "AGENTLOBBY_POST_RATE_LIMIT", int),
        # Renewed while the handler runs: a dead holder's claim lapses within this.
        claim_lease_s=_number(env, "AGENTLOBBY_CLAIM_LEASE_S", 30.0, float),
        # The sweeper redrives a step that stayed pending this long (delivery/sweeper.py).
        stall_s=_number(env, "AGENTLOBBY_STALL_S", 20.0 if emulated else 120.0, float),
        max_redrives=_number(env, "AGENTLOBBY_MAX_REDRIVES", 3, int),
        sweep_interval_s=_number(env, "AGENTLOBBY_SWEEP_INTERVAL_S", 5.0, float),
        ack_deadline_s=min(600, _number(env, "AGENTLOBBY_ACK_DEADLINE_S", 600, int)),
        max_delivery_attempts=max(5, _number(env, "AGENTLOBBY_MAX_DELIVERY_ATTEMPTS", 5, int)),
        # On the emulator everything is on one machine: retry within seconds, not minutes.
        min_retry_delay_s=min(
            600, _number(env, "AGENTLOBBY_MIN_RETRY_DELAY_S", 1 if emulated else 10, int)
        ),
        max_retry_delay_s=min(
            600, _number(env, "AGENTLOBBY_MAX_RETRY_DELAY_S", 10 if emulated else 600, int)
        ),
        sandbox_timeout_s=_number(env, "AGENTLOBBY_SANDBOX_TIMEOUT_S", 10.0, float),
        sandbox_memory_mb=_number(env, "AGENTLOBBY_SANDBOX_MEMORY_MB", 512, int),
        sandbox_url=env.get("AGENTLOBBY_SANDBOX_URL") or None,
        sandbox_token=env.get("AGENTLOBBY_SANDBOX_TOKEN") or None,
        log_level=env.get("AGENTLOBBY_LOG_LEVEL", "INFO").upper(),
        public_url=env.get("AGENTLOBBY_PUBLIC_URL") or None,
        env=env,
    )


@functools.cache
def settings() -> Settings:
    """The process-wide settings, read once per cold start."""
    return load_settings()
