"""Rate limits without I/O: their settings and errors, and the limiter's decisions over windows.

The windows here are an in-memory stand-in with the store's counting rule (each attempt counts
itself and sees the counts including it); tests/emulator/test_cost_and_rate_limits.py runs the
same limiter on Firestore with several threads and the offline model server.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import flask
import pytest

from agentlobby.api.flask_app import respond
from agentlobby.config import load_settings
from agentlobby.errors import ConfigError, ModelUnavailable
from agentlobby.rate_limits import (
    ModelLimiter,
    ModelRateLimit,
    post_retry_after,
    seconds_to_next,
    token_digest,
    window_of,
)
from agentlobby.store.rate_limits import Counts

WINDOW_S = 60.0


class Windows:
    """Counters per (model, window), as store/rate_limits.RateWindows keeps them."""

    project = "unit"

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.tokens: Counter[tuple[str, int]] = Counter()
        self.posts: Counter[tuple[str, int]] = Counter()
        self.reports: list[Any] = []

    def count_request(self, model: str, window: int, window_s: float) -> Counts:
        self.requests[model, window] += 1
        return Counts(self.requests[model, window], self.tokens[model, window])

    def count_tokens(self, model: str, window: int, window_s: float, tokens: int) -> None:
        self.tokens[model, window] += tokens

    def count_post(self, token_hash: str, window: int, window_s: float) -> int:
        self.posts[token_hash, window] += 1
        return self.posts[token_hash, window]

    def report_model_limit(self, model: str, agent: str, limits: dict[str, Any]) -> None:
        self.reports.append((model, agent, limits))

    def report_post_limit(self, limits: dict[str, Any]) -> None:
        self.reports.append(("posts", limits))


class Clock:
    """Time that moves only when the limiter sleeps."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def limiter(
    windows: Windows, clock: Clock, max_wait_s: float = 600.0, **limit: int
) -> ModelLimiter:
    return ModelLimiter(
        windows,  # type: ignore[arg-type]  # the in-memory stand-in
        "m",
        "coder",
        ModelRateLimit.model_validate(limit),
        WINDOW_S,
        max_wait_s,
        clock=clock,
        sleep=clock.sleep,
    )


def test_calls_past_the_request_limit_wait_for_the_next_window() -> None:
    windows, clock = Windows(), Clock(1000 * WINDOW_S + 10)
    model = limiter(windows, clock, requests_per_minute=2)
    starts = []
    for _ in range(5):
        model.wait_turn()
        starts.append(window_of(clock.t, WINDOW_S))
    assert starts == [1000, 1000, 1001, 1001, 1002]
    assert clock.slept == [50.0, 60.0]  # to the start of the next window, not a fixed delay


def test_the_token_limit_stops_new_calls_once_a_window_reached_it() -> None:
    windows, clock = Windows(), Clock(0.0)
    model = limiter(windows, clock, tokens_per_minute=1000)
    model.wait_turn()
    model.spend(999)
    model.wait_turn()  # 999 < 1000: one more call may start
    model.spend(5000)  # the call that passes the limit is not cut short
    model.wait_turn()
    assert clock.t == WINDOW_S  # the third call waited for the next window
    assert windows.tokens["m", 0] == 5999


def test_tokens_count_in_the_window_the_call_went_in() -> None:
    windows, clock = Windows(), Clock(WINDOW_S - 1)
    model = limiter(windows, clock, tokens_per_minute=10)
    model.wait_turn()
    clock.t += 30  # the call ran into the next window
    model.spend(7)
    assert windows.tokens == Counter({("m", 0): 7})


def test_a_limit_that_never_frees_in_time_is_transient_and_says_which() -> None:
    windows, clock = Windows(), Clock(0.0)
    model = limiter(windows, clock, max_wait_s=100, requests_per_minute=1)
    model.wait_turn()
    windows.requests["m", 1] = 50  # other instances filled the next window
    windows.requests["m", 2] = 50
    with pytest.raises(ModelUnavailable) as caught:
        model.wait_turn()
    message = str(caught.value)
    assert "m" in message and "1 requests per 60s" in message
    assert "AGENTLOBBY_RATE_LIMIT_WAIT_S" in message
    assert clock.t <= 100


