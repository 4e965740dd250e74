"""Fuzz: random raw HTTP requests to the two HTTP functions anyone can reach, the user API and
the sandbox: random methods and paths, non-ASCII and garbage headers, bodies that are garbage,
deeply nested, huge numbers or too big.

Bad input must get a 4xx that says what was wrong; a 5xx means an input the code did not
expect reached something that raised, which in the cloud is a crash the caller can trigger at
will. Requests are written on a raw socket, so what urllib would refuse to send goes out too.
Half of them carry the right token, so validation past authentication is reached.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import urllib.parse
from collections import Counter

from stress.harness import Harness
from stress.plan import Plan
from stress.table import Row

ANSWER_TIMEOUT_S = 30.0
MAX_SHOWN = 8
BODY_KINDS = 14
# Weighted towards what reaches the parsers: numbers, nesting, odd strings and shapes.
BODY_WEIGHTS = [0, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 8, 9, 10, 11, 11, 12, 13]
MAIN_PATHS = {"user": b"/lobbies/chat/messages", "sandbox": b"/run"}
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO", "get"]


def _number(rng: random.Random) -> str:
    return rng.choice(
        [
            "9" * rng.choice([20, 400, 4_000, 4_301, 5_000, 20_000]),
            "-" + "9" * rng.choice([30, 5_000]),
            "1e309",
            "-1e999",
            "1" + "0" * 400 + ".5",
            "NaN",
            "Infinity",
            "-0",
            "9223372036854775808",
            "0.0000000000000000000000000001",
        ]
    )


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice([100, 1_000, 10_000, 100_000])
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"text": ' * depth + b'"x"' + b"}" * depth


def _body(rng: random.Random, target: str, choice: int) -> bytes:
    field = rng.choice(
        ["text", "tests", "max_rounds", "token_budget", "conversation_id", "source", "timeout_s"]
    )
    text_field = "source" if target == "sandbox" else "text"
    if choice == 0:
        return b""
    if choice == 1:
        return rng.randbytes(rng.choice([1, 10, 1_000, 50_000]))
    if choice == 2:
        return _nested(rng)
    if choice == 3:
        return f'{{"{text_field}": "x", "{field}": {_number(rng)}}}'.encode()
    if choice == 4:
        return _number(rng).encode()
    if choice == 5:  # valid JSON with the wrong shapes
        value = rng.choice([[], {}, None, True, "", "\u2603" * 100, {"$gt": ""}, [1, [2, [3]]]])
        return json.dumps({text_field: "x", field: value}).encode()
    if choice == 6:  # escapes JSON allows and Unicode does not (a lone surrogate), and NULs
        return (
            rng.choice([b'{"%s": "\\ud800"}', b'{"%s": "a\\u0000b"}', b'{"%s": "\\udfff\\ud800"}'])
            % text_field.encode()
        )
    if choice == 7:  # invalid UTF-8 inside a string
        return b'{"' + text_field.encode() + b'": "\xff\xfe\xc3\x28"}'
    if choice == 8:  # too big
        return (
            b'{"' + text_field.encode() + b'": "' + b"a" * rng.choice([950_000, 2_100_000]) + b'"}'
        )
    if choice == 9:
        image = {"mime_type": rng.choice(["image/png", "text/html", ""]), "data_base64": "!!"}
        return json.dumps({"text": "x", "image": image}).encode()
    if choice == 12:  # past Python's 4,300-digit limit for int(): json.loads raises ValueError
        return f'{{"{text_field}": "x", "{field}": {"9" * 5_000}}}'.encode()
    if choice == 13:
        return b"[" * 100_000 + b"]" * 100_000
    if choice == 10:
        return json.dumps(
            {text_field: "print('fuzz')", "timeout_s": 0.5, "files": {"../x": "a"}}
        ).encode()
    return json.dumps(
        {text_field: "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(50))}
    ).encode()


def _path(rng: random.Random, target: str) -> bytes:
    known = (
        ["/run", "/", "/healthz", "/run/", "/sweep"]
        if target == "sandbox"
        else [
            "/lobbies/chat/messages",
            "/lobbies/nope-lobby/messages",
            "/conversations/abc",
            "/conversations/" + "a" * 70,
            "/healthz",
            "/",
        ]
    )
    path = rng.choice(
        [
            *known,
            "/lobbies/" + urllib.parse.quote("caf\u00e9\u2603") + "/messages",
            "/lobbies/chat/messages?x=" + "y" * 5_000,
            "/conversations/%00%ff%fe",
            "//..//..//etc/passwd",
            "/robots.txt",
            "/favicon.ico",
            "/lobbies/" + "a" * 3_000 + "/messages",
            "/conversations/__reserved__",
            "/projects/p/topics/chat",
        ]
    )
    raw = path.encode()
    if rng.random() < 0.1:
        raw += "/\u2603".encode()  # raw non-ASCII in the request line
    return raw


def _headers(rng: random.Random, h: Harness, target: str, body: bytes, wild: bool) -> list[bytes]:
    right = (
        b"Bearer " + h.info.api_token.encode()
        if target == "user"
        else h.child("function-sandbox").env.get("AGENTLOBBY_SANDBOX_TOKEN", "").encode()
    )
    wrong = [b"Bearer caf\xc3\xa9", b"\xff\xfe", b"Bearer " + b"x" * 10_000, b""]
    secret = rng.choice(wrong) if wild and rng.random() < 0.5 else right
    name = b"Authorization" if target == "user" else b"X-Agentlobby-Sandbox-Token"
    content_types = [
        b"application/json",
        b"text/plain",
        b"multipart/form-data; boundary=zz",
        b"application/x-www-form-urlencoded",
        b"application/json; charset=\xe9",
    ]
    headers = [name + b": " + secret, b"Content-Type: " + rng.choice(content_types)]
    if rng.random() < 0.3:
        keys = [b"k\xc3\xa9y", b"\xe2\x98\x83", b"a" * 5_000, b"\xff", b"../../x"]
        headers.append(b"Idempotency-Key: " + rng.choice(keys))
    if rng.random() < 0.3:
        headers.append(rng.choice([b"X-\xe2\x98\x83: \xff", b"Accept: */*\x01", b"X-Y: caf\xe9"]))
    if wild and rng.random() < 0.2:
        headers.append(rng.choice([b"Cookie: " + b"c" * 9_000, b"Content-Encoding: gzip"]))
    headers.append(b"Content-Length: " + str(len(body)).encode())
    return headers


def _request(rng: random.Random, h: Harness, target: str, kind: int | None) -> bytes:
    """A well-formed post of body `kind` to the function's own route; or, for None, a random
    body, and one time in three also a random method, path and hostile headers."""
    wild = kind is None and rng.random() < 0.35
    body = _body(rng, target, rng.choice(BODY_WEIGHTS) if kind is None else kind)
    method = rng.choice(METHODS).encode() if wild else b"POST"
    path = _path(rng, target) if wild else MAIN_PATHS[target]
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += _headers(rng, h, target, body, wild)
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _status(port: int, request: bytes) -> int | None:
    """The answer's status code, or None when the connection ended without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_S) as sock:
        # The server may answer (413, 400) and close before reading it all.
        with contextlib.suppress(OSError):
            sock.sendall(request)
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
    parts = answer.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def run(h: Harness, plan: Plan, rng: random.Random) -> list[Row]:
    statuses: Counter[str] = Counter()
    server_errors: list[str] = []
    unanswered: list[str] = []
    for i in range(plan.fuzz_requests):
        target = "user" if i % 2 == 0 else "sandbox"
        # Every kind of body once to each function first (a seed corpus), then at random.
        kind = i // 2 if i // 2 < BODY_KINDS else None
        request = _request(rng, h, target, kind)
        status = _status(h.stack.ports[target], request)
        statuses[f"{target} {status or 'none'}"] += 1
        head = request.split(b"\r\n", 1)[0][:100]
        body = request.split(b"\r\n\r\n", 1)[1][:80]
        if status is not None and status >= 500:
            server_errors.append(f"{target} answered {status} to {head!r} {body!r}")
        elif status is None:
            unanswered.append(f"{target} closed without an answer to {head!r} {body!r}")
    row = Row(scenario=f"fuzz: {plan.fuzz_requests} raw requests, user + sandbox")
    spread = ", ".join(f"{key}: {n}" for key, n in sorted(statuses.items()))
    row.notes.append(f"answers: {spread}")
    if server_errors:
        row.fail(f"{len(server_errors)} requests got a 5xx")
        row.notes += server_errors[:MAX_SHOWN]
    if unanswered:  # not a 5xx, but worth seeing: the server dropped the connection
        row.notes.append(f"{len(unanswered)} requests got no answer")
        row.notes += unanswered[:MAX_SHOWN]
    return [row]
