"""Injected faults, applied to requests of the m3ter API before anything else looks at them
(authentication, validation, the handler): a fault either answers in the handler's place,
drops the connection, or waits and lets the request go on. The handler runs whole or not
at all, so an injected 503 on a create creates nothing and the client's retry is the only
create.

Sits between ``MockMiddleware`` (which has already answered unknown paths, 405s and the
admin token) and the request limits. The admin API (``/_mock``) is never faulted. With no
rule held, a request costs one attribute read here.

A delay is an ``asyncio`` sleep on the event loop: the request waiting holds no thread, and
every other request goes on meanwhile. Dropping a connection closes it under the ASGI server
(uvicorn, which ``m3ter-mock serve`` runs) without a byte of answer; where there is no
connection to close (the in-process test client) the app ends without answering, and the
client says it received no response."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import send_json
from .limits import read_messages_up_to, replaying
from .middleware import RouteTable, compile_routes

# The sleep of a delay; tests put a controllable one here instead of waiting.
SLEEP = asyncio.sleep
# The server's own ``receive`` of the request, before any layer wrapped it: under uvicorn a
# method of the object that holds the connection, which a drop closes.
CONNECTION_SCOPE_KEY = "m3ter_mock.connection_receive"


class ConnectionHandle:
    """The outermost layer: keeps the server's ``receive`` in the scope for a drop, since the
    layers in between (the journal, the request limits) hand on wrapped ones."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[CONNECTION_SCOPE_KEY] = receive
        await self.app(scope, receive, send)


class FaultInjection:
    def __init__(self, app: ASGIApp, backend, spec_paths: dict, admin_prefix: str, max_body_bytes: int):
        self.app = app
        self.backend = backend
        self.admin_prefix = admin_prefix
        self.max_body_bytes = max_body_bytes
        routes = compile_routes(spec_paths)
        self.routes = RouteTable(routes)
        # template -> (METHOD -> operationId, index of the orgId segment or None)
        self.operations: dict[str, tuple[dict[str, str], int | None]] = {}
        for route in routes:
            item = spec_paths[route.template]
            by_method = {method.upper(): operation["operationId"] for method, operation in item.items()
                         if isinstance(operation, dict) and "operationId" in operation}
            segments = route.template.strip("/").split("/")
            org_index = segments.index("{orgId}") if "{orgId}" in segments else None
            self.operations[route.template] = (by_method, org_index)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.backend.faults
        if scope["type"] != "http" or not faults.active:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = None if _under(path, self.admin_prefix) else self.routes.match(path)
        operation_id, org_id = self._operation(route, scope) if route else (None, None)
        if operation_id is None:
            await self.app(scope, receive, send)
            return
        body, body_read = None, False
        if faults.needs_body(operation_id, org_id):
            body, receive, body_read = await self._read_body(scope, receive)
        fault = faults.fire(operation_id, org_id, body)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay_seconds:
            await SLEEP(fault.delay_seconds)
        if fault.action == "delay":
            await self.app(scope, receive, send)
        elif fault.action == "drop":
            await _drop(scope.get(CONNECTION_SCOPE_KEY) or receive)
        else:
            headers = dict(fault.headers)
            if not body_read and _may_have_body(scope):
                # The unread body would otherwise be taken for the next request on the connection.
                headers["Connection"] = "close"
            await send_json(send, fault.status, fault.body, headers)

    def _operation(self, route, scope: Scope) -> tuple[str | None, str | None]:
        by_method, org_index = self.operations[route.template]
        operation_id = by_method.get(scope["method"])
        org_id = None
        if org_index is not None:
            segments = scope["path"].strip("/").split("/")
            org_id = segments[org_index] if org_index < len(segments) else None
        return operation_id, org_id

    async def _read_body(self, scope: Scope, receive: Receive):
        """The JSON body (None if it is not JSON or over the body limit, which the request
        limits then refuse), a ``receive`` that hands the body on as it came, and whether
        it was read whole."""
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            return None, receive, False
        messages, size = await read_messages_up_to(receive, self.max_body_bytes)
        whole = messages[-1]["type"] == "http.request" and size <= self.max_body_bytes
        body = None
        if whole:
            raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
            try:
                body = json.loads(raw) if raw else None
            except (ValueError, RecursionError):
                body = None
        return body, replaying(messages, receive), whole


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _may_have_body(scope: Scope) -> bool:
    length = _content_length(scope)
    if length is not None:
        return length > 0
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers") or ())


async def _drop(receive: Receive) -> None:
    # uvicorn's ``receive`` is a method of the request's cycle, which holds the connection.
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        return  # no connection to close: the answer is that there is none
    transport.abort()
    # Returning before the server has seen the connection go would make it answer a 500 in
    # the app's place; it has seen it once ``receive`` says so (any unread body comes first).
    while (await receive())["type"] != "http.disconnect":
        pass
