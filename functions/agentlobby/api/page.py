"""The page at the user trigger's root: its files, and the routes of the data it shows.

    GET /                 -> the page (HTML); no token: it holds no data, and asks for the
                             token once, keeping it in the browser's localStorage
    GET /page/{file}      -> its scripts, styles and vendored libraries (api/page/)
    GET /lobbies, GET /conversations                  -> api/overview.py (JSON, token)
    GET /events, GET /conversations/{id}/events       -> api/events.py (event streams, token)

routes.py calls shell() before its token check and data() after it. Only the files found in
api/page/ when the module loads are served, by exact name: a path cannot reach anything else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agentlobby.api.events import conversation_events, list_events
from agentlobby.api.overview import conversation_list, lobby_list
from agentlobby.api.raw import RawAnswer
from agentlobby.config import Settings

FOLDER = Path(__file__).resolve().parent / "page"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
}
# The page loads only its own files; images are the tasks' own, shown from data: URLs.
SECURITY = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_STREAM = re.compile(r"^/conversations/([^/]+)/events/?$")

Answer = tuple[dict[str, Any], int] | RawAnswer


def _files() -> dict[str, Path]:
    found = {}
    for path in sorted(FOLDER.rglob("*")):
        if path.is_file() and path.suffix in TYPES:
            found["/page/" + path.relative_to(FOLDER).as_posix()] = path
    return found


FILES = _files()


def shell(method: str, path: str) -> Answer | None:
    """The page or one of its files; None when the path is not one of the page's."""
    if path == "/":
        name = "/page/index.html"
    elif path.startswith("/page/"):
        name = path
    else:
        return None
    if method not in ("GET", "HEAD"):
        return {"error": f"method {method} not allowed on {path}: GET it"}, 405
    file = FILES.get(name)
    if file is None:
        return {"error": f"no page file {path}: the page is at /"}, 404
    body = b"" if method == "HEAD" else file.read_bytes()
    return RawAnswer(body, TYPES[file.suffix], headers=SECURITY)


def data(method: str, path: str, config: Settings) -> Answer | None:
    """The page's data (the caller checked the token); None when the path is not one of them."""
    route = path.rstrip("/")
    stream = _STREAM.match(path)
    if route not in ("/lobbies", "/conversations", "/events") and stream is None:
        return None
    if method != "GET":
        return {"error": f"method {method} not allowed on {path}: GET it"}, 405
    if stream is not None:
        return conversation_events(config, stream.group(1))
    if route == "/events":
        return list_events(config)
    if route == "/lobbies":
        return lobby_list(config).model_dump(mode="json"), 200
    return conversation_list(config).model_dump(mode="json"), 200
