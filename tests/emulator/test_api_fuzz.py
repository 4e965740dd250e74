"""Fuzzing the HTTP functions on the real stack: no request ever gets a 5xx.

- The user API's OpenAPI document (agentlobby/api/openapi.py, served at /openapi.json, copied to
  docs/openapi.json) drives schemathesis: valid and invalid requests for every operation, each
  answer checked against the document (status code, content type, body schema) and by the
  assertions below.
- Hypothesis writes raw HTTP/1.1 requests to the user function and to the sandbox function:
  any method, path, header (non-ASCII values as UTF-8 or Latin-1 bytes) and body (bytes, deep
  nesting, huge numbers, invalid UTF-8, NaN and Infinity, UTF-16). Each answer is 2xx, or a 4xx
  whose body is a JSON object with "error". 503 would mean a backend outage; there is none here.

Examples are bounded so the file takes seconds, and the stack is reached on loopback only. For a
longer hunt, multiply them: `FUZZ_SCALE=20 pytest tests/test_api_fuzz.py`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from agentlobby.api import openapi
from agentlobby.api.page import FILES
from agentlobby.api.routes import handle_request
from agentlobby.api.schema import ConversationView
from agentlobby.config import load_settings
from agentlobby.messages import MAX_ENVELOPE_BYTES, MAX_TEXT_CHARS, MAX_TOKEN_BUDGET, TaskImage
from agentlobby.sandbox.service import MAX_BODY_BYTES, MAX_MEMORY_MB, MAX_TIMEOUT_S, TOKEN_HEADER
from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.paths import REPO
from tests.support.user import JsonUser, wait_for_messages

DOCUMENT = REPO / "docs" / "openapi.json"
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=40 * SCALE,
    deadline=None,
    database=None,  # no example database in the checkout
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


# The document: generated, served, kept in docs/, and its bounds are the models' bounds.


def test_docs_openapi_json_is_what_the_code_generates() -> None:
    assert DOCUMENT.read_text() == openapi.render(), (
        "docs/openapi.json is stale: regenerate it with "
        "`PYTHONPATH=functions python -m agentlobby.api.openapi > docs/openapi.json`"
    )


def test_the_user_function_serves_the_document_without_a_token(info: StackInfo) -> None:
    status, _type, body = _plain(info.user_url + "/openapi.json")
    assert (status, body) == (200, openapi.document())
    status, content_type, body = _plain(info.user_url + "/openapi.json", method="POST")
    assert status == 405
    assert content_type == "application/json"
    assert "GET" in body["error"]


def test_every_number_a_client_sends_has_its_bounds_in_the_document() -> None:
    schemas = openapi.document()["components"]["schemas"]
    post = schemas["PostMessage"]["properties"]
    assert _bounds(post["max_rounds"]) == (1, 20)
    assert _bounds(post["token_budget"]) == (1, MAX_TOKEN_BUDGET)
    assert (post["text"]["minLength"], post["text"]["maxLength"]) == (1, MAX_TEXT_CHARS)
    post_op = openapi.document()["paths"]["/lobbies/{lobby}/messages"]["post"]
    assert f"{MAX_ENVELOPE_BYTES:,} bytes" in post_op["requestBody"]["description"]
    patterns = {p["name"]: p["schema"].get("pattern") for p in post_op["parameters"]}
    assert patterns["lobby"] == "^[a-z][a-z0-9-]{2,62}$"
    get_op = openapi.document()["paths"]["/conversations/{conversation_id}"]["get"]
    assert get_op["parameters"][0]["schema"]["pattern"].endswith("[A-Za-z0-9_-]{1,64}$")
    # A posted image is read as a TaskImage: the document shows TaskImage's rules.
    image = schemas["ImageInput"]["properties"]
    assert (
        image["mime_type"]["enum"]
        == TaskImage.model_json_schema()["properties"]["mime_type"]["enum"]
    )
    assert "pattern" in image["data_base64"]
    # Every integer of the request, however deep, is bounded on both sides.
    assert all(lo is not None and hi is not None for lo, hi in _integer_bounds(post, schemas))


def _bounds(field: dict[str, Any]) -> tuple[int, int]:
    (number,) = [s for s in field["anyOf"] if s.get("type") == "integer"]
    return number["minimum"], number["maximum"]


def _integer_bounds(
    properties: dict[str, Any], schemas: dict[str, Any]
) -> list[tuple[int | None, int | None]]:
    found = []
    for field in properties.values():
        for option in field.get("anyOf", [field]):
            if option.get("type") == "integer":
                found.append((option.get("minimum"), option.get("maximum")))
            elif "$ref" in option:
                name = option["$ref"].rsplit("/", 1)[-1]
                found += _integer_bounds(schemas[name].get("properties", {}), schemas)
    return found


# schemathesis: the document drives requests; each answer must conform to it.

CHECKS = {
    # A 413 (body over 900,000 bytes, which a JSON Schema cannot say) is a documented refusal.
    "negative_data_rejection": {"expected-statuses": [400, 401, 404, 405, 413, 422]},
    "positive_data_acceptance": {"expected-statuses": ["2xx", 401, 404, 413]},
    # A 405 here names no `Allow` methods (the handlers answer a body and a status), and
    # /healthz answers every method, for any prober: not checked.
    "unsupported_method": {"enabled": False},
}


def _refused_beyond_the_schema(response: schemathesis.Response, case: schemathesis.Case) -> bool:
    """A 422 the document states in words but a JSON Schema cannot check, like the 413: an
    image that is not what its mime type says (magic bytes, size, sides), or an
    Idempotency-Key already used with another body (schemathesis reuses header values)."""
    body = case.body if isinstance(case.body, dict) else {}
    if response.status_code != 422:
        return False
    image = isinstance(body.get("image"), dict) and "invalid image" in response.text
    reused = "idempotency-key" in {k.lower() for k in (case.headers or {})} and (
        "was already used for a different message" in response.text
    )
    return image or reused


def _validate(case: schemathesis.Case, response: schemathesis.Response, **kwargs: Any) -> None:
    refused = _refused_beyond_the_schema(response, case)
    excluded = [positive_data_acceptance] if refused else None
    case.validate_response(response, excluded_checks=excluded, **kwargs)


SCHEMA = schemathesis.openapi.from_dict(
    openapi.document(), config=schemathesis.Config.from_dict({"checks": CHECKS})
)


@SCHEMA.parametrize()
@FUZZ
def test_the_user_api_answers_as_its_document_says(
    case: schemathesis.Case, info: StackInfo
) -> None:
    auth = {"Authorization": f"Bearer {info.api_token}"}
    response = case.call(base_url=info.user_url, headers=auth, timeout=30)
    _check_answer(
        response.status_code,
        response.headers.get("content-type", [""])[0],
        response.content,
        case.method,
    )
    # Status code, content type and body schema as documented; no ignored auth, no negative
    # data accepted, no positive data refused (but an image that is not what it says).
    _validate(case, response, headers=auth)


def test_posts_and_reads_along_the_documents_link_conform(info: StackInfo) -> None:
    """Stateful: a post's 202 links to its conversation (`links` in the document), so reads of
    conversations that exist, with whatever was posted, are checked against the document."""
    auth = {"Authorization": f"Bearer {info.api_token}"}

    class Workflow(SCHEMA.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": info.user_url, "headers": auth, "timeout": 30}

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            additional = kwargs.pop("additional_checks", None)
            _validate(
                case,
                response,
                additional_checks=additional,
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            content_type = response.headers.get("content-type", [""])[0]
            _check_answer(response.status_code, content_type, response.content, case.method)

    Workflow.run(settings=settings(FUZZ, max_examples=10 * SCALE, stateful_step_count=4))


def test_a_conversation_read_back_conforms_to_the_document(info: StackInfo, user: JsonUser) -> None:
    posted = user.post("chat", "hello, schema")
    wait_for_messages(user, posted["conversation_id"], 2)  # the post and echo's reply
    operation = SCHEMA["/conversations/{conversation_id}"]["GET"]
    case = operation.Case(path_parameters={"conversation_id": posted["conversation_id"]})
    response = case.call_and_validate(
        base_url=info.user_url, headers={"Authorization": f"Bearer {info.api_token}"}
    )
    assert response.status_code == 200
    view = ConversationView.model_validate_json(response.content)
    assert [m.sender for m in view.messages] == ["user", "echo"]


# Hypothesis on raw requests: anything a client can put in an HTTP/1.1 message.

ODD_METHODS = st.sampled_from(
    [
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "HEAD",
        "OPTIONS",
        "TRACE",
        "PROPFIND",
        "MKCOL",
        "BREW",
        "PURGE",
        "QUERY",
        "M-SEARCH",
        "X_CUSTOM",
        "LINK",
    ]
)
ROUTES = st.sampled_from(
    [
        "/",
        "/healthz",
        "/openapi.json",
        "/run",
        "/lobbies/chat/messages",
        "/conversations/",
        "/lobbies/",
        "/lobbies/chat/messages/",
        "/robots.txt",
        "/favicon.ico",
        "//",
        "/./..",
    ]
)


def methods(main: str) -> st.SearchStrategy[str]:
    """Mostly the method that reaches the handler's body parsing, else any method."""
    return st.one_of(st.just(main), ODD_METHODS)


