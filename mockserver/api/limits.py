"""Limits on one request, checked before Connexion routes it, so that no request can make the
mock buffer, parse or validate more than a bounded amount:

* headers over ``max_header_bytes`` in all: 431;
* a query string over ``max_query_bytes``: 400 naming ``query`` (414 would be the HTTP
  word for it, but every operation documents 400 for a bad query and generic clients and
  contract tools expect a documented 4xx; the path itself is bounded by the routes' patterns);
* a body over ``max_body_bytes``: 413, decided from ``Content-Length`` before any byte of
  the body is read. A body without ``Content-Length`` (chunked) is read here, up to the
  limit and no further, and handed on with its length set, so the validators see an
  ordinary body (Connexion takes a request without ``Content-Length`` for one without a
  body); more than the limit is a 413 without reading the rest.

Every answer is ``{"message": "<where>: ..."}`` like every other error. The limits travel in
the ASGI scope so the body validators apply the same ones (the JSON nesting depth too).
"""

from __future__ import annotations

from dataclasses import dataclass

from connexion.exceptions import ProblemException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.settings import Settings

from .errors import send_json

LIMITS_SCOPE_KEY = "m3ter_mock.limits"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = Settings.max_body_bytes
    max_header_bytes: int = Settings.max_header_bytes
    max_query_bytes: int = Settings.max_query_bytes
    max_json_depth: int = Settings.max_json_depth

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(settings.max_body_bytes, settings.max_header_bytes, settings.max_query_bytes,
                   settings.max_json_depth)


def limits_of(scope: Scope) -> Limits:
    return scope.get(LIMITS_SCOPE_KEY) or Limits()


def body_too_large_message(limit: int, size: int | None = None) -> str:
    size_text = f"{size} bytes, " if size is not None else ""
    return f"body: {size_text}larger than the {limit}-byte limit"


class BodyTooLarge(ProblemException):
    def __init__(self, limit: int, size: int | None = None):
        super().__init__(status=413, title="Payload Too Large", detail=body_too_large_message(limit, size))


class RequestLimits:
    def __init__(self, app: ASGIApp, limits: Limits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        scope[LIMITS_SCOPE_KEY] = limits
        headers = scope.get("headers") or []
        # Counted as on the wire ("name: value\r\n"), so the limit means what it says.
        header_bytes = sum(len(name) + len(value) + 4 for name, value in headers)
        if header_bytes > limits.max_header_bytes:
            await _answer(send, 431, f"headers: {header_bytes} bytes, larger than the "
                                     f"{limits.max_header_bytes}-byte limit")
            return
        query = scope.get("query_string") or b""
        if len(query) > limits.max_query_bytes:
            await _answer(send, 400, f"query: {len(query)} bytes, larger than the "
                                     f"{limits.max_query_bytes}-byte limit")
            return

        length_values = [value for name, value in headers if name == b"content-length"]
        if length_values:
            try:
                length = int(length_values[0])
                if length < 0 or any(int(v) != length for v in length_values):
                    raise ValueError
            except ValueError:
                await _answer(send, 400, "Content-Length: not a single non-negative number")
                return
            if length > limits.max_body_bytes:
                await _answer(send, 413, body_too_large_message(limits.max_body_bytes, length))
                return
            receive = _counting(receive, limits.max_body_bytes)
        else:  # chunked (or HTTP/2 without Content-Length); a GET's empty body comes at once
            messages, size = await read_messages_up_to(receive, limits.max_body_bytes)
            if size > limits.max_body_bytes:
                await _answer(send, 413, body_too_large_message(limits.max_body_bytes))
                return
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
            if body:
                scope = dict(scope)
                scope["headers"] = [(n, v) for n, v in headers if n != b"transfer-encoding"] + [
                    (b"content-length", str(len(body)).encode())]
            receive = replaying([{"type": "http.request", "body": body, "more_body": False}]
                                 + [m for m in messages if m["type"] != "http.request"], receive)
        await self.app(scope, receive, send)


def _counting(receive: Receive, limit: int) -> Receive:
    """The server frames the body by Content-Length; this is the second line of defence."""
    seen = 0

    async def receive_() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_


async def read_messages_up_to(receive: Receive, limit: int) -> tuple[list[Message], int]:
    """A request's messages up to the end of its body, or up to the one that takes the body
    past ``limit`` bytes (never further), and the body bytes read."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, size
        size += len(message.get("body", b""))
        if size > limit or not message.get("more_body", False):
            return messages, size


def replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def receive_() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return receive_


async def _answer(send: Send, status: int, message: str) -> None:
    # The unread body would otherwise be taken for the next request on the connection.
    await send_json(send, status, {"message": message}, {"Connection": "close"})