def test_the_limit_is_reported_once_per_process() -> None:
    windows, clock = Windows(), Clock(0.0)
    for _ in range(3):
        limiter(windows, clock, requests_per_minute=7).wait_turn()
    assert windows.reports == [("m", "coder", {"requests_per_minute": 7, "window_s": 60.0})]


def test_posts_past_the_limit_get_the_seconds_to_the_next_window() -> None:
    windows = Windows()
    clock = Clock(10 * WINDOW_S + 0.5)
    answers = [post_retry_after(windows, "tok", 2, WINDOW_S, clock) for _ in range(3)]  # type: ignore[arg-type]
    assert answers == [None, None, 60]  # 59.5 s rounds up: never a Retry-After that is early
    other = post_retry_after(windows, "another", 2, WINDOW_S, clock)  # type: ignore[arg-type]
    assert other is None  # each token has its own count
    clock.t = 11 * WINDOW_S - 0.01
    assert post_retry_after(windows, "tok", 2, WINDOW_S, clock) == 1  # type: ignore[arg-type]
    assert all("tok" not in key for key, _ in windows.posts)  # only digests are kept


def test_windows_are_aligned_and_the_wait_is_positive() -> None:
    assert window_of(59.999, 60) == 0 and window_of(60, 60) == 1
    assert seconds_to_next(60, 60) == 60 and seconds_to_next(119.5, 60) == 0.5
    assert token_digest("a") != token_digest("b") and len(token_digest("a")) == 40


def test_rate_limits_come_from_one_variable_with_a_star_entry() -> None:
    limits = {"gpt-4o": {"requests_per_minute": 5}, "*": {"tokens_per_minute": 9}}
    settings = load_settings({"AGENTLOBBY_MODEL_RATE_LIMITS": json.dumps(limits)})
    assert settings.rate_limit_for("gpt-4o") == ModelRateLimit(requests_per_minute=5)
    assert settings.rate_limit_for("other") == ModelRateLimit(tokens_per_minute=9)
    assert load_settings({}).rate_limit_for("gpt-4o") is None
    assert load_settings({}).post_rate_limit is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("{", "AGENTLOBBY_MODEL_RATE_LIMITS"),
        ('{"m": {}}', "give requests_per_minute, tokens_per_minute or both"),
        ('{"m": {"requests_per_minute": 0}}', "m.requests_per_minute"),
        ('{"m": {"requests_per_minute": 1.5}}', "m.requests_per_minute"),
        ('{"m": {"rpm": 5}}', "m.rpm"),
        ('{"m": 5}', "m"),
        ('["m"]', "AGENTLOBBY_MODEL_RATE_LIMITS"),
    ],
)
def test_a_bad_rate_limit_names_the_variable_and_the_shape(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"AGENTLOBBY_MODEL_RATE_LIMITS": value})
    message = str(caught.value)
    assert "AGENTLOBBY_MODEL_RATE_LIMITS" in message and says in message
    assert '"requests_per_minute"' in message


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("AGENTLOBBY_POST_RATE_LIMIT", "0"),
        ("AGENTLOBBY_POST_RATE_LIMIT", "1.5"),
        ("AGENTLOBBY_POST_RATE_LIMIT", "many"),
        ("AGENTLOBBY_RATE_WINDOW_S", "-1"),
        ("AGENTLOBBY_RATE_WINDOW_S", "nan"),
        ("AGENTLOBBY_RATE_LIMIT_WAIT_S", "inf"),
    ],
)
def test_a_bad_limit_number_names_its_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: raw})


def test_a_handler_may_answer_extra_headers_and_two_tuples_still_work() -> None:
    app = flask.Flask(__name__)

    def limited(*_: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
        return {"error": "slow down"}, 429, {"Retry-After": "7"}

    def plain(*_: Any) -> tuple[dict[str, Any], int]:
        return {"status": "ok"}, 200

    with app.test_request_context("/lobbies/chat/messages", method="POST"):
        answer = respond(limited, flask.request)
        assert (answer.status_code, answer.headers["Retry-After"]) == (429, "7")
        assert answer.get_json() == {"error": "slow down"}
        answer = respond(plain, flask.request)
        assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})
        assert "Retry-After" not in answer.headers