def paths(*main: str) -> st.SearchStrategy[str]:
    """A route that reaches the handler, or a known route and anything after it, percent-encoded
    as clients send it, or raw printable ASCII. (Raw non-ASCII is not HTTP: see NOT_HTTP.)"""
    return st.one_of(
        st.sampled_from(main),
        st.builds(lambda r, tail: r + quote(tail, safe="/?=&;%"), ROUTES, st.text(max_size=40)),
        st.builds(lambda r, tail: r + tail, ROUTES, st.from_regex(r"[!-~]{0,40}", fullmatch=True)),
    )


AUTHORIZED = st.sampled_from([True, True, True, False])  # with the right token, mostly
# Field values as bytes: printable ASCII, Latin-1, UTF-8 of any text (no control characters).
_VISIBLE = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=60)
VALUES = st.one_of(
    _VISIBLE.map(lambda s: s.encode("utf-8")),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_categories=["Cc"])).map(
        lambda s: s.encode("latin-1")
    ),
    st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x80 or 0x20 <= c < 0x7F)),
)
NAMES = st.sampled_from(
    [
        "Authorization",
        "Idempotency-Key",
        "Content-Type",
        "Accept",
        "Content-Encoding",
        "Accept-Charset",
        "X-Forwarded-For",
        "Cookie",
        TOKEN_HEADER,
        "Origin",
        "Range",
    ]
) | st.from_regex(r"[A-Za-z0-9!#$%&'*+.^`|~-]{1,24}", fullmatch=True).filter(
    lambda name: name.lower() not in _FRAMING
)
_FRAMING = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te"}
# Each name once: a repeated Host or Content-Type is not HTTP (the server answers 400 itself).
HEADERS = st.lists(
    st.tuples(NAMES.map(str.encode), VALUES), max_size=6, unique_by=lambda h: h[0].lower()
)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"text":' * depth + b'"x"' + b"}" * depth


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = st.sampled_from(
    [
        "text",
        "conversation_id",
        "tests",
        "image",
        "max_rounds",
        "token_budget",
        "source",
        "files",
        "timeout_s",
        "memory_mb",
    ]
)
_NUMBERS = st.one_of(
    st.sampled_from(
        [
            b"0",
            b"-1",
            b"1",
            b"20",
            b"21",
            b"1e999",
            b"-1e999",
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b"1.5",
            b"1e-999",
            b"-0",
            b"100000000",
            b"100000001",
            b"600",
            b"600.0001",
            b"65536",
            b"65537",
            b"9223372036854775808",
            b"true",
        ]
    ),
    st.text("0123456789", min_size=1, max_size=6000).map(lambda digits: ("1" + digits).encode()),
)
# A JSON object of the API's own field names with edge values: the bounds of each number.
FIELD_OBJECTS = st.lists(
    st.tuples(_FIELDS, st.one_of(_NUMBERS, JSON_VALUES.map(lambda v: json.dumps(v).encode()))),
    max_size=5,
).map(lambda pairs: b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in pairs) + b"}")
BODIES = st.one_of(
    st.just(b""),
    st.binary(max_size=2000),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    FIELD_OBJECTS,
    st.builds(_nested, st.integers(1, 100_000), st.sampled_from(["array", "object"])),
    st.binary(min_size=1, max_size=40).map(lambda b: b'{"text": "' + b + b'"}'),  # invalid UTF-8
    st.sampled_from(["utf-16", "utf-32", "utf-8-sig"]).map(
        lambda encoding: json.dumps({"text": "héllo"}).encode(encoding)
    ),
    st.just(b"x" * (MAX_ENVELOPE_BYTES + 1)),
)


