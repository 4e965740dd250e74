"""The page's routes on the real stack, over HTTP: its files, its lists and its event streams.

The shell is served to anyone (it holds no data); every data route needs the token and gives
nothing without it. The streams are read as a browser reads them, chunk by chunk, and must
carry what GET /conversations/{id} answers, as it changes, and end once the conversation is over.
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from agentlobby.api.page import FILES
from agentlobby.store.rate_limits import RateWindows
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.coding import GOOD_ADD, python_block, reply, run_add_task, token
from tests.support.user import JsonUser, api_request, wait_for_messages

DATA_ROUTES = ["/lobbies", "/conversations", "/events", "/conversations/abc/events"]
READ_TIMEOUT_S = 60.0  # a bound on a hung stream, never a measurement


def raw_get(
    info: StackInfo, path: str, token: str | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    where = urlsplit(info.user_url)
    assert where.hostname == "127.0.0.1"
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=READ_TIMEOUT_S)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


class EventStream:
    """A text/event-stream read event by event, as the page's fetch() reader reads it."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.response = response

    def next(self) -> tuple[str, Any] | None:
        """The next event (name, decoded data), skipping comments; None when the stream ended."""
        name, data = "message", []
        while True:
            line = self.response.readline()
            if not line:
                return None
            text = line.decode().rstrip("\n")
            if text == "":
                if data:
                    return name, json.loads("\n".join(data))
                name, data = "message", []
            elif text.startswith("event:"):
                name = text[6:].strip()
            elif text.startswith("data:"):
                data.append(text[5:].lstrip())

    def until(self, wanted: Any) -> list[tuple[str, Any]]:
        """Events up to and including the first for which wanted(name, data) holds."""
        seen = []
        while (event := self.next()) is not None:
            seen.append(event)
            if wanted(*event):
                return seen
        raise AssertionError(f"the stream ended before the event looked for; saw {seen!r}")


@contextmanager
def stream(info: StackInfo, path: str) -> Iterator[EventStream]:
    where = urlsplit(info.user_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=READ_TIMEOUT_S)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {info.api_token}"})
        response = connection.getresponse()
        assert response.status == 200, response.read()[:300]
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        assert "no-cache" in response.getheader("Cache-Control", "")
        yield EventStream(response)
    finally:
        connection.close()


# The shell and its files.


def test_the_page_is_served_without_a_token_and_holds_no_data(info: StackInfo) -> None:
    status, headers, body = raw_get(info, "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b'<script type="module" src="/page/app.js">' in body
    assert info.api_token.encode() not in body
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert headers["x-content-type-options"] == "nosniff"


def test_every_page_file_is_served_with_its_type(info: StackInfo) -> None:
    assert {"/page/index.html", "/page/app.js", "/page/vendor/htm-preact.js"} <= set(FILES)
    assert "/page/vendor/highlight-LICENSE.txt" in FILES  # vendored with their licences
    for name, path in FILES.items():
        status, headers, body = raw_get(info, name)
        assert status == 200, name
        assert body == path.read_bytes(), name
        expected = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
        assert headers["content-type"].startswith(expected.get(path.suffix, "text/plain")), name


@pytest.mark.parametrize(
    "path",
    [
        "/page/nothing.js",
        "/page/",
        "/page/../routes.py",
        "/page/%2e%2e/routes.py",
        "/page/vendor/../../page.py",
        "/page/..%2fpage.py",
        "/page/app.js/",
        "/page/__init__.py",
    ],
)
def test_nothing_but_the_page_files_is_served(info: StackInfo, path: str) -> None:
    status, headers, body = raw_get(info, path)
    assert status == 404, (path, body[:200])
    assert headers["content-type"] == "application/json"
    assert b"import" not in body


def test_the_page_takes_only_gets(info: StackInfo) -> None:
    status, body = api_request(info, "POST", "/", b"{}")
    assert (status, body) == (405, {"error": "method POST not allowed on /: GET it"})
    status, body = api_request(info, "PUT", "/page/app.js", b"{}")
    assert status == 405


# The data routes: the token, and nothing without it.


@pytest.mark.parametrize("path", DATA_ROUTES)
@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_data_without_the_right_token_is_401_and_nothing_else(
    info: StackInfo, path: str, token: str | None
) -> None:
    status, headers, body = raw_get(info, path, token=token)
    assert status == 401
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "error": "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
    }


@pytest.mark.parametrize("path", DATA_ROUTES)
def test_data_routes_take_only_gets(info: StackInfo, path: str) -> None:
    status, body = api_request(info, "POST", path, b"{}")
    assert (status, body) == (405, {"error": f"method POST not allowed on {path}: GET it"})


