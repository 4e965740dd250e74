"""What the HTTP functions need from Flask: a request in, JSON out, and Flask's own errors too.

Each HTTP entry point of main.py hands its request to a handler `(method, path, headers, body,
settings) -> (body, status)`, or `(body, status, headers)` for extra headers, through
respond(); the user trigger's page routes answer a RawAnswer instead (HTML, static files, a
text/event-stream), sent as it is. functions-framework answers some requests itself (a 404 for
/robots.txt and /favicon.ico, a 405 for a method an event function does not take) with HTML;
json_errors() makes those JSON like every other answer.
"""

from __future__ import annotations

from collections.abc import Callable

import flask
import werkzeug.exceptions

from agentlobby.api.raw import JsonAnswer, RawAnswer
from agentlobby.config import Settings, settings

Handler = Callable[[str, str, dict[str, str], bytes, Settings], JsonAnswer | RawAnswer]


def respond(handler: Handler, request: flask.Request) -> flask.Response:
    headers = {key.lower(): value for key, value in request.headers.items()}
    answer = handler(request.method, request.path, headers, request.get_data(), settings())
    if isinstance(answer, RawAnswer):
        return flask.Response(
            answer.body, answer.status, headers=answer.headers, content_type=answer.content_type
        )
    extra = answer[2] if len(answer) == 3 else {}  # a 429's Retry-After, say
    return flask.make_response(flask.jsonify(answer[0]), answer[1], extra)


def json_errors() -> None:
    """Answer Flask's own HTTP errors as {"error": ...}; called while functions-framework loads
    main.py inside its app's context (elsewhere, as in a plain import, there is no app)."""
    if flask.has_app_context():
        flask.current_app.register_error_handler(werkzeug.exceptions.HTTPException, _as_json)


def _as_json(error: werkzeug.exceptions.HTTPException) -> flask.Response:
    status = error.code or 500
    message = f"{error.name}: no route {flask.request.method} {flask.request.path}"
    return flask.make_response(flask.jsonify({"error": message}), status)