@settings(FUZZ, max_examples=80 * SCALE)
@given(
    method=methods("POST"),
    path=paths("/lobbies/chat/messages", "/lobbies/no-such-lobby/messages", "/conversations/x"),
    headers=HEADERS,
    body=BODIES,
    authorized=AUTHORIZED,
)
@example(method="GET", path="/conversations/%C3%A9", headers=[], body=b"", authorized=True)
@example(
    method="GET",
    path="/conversations/x",
    headers=[(b"Authorization", "Bearer tökén".encode("latin-1"))],
    body=b"",
    authorized=False,
)
def test_the_user_function_answers_any_request_without_a_server_error(
    info: StackInfo,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    authorized: bool,
) -> None:
    if authorized:
        headers = [(b"Authorization", f"Bearer {info.api_token}".encode()), *headers]
    status, content_type, answer = _raw(info.user_url, method, path, headers, body)
    if status == 200 and urlsplit(path).path in FILES | {"/": None}:
        return  # the page and its files (api/page.py): HTML, scripts and styles, not JSON
    _check_answer(status, content_type, answer, method)


@settings(FUZZ, max_examples=100 * SCALE)
@given(headers=HEADERS, body=BODIES)
@example(  # a number Python will not convert (over 4300 digits): was a 500
    headers=[], body=b'{"text": "hi", "max_rounds": 1' + b"0" * 5000 + b"}"
)
@example(
    headers=[],
    body=b'{"text": "hi", "image": {"mime_type": "image/png", "data_base64": "\xc3\xa9"}}',
)
@example(
    headers=[(b"Idempotency-Key", "ключ".encode()), (b"Content-Type", b"text/plain; \xff")],
    body=b'{"text": "hi"}',
)
def test_the_user_function_answers_any_post_body_without_a_server_error(
    info: StackInfo, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    auth = (b"Authorization", f"Bearer {info.api_token}".encode())
    path = "/lobbies/chat/messages"
    status, content_type, answer = _raw(info.user_url, "POST", path, [auth, *headers], body)
    _check_answer(status, content_type, answer, "POST")


@settings(FUZZ, max_examples=80 * SCALE)
@given(
    method=methods("POST"),
    path=paths("/run", "/"),
    headers=HEADERS,
    body=BODIES,
    authorized=AUTHORIZED,
)
def test_the_sandbox_function_answers_any_request_without_a_server_error(
    stack: Stack,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    authorized: bool,
) -> None:
    if authorized:
        headers = [(TOKEN_HEADER.encode(), _sandbox_token(stack).encode()), *headers]
    status, content_type, answer = _raw(stack.url("sandbox"), method, path, headers, body)
    _check_answer(status, content_type, answer, method)


@settings(FUZZ, max_examples=80 * SCALE)
@given(headers=HEADERS, body=BODIES)
@example(  # deep nesting inside a valid-looking run request
    headers=[], body=b'{"source": "print(1)", "files": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
)
@example(
    headers=[],
    body=b'{"source": "print(1)", "timeout_s": 1e999, "memory_mb": 1' + b"0" * 5000 + b"}",
)
@example(headers=[], body=b'{"source": "print(1)", "files": {"a.txt": "\xc3\xa9"}}')
@example(headers=[], body=b"x" * (MAX_BODY_BYTES + 1))
@example(  # the bounds themselves are taken (and capped by the function's settings)
    headers=[], body=b'{"source": "print(1)", "timeout_s": 600, "memory_mb": 65536}'
)
def test_the_sandbox_function_answers_any_run_body_without_a_server_error(
    stack: Stack, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    token = (TOKEN_HEADER.encode(), _sandbox_token(stack).encode())
    status, content_type, answer = _raw(
        stack.url("sandbox"), "POST", "/run", [token, *headers], body
    )
    _check_answer(status, content_type, answer, "POST")


NOT_HTTP = [
    ("GET", "/conversations/é", []),  # a request target is ASCII (RFC 9112 3.2)
    ("get", "/healthz", []),  # a method is case-sensitive; gunicorn takes upper case only
    ("POST", "/run", [(b"Content-Type", b"a/b"), (b"content-type", b"c/d")]),  # a singleton twice
    ("GET", "/healthz", [(b"X-A", b"a\x01b")]),  # a control character in a value
]


@pytest.mark.parametrize("target", ["user", "sandbox"])
@pytest.mark.parametrize(("method", "path", "headers"), NOT_HTTP)
def test_what_is_not_http_is_refused_by_the_http_server_with_a_400(
    stack: Stack, target: str, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """The HTTP server (gunicorn, as in the cloud) refuses a malformed message itself, with its
    own 400, before the function sees it; clients' libraries never send one. Never a 5xx."""
    status, _type, _body = _raw(stack.url(target), method, path, headers, b"")
    assert status == 400


FOUND_BY_FUZZING = [
    # A 500: json.loads raises a plain ValueError for an integer of over 4300 digits.
    (b'{"text": "hi", "max_rounds": 1' + b"0" * 5000 + b"}", "more than 4300 digits"),
    # Taken as no image (202): the lenient decoder dropped what is not base64.
    (b'{"text": "hi", "image": {"mime_type": "image/png", "data_base64": "\xc3\xa9"}}', "Base64"),
    (b'{"text": "hi", "image": {"mime_type": "image/png", "data_base64": "!!!!"}}', "Base64"),
]


@pytest.mark.parametrize(("body", "expected"), FOUND_BY_FUZZING)
def test_what_the_fuzzers_found_is_a_422(body: bytes, expected: str) -> None:
    config = load_settings({"AGENTLOBBY_API_TOKEN": "t", "AGENTLOBBY_PROJECT": "no-io-here"})
    headers = {"authorization": "Bearer t"}
    answer, status = handle_request("POST", "/lobbies/chat/messages", headers, body, config)
    assert status == 422, answer
    assert expected in answer["error"]


def test_the_sandbox_bounds_are_those_the_docs_state() -> None:
    assert (MAX_TIMEOUT_S, MAX_MEMORY_MB, MAX_BODY_BYTES) == (600.0, 65_536, 2_000_000)
    messages = (REPO / "docs" / "messages.md").read_text()
    for bound in ("600", "65,536", "2,000,000", "100,000,000", "200,000", "900,000"):
        assert bound in messages, bound


# Helpers.


def _check_answer(status: int, content_type: str, body: bytes, method: str) -> None:
    """2xx, or a 4xx with a JSON error; never a 5xx (no backend is down in these tests)."""
    event(f"status {status}")  # see the spread: pytest --hypothesis-show-statistics
    assert status < 500, (status, body[:500])
    assert 200 <= status < 300 or 400 <= status < 500, (status, content_type, body[:300])
    if method == "HEAD":
        return
    assert content_type.split(";")[0].strip() == "application/json", (status, body[:300])
    decoded = json.loads(body)
    assert isinstance(decoded, dict), decoded
    if status >= 400:
        assert isinstance(decoded.get("error"), str) and decoded["error"], decoded


def _raw(
    url: str, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, str, bytes]:
    """One HTTP/1.1 request written byte for byte, read back with http.client's parser."""
    where = urlsplit(url)
    assert where.hostname == "127.0.0.1", url  # loopback only
    head = [
        f"{method} {path} HTTP/1.1".encode(),
        f"Host: {where.netloc}".encode(),
        b"Connection: close",
        b"Content-Length: %d" % len(body),
        *(name + b": " + value for name, value in headers),
    ]
    with socket.create_connection((where.hostname, where.port or 80), timeout=60) as sock:
        # The server may answer before it reads the whole body: then read its answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.getheader("Content-Type") or "", response.read()


def _plain(url: str, method: str = "GET") -> tuple[int, str, Any]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get_content_type(), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), json.loads(exc.read())


def _sandbox_token(stack: Stack) -> str:
    (child,) = [c for c in stack.children if c.name == "function-sandbox"]
    return child.env["AGENTLOBBY_SANDBOX_TOKEN"]