def test_lobbies_are_listed_with_their_members(info: StackInfo) -> None:
    status, body = api_request(info, "GET", "/lobbies")
    assert status == 200
    lobbies = {lobby["name"]: lobby for lobby in body["lobbies"]}
    assert {m["name"] for m in lobbies["coding"]["members"]} == {
        "vision",
        "coder",
        "interpreter",
        "checker",
    }
    (echo,) = lobbies["chat"]["members"]
    assert echo["name"] == "echo" and "text" in echo["listens_to"]


def test_lobbies_come_with_the_rate_limits_the_functions_reported(info: StackInfo) -> None:
    model = f"model-{secrets.token_hex(4)}"
    windows = RateWindows(info.project)
    windows.report_model_limit(model, "coder", {"requests_per_minute": 2, "window_s": 4.0})
    windows.report_model_limit(model, "checker", {"requests_per_minute": 2, "window_s": 4.0})
    status, body = api_request(info, "GET", "/lobbies")
    assert status == 200
    (limit,) = [limit for limit in body["limits"] if limit["name"] == model]
    assert limit["what"] == "model"
    assert limit["limits"] == {"requests_per_minute": 2.0, "window_s": 4.0}
    assert limit["agents"] == ["checker", "coder"]


def test_conversations_are_listed_newest_first_with_their_figures(
    info: StackInfo, user: JsonUser
) -> None:
    first = user.post("chat", "first of two, for the list")
    second = user.post("chat", "second of two, for the list")
    wait_for_messages(user, second["conversation_id"], 2)
    status, body = api_request(info, "GET", "/conversations")
    assert status == 200
    ids = [c["conversation_id"] for c in body["conversations"]]
    assert ids.index(second["conversation_id"]) < ids.index(first["conversation_id"])
    (listed,) = [
        c for c in body["conversations"] if c["conversation_id"] == second["conversation_id"]
    ]
    view = user.conversation(second["conversation_id"])
    assert listed["title"] == "second of two, for the list"
    assert (listed["lobby"], listed["status"], listed["rounds"]) == ("chat", "open", 0)
    assert listed["messages"] == len(view["messages"]) == 2
    assert listed["usage"] == view["usage"]
    assert listed["cost_usd"] == (view["cost"]["total_usd"] if "cost" in view else None)


# The streams.


@pytest.mark.parametrize("conversation_id", ["0123456789abcdef", "no/such", "__x__", "é"])
def test_a_stream_of_an_unknown_conversation_is_404(info: StackInfo, conversation_id: str) -> None:
    from urllib.parse import quote

    path = f"/conversations/{quote(conversation_id, safe='')}/events"
    status, headers, body = raw_get(info, path, token=info.api_token)
    assert status == 404, body[:200]
    assert headers["content-type"] == "application/json"
    assert "error" in json.loads(body)


def test_a_finished_conversation_streams_its_view_then_ends(
    stack: Stack, info: StackInfo, user: JsonUser
) -> None:
    tok = token()
    coder = {"agent": "coder", "match": tok, "replies": [reply(python_block(GOOD_ADD), 4, 2)]}
    posted, view = run_add_task(stack, user, tok, coder)
    assert view["status"] == "succeeded"
    with stream(info, f"/conversations/{posted['conversation_id']}/events") as events:
        assert events.next() == ("conversation", view)
        assert events.next() == ("end", {"reason": "over"})
        assert events.next() is None  # the server closed it: no thread is held


def test_a_conversation_streams_each_change_as_it_happens(info: StackInfo, user: JsonUser) -> None:
    posted = user.post("chat", "streamed, part one")
    conversation_id = posted["conversation_id"]
    wait_for_messages(user, conversation_id, 2)
    with stream(info, f"/conversations/{conversation_id}/events") as events:
        name, first = events.next() or ("", {})
        assert name == "conversation"
        assert [m["text"] for m in first["messages"]] == ["streamed, part one"] * 2
        user.client.post("chat", "streamed, part two", conversation_id=conversation_id)
        seen = events.until(lambda name, view: len(view.get("messages", [])) == 4)
    assert all(name == "conversation" for name, _ in seen)
    last = seen[-1][1]
    assert last == user.conversation(conversation_id)
    assert [m["text"] for m in last["messages"]][2:] == ["streamed, part two"] * 2


def test_the_list_stream_sends_the_list_then_each_new_conversation(
    info: StackInfo, user: JsonUser
) -> None:
    with stream(info, "/events") as events:
        name, first = events.next() or ("", {})
        assert name == "conversations"
        status, listed = api_request(info, "GET", "/conversations")
        assert status == 200 and set(first) == set(listed) == {"conversations"}
        posted = user.post("chat", "a new conversation, for the list stream")
        seen = events.until(
            lambda name, data: (
                name == "summary" and data["conversation_id"] == posted["conversation_id"]
            )
        )
    summary = seen[-1][1]
    assert summary["title"] == "a new conversation, for the list stream"
    assert summary["lobby"] == "chat"
