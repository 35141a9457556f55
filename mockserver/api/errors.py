"""The one place where errors become HTTP responses: every error body is
``{"message": "..."}`` with ``application/json``, as m3ter answers (never Connexion's
``application/problem+json``). A message is at most ``MESSAGE_LIMIT`` characters: one that
quotes what a client sent (an unknown id, extra query parameters...) never echoes it in full."""

from __future__ import annotations

import json
import logging

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from mockserver.domain.errors import MockError

log = logging.getLogger("m3ter_mock")

MESSAGE_LIMIT = 500


def error_response(status: int, message: str, headers: dict | None = None) -> ConnexionResponse:
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT - 1] + "…"
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="m3ter-mock"')
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        content_type="application/json",
        body=json.dumps({"message": message}),
        headers=headers,
    )


async def send_json(send, status: int, body: dict | None, headers: dict | None = None) -> None:
    """Answer straight on the ASGI channel, for the layers that refuse a request before
    Connexion routes it (the pre-routing middleware, the request limits)."""
    payload = b"" if body is None else json.dumps(body).encode()
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body is not None:
        raw_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def mock_error(request: ConnexionRequest, exc: MockError) -> ConnexionResponse:
    return error_response(exc.status, exc.message)


def problem(request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    message = exc.detail or exc.title or "Request failed"
    return error_response(exc.status, message, getattr(exc, "headers", None))


def http_exception(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    return error_response(exc.status_code, exc.detail or "Request failed", exc.headers)


def unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # A crash is a bug in the mock: say so plainly rather than hide it behind a 4xx.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, f"m3ter-mock internal error ({type(exc).__name__}); please report it")


def register(app) -> None:
    app.add_error_handler(MockError, mock_error)
    app.add_error_handler(ProblemException, problem)
    app.add_error_handler(HTTPException, http_exception)
    app.add_error_handler(Exception, unexpected)
