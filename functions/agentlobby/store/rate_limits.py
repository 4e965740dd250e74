"""Rate-limit windows shared by every instance: counters in Firestore, never a transaction.

    model_rate_limits/{model key}                  the limit in force, as a function reported it
    model_rate_limits/{model key}/windows/{n}      requests and tokens counted in window n
    post_rate_limits/_config                       the post limit in force, as reported
    post_rate_limits/{token hash}/windows/{n}      posts counted in window n

Window n covers [n * window_s, (n + 1) * window_s) of Unix time. A count is one `set(merge)`
with `Increment`, whose write result carries the counters after it (no read, no lock: the
emulator's contended transactions crawl, EMULATORS.md). A window document holds `expire_at`
(two windows on) for a Firestore TTL policy to delete it; nothing reads an old window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentlobby.messages import document_key, now
from agentlobby.store.clients import firestore_client, translated

MODELS = "model_rate_limits"
POSTS = "post_rate_limits"
POST_CONFIG = "_config"


@dataclass(frozen=True)
class Counts:
    """A window's counters right after this caller's increment."""

    requests: int
    tokens: int


@dataclass(frozen=True)
class Reported:
    """A limit as the functions last reported it (for `agentlobby agents`)."""

    what: str  # "model" or "posts"
    name: str  # the model's name; "posts" for the post limit
    limits: dict[str, Any]
    agents: list[str]
    reported_at: str


def _expire_at(window: int, window_s: float) -> datetime:
    return datetime.fromtimestamp((window + 2) * window_s, UTC)


@translated
class RateWindows:
    """The window counters of one project."""

    def __init__(self, project: str) -> None:
        self.project = project
        self._db = firestore_client(project)

    def _model_doc(self, model: str) -> Any:
        return self._db.collection(MODELS).document(document_key(model))

    def count_request(self, model: str, window: int, window_s: float) -> Counts:
        """One more request in the model's window; the counts including it."""
        from google.cloud import firestore

        ref = self._model_doc(model).collection("windows").document(str(window))
        result = ref.set(
            {
                "requests": firestore.Increment(1),
                "tokens": firestore.Increment(0),  # only read back: the tokens so far
                "expire_at": _expire_at(window, window_s),
            },
            merge=True,
        )
        # Transform results come in field-path order: requests, then tokens.
        requests, tokens = (int(value.integer_value) for value in result.transform_results)
        return Counts(requests=requests, tokens=tokens)

    def count_tokens(self, model: str, window: int, window_s: float, tokens: int) -> None:
        """Tokens a finished call spent, in the window it was let through in."""
        from google.cloud import firestore

        ref = self._model_doc(model).collection("windows").document(str(window))
        ref.set(
            {"tokens": firestore.Increment(tokens), "expire_at": _expire_at(window, window_s)},
            merge=True,
        )

    def count_post(self, token_hash: str, window: int, window_s: float) -> int:
        """One more post by the token (hashed) in its window; the count including it."""
        from google.cloud import firestore

        ref = self._db.collection(POSTS).document(token_hash).collection("windows")
        result = ref.document(str(window)).set(
            {"posts": firestore.Increment(1), "expire_at": _expire_at(window, window_s)},
            merge=True,
        )
        return int(result.transform_results[0].integer_value)

    def report_model_limit(self, model: str, agent: str, limits: dict[str, Any]) -> None:
        """Write down the limit this process applies to the model, and that `agent` uses it."""
        from google.cloud import firestore

        self._model_doc(model).set(
            {
                "model": model,
                "limits": limits,
                "agents": firestore.ArrayUnion([agent]),
                "reported_at": now().isoformat(),
            },
            merge=True,
        )

    def report_post_limit(self, limits: dict[str, Any]) -> None:
        self._db.collection(POSTS).document(POST_CONFIG).set(
            {"limits": limits, "reported_at": now().isoformat()}
        )

    def reported(self) -> list[Reported]:
        """Every limit the functions reported, models first (by name), then posts."""
        found = [
            Reported(
                "model",
                str(data.get("model", snap.id)),
                dict(data.get("limits") or {}),
                sorted(str(a) for a in data.get("agents") or []),
                str(data.get("reported_at", "")),
            )
            for snap in self._db.collection(MODELS).stream()
            if (data := snap.to_dict() or {}).get("limits") is not None
        ]
        found.sort(key=lambda r: r.name)
        posts = self._db.collection(POSTS).document(POST_CONFIG).get()
        if posts.exists:
            data = posts.to_dict() or {}
            found.append(
                Reported(
                    "posts",
                    "posts",
                    dict(data.get("limits") or {}),
                    [],
                    str(data.get("reported_at", "")),
                )
            )
        return found
