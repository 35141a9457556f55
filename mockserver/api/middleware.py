"""The outermost layer: things that must happen before Connexion routes a request.

* Hands the backend to the security hooks (they run before any Flask context exists).
* Rejects control characters in the path: Starlette cannot route such a path, which would
  otherwise fall through past security and validation into Flask and crash there.
* Answers a method the path does not have with 405 and an ``Allow`` header built from the
  spec (Connexion lists only the first route's methods), and answers OPTIONS. Where several
  path templates match a path, the most specific one is the path's (``order_by_specificity``):
  ``POST /bills/preview`` is the preview, never a 405 from ``/bills/{id}``, and
  ``GET /bills/preview`` is a 405, not a bill named "preview".
* Answers an unknown path with the JSON 404 body instead of Flask's HTML page.
* Guards the admin API (``/_mock``) with the admin token when one is set, before routing,
  so 404 and 405 answers under ``/_mock`` need it too. Download URLs and the admin API's
  own ``openapi.json`` stay public.
* Does the waiting of ``wait=true`` admin calls here, on the event loop, so a waiting call
  holds none of the few threads Flask's handlers run on; and lets one clock change at a
  time reach those threads (the others queue here).
* Serves the spec documents (``/openapi.json``) from bytes built once: Connexion would
  rebuild and serialise the whole spec on every request.
* Logs one line per request: method, path, status, milliseconds. Never a header, body or
  query string, nor a download URL's token, so no credential or secret reaches the log.
* Records each request of the m3ter API in the request journal (``backend.journal``): it
  keeps references to what passes through (no copy, no decoding); the journal redacts
  when it is read.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import re
import threading
import time
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .context import BACKEND_SCOPE_KEY
from .errors import send_json
from .routing import SegmentIndex

access_log = logging.getLogger("m3ter_mock.access")

DELIVERY_HEADER = b"x-m3ter-mock-delivery"
ADMIN_TOKEN_HEADER = b"x-m3ter-mock-admin-token"
# The longest a ``wait=true`` call waits before it answers with what has happened so far
# (openapi/admin.yaml says so).
WAIT_SECONDS = 30.0

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _shape(template: str) -> tuple[int, ...]:
    """Per path segment: 0 for a literal, 1 for a segment holding a parameter."""
    return tuple(1 if "{" in segment else 0 for segment in template.strip("/").split("/"))


def _may_overlap(a: list[str], b: list[str]) -> bool:
    """Whether some path could match both templates (given as segments)."""
    return len(a) == len(b) and all(x == y or "{" in x or "{" in y for x, y in zip(a, b))


def order_by_specificity(templates) -> list[str]:
    """The path templates in the order routes must be tried: of two templates that can match
    the same path, the more specific one first; otherwise in the order given, so the served
    spec keeps its authored order as far as it can.

    More specific means: compared segment by segment from the left, the first segment where
    they differ is a literal in it and a parameter in the other (``/bills/preview`` before
    ``/bills/{id}``, ``/bills/latest/{accountId}`` before ``/bills/{billId}/lineitems``). That
    is Werkzeug's rule, and Werkzeug picks the Flask handler; Connexion's Starlette router
    (which picks the operation that security and validation apply) takes the first route
    that matches, so its routes must come in this order for the two to agree."""
    return list(_ordered(tuple(templates)))


@functools.lru_cache(maxsize=8)
def _ordered(templates: tuple[str, ...]) -> tuple[str, ...]:
    # Cached: the app orders the same spec twice (Connexion's routes, the middleware's).
    shapes = [_shape(t) for t in templates]
    segments = [t.strip("/").split("/") for t in templates]
    by_length: dict[int, list[int]] = {}
    for index, parts in enumerate(segments):
        by_length.setdefault(len(parts), []).append(index)
    must_follow: list[list[int]] = [[] for _ in templates]  # the more specific overlapping ones
    for group in by_length.values():
        for position, i in enumerate(group):
            for j in group[position + 1:]:
                if shapes[i] == shapes[j] or not _may_overlap(segments[i], segments[j]):
                    continue
                first, then = (i, j) if shapes[i] < shapes[j] else (j, i)
                must_follow[then].append(first)
    ordered: list[str] = []
    placed = [False] * len(templates)

    def place(i: int) -> None:
        # A template is placed right after the more specific ones it must follow (they move
        # up to it), so related templates stay together. The relation follows one total
        # order of shapes, so it has no cycle.
        placed[i] = True
        for j in must_follow[i]:
            if not placed[j]:
                place(j)
        ordered.append(templates[i])

    for i in range(len(templates)):
        if not placed[i]:
            place(i)
    return tuple(ordered)


def ordered_paths(spec_paths: dict) -> dict:
    """The spec's ``paths`` object with its templates in ``order_by_specificity`` order."""
    return {template: spec_paths[template] for template in order_by_specificity(spec_paths)}


class Route(NamedTuple):
    regex: re.Pattern
    methods: frozenset[str]
    template: str


def compile_routes(spec_paths: dict, prefix: str = "") -> list[Route]:
    """One route per path template, most specific first (see ``match_route``)."""
    routes = []
    for template in order_by_specificity(spec_paths):
        item = spec_paths[template]
        methods = frozenset(m.upper() for m in item if m in ("get", "put", "post", "delete", "patch"))
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(prefix + template)) + "/?$"
        routes.append(Route(re.compile(regex), methods, prefix + template))
    return routes


def match_route(routes: list[Route], path: str) -> Route | None:
    """The path's template: the most specific that matches it. Its methods are the path's,
    even where a less specific template has the method asked for."""
    for route in routes:
        if route.regex.match(path):
            return route
    return None


def _segments(path: str) -> list[str]:
    # A route's regex accepts one trailing slash.
    if path.endswith("/") and len(path) > 1:
        path = path[:-1]
    return path.split("/")[1:]


class RouteTable:
    """``match_route`` without trying every route on every request (the whole spec has
    about 190 templates): only the templates whose literal segments fit the path are tried,
    in the routes' order (``routing.SegmentIndex``)."""

    def __init__(self, routes: list[Route]):
        self.routes = list(routes)
        self._index = SegmentIndex([_segments(route.template) for route in self.routes])

    def match(self, path: str) -> Route | None:
        for number in self._index.candidates(_segments(path)):
            route = self.routes[number]
            if route.regex.match(path):
                return route
        return None


class MockMiddleware:
    def __init__(self, app: ASGIApp, backend, routes, passthrough_prefixes=(), quiet=False, *,
                 admin_prefix: str | None = None, admin_token: str | None = None,
                 public_admin_paths=(), documents=(), wait_seconds: float = WAIT_SECONDS):
        self.app = app
        self.backend = backend
        self.routes = RouteTable(routes)
        self.passthrough_prefixes = tuple(passthrough_prefixes)
        self.quiet = quiet
        self.admin_prefix = admin_prefix
        self._admin_token = admin_token.encode() if admin_token else None
        # Exact paths, or prefixes when they end with "/".
        self.public_admin_paths = tuple(public_admin_paths)
        self.documents = frozenset(documents)
        self._document_cache: dict[tuple[str, str], tuple[list, bytes]] = {}
        self.wait_seconds = wait_seconds
        # A threading lock (not asyncio's): test clients run each request on a loop of its own.
        self._clock_gate = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[BACKEND_SCOPE_KEY] = self.backend
        server = scope.get("server")
        # Starlette's in-process test client reports a made-up ("testserver", 80): not an
        # address anything listens on, and a name would count as every local address.
        if (server and server[1] is not None and server[0] != "testserver"
                and tuple(server) not in self.backend.own_addresses):
            self.backend.own_addresses.add((server[0], server[1]))
        started = time.perf_counter()
        status_seen = {"status": 0}
        journaled = self._journal_entry(scope)
        if journaled is not None:
            receive = journaled.wrap_receive(receive)

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
            if journaled is not None and not status_seen.get("journaled"):
                journaled.sent(message)
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    # Before the answer's last byte leaves: a client that reads the journal
                    # once it has its answer finds its own request there.
                    self.backend.journal.record(journaled, time.perf_counter() - started)
                    status_seen["journaled"] = True
            await send(message)

        try:
            early = self._early_answer(scope)
            if early is not None:
                await send_json(send_logged, *early)
            else:
                await self._forward(scope, receive, send_logged)
        finally:
            if journaled is not None and not status_seen.get("journaled"):  # no whole answer was sent
                self.backend.journal.record(journaled, time.perf_counter() - started)
            if not self.quiet:
                path, ms = self._loggable(scope["path"]), (time.perf_counter() - started) * 1000
                # The same fields again, for ``--log-format json`` (mockserver/logs.py).
                access_log.info("%s %s %s %.1fms", scope["method"], path, status_seen["status"], ms,
                                extra={"access": {"method": scope["method"], "path": path,
                                                  "status": status_seen["status"], "durationMs": round(ms, 1)}})

    def _journal_entry(self, scope: Scope):
        """A request journal entry for a request of the m3ter API; None for the admin API, the
        spec documents and the UI (or with the journal off)."""
        journal = self.backend.journal
        path = scope["path"]
        if not journal.enabled or self._is_admin(path) or path.startswith(self.passthrough_prefixes):
            return None
        return journal.start(scope)

    def _early_answer(self, scope: Scope):
        path = scope["path"]
        for name, value in scope.get("headers") or ():
            if name == DELIVERY_HEADER and value.decode("latin-1") == self.backend.instance_id:
                return 403, {"message": "a webhook delivery of this mock cannot call the mock itself"}, {}
        raw = scope.get("raw_path") or path.encode("latin-1", "replace")
        if _CONTROL.search(path) or _CONTROL.search(unquote(raw.decode("latin-1"))):
            return 400, {"message": "path: control characters are not allowed"}, {}
        if self._needs_admin_token(path) and _cross_origin(scope):
            # A browser sends a cross-site form POST without a preflight, so CORS alone would let
            # any web page reset an open mock or move its clock; tools send no Origin.
            return 403, {"message": "the admin API does not answer requests from another origin's web page"}, {}
        if self._admin_token is not None and self._needs_admin_token(path):
            refusal = self._admin_token_refusal(scope)
            if refusal is not None:
                return 401, {"message": refusal}, {"WWW-Authenticate": 'Bearer realm="m3ter-mock admin API"'}
        if path.startswith(self.passthrough_prefixes):
            return None
        route = self.routes.match(path)
        if route is None:
            return 404, {"message": f"No such endpoint: {path}"}, {}
        allow = ", ".join(sorted(route.methods | {"OPTIONS"}))
        if scope["method"] == "OPTIONS":
            return 204, None, {"Allow": allow}
        if scope["method"] not in route.methods:
            return 405, {"message": f"{scope['method']} is not allowed on {path}; allowed: {allow}"}, {"Allow": allow}
        return None

    def _loggable(self, path: str) -> str:
        """The path as logged: the token of a download or upload URL is a credential (it needs
        no other), so it is left out; the rest is percent-encoded as on the wire, so a line
        is always `METHOD PATH STATUS TIME` (an organization id may hold spaces)."""
        if self.admin_prefix is not None:
            for secret_part in ("/downloads/", "/uploads/"):
                if path.startswith(self.admin_prefix + secret_part):
                    return self.admin_prefix + secret_part + "…"
        return _printable(quote(path, safe="/:@!$&'()*+,;=-._~%"))

    # -- the admin token ------------------------------------------------------------------
    def _is_admin(self, path: str) -> bool:
        prefix = self.admin_prefix
        return prefix is not None and (path == prefix or path.startswith(prefix + "/"))

    def _needs_admin_token(self, path: str) -> bool:
        if not self._is_admin(path):
            return False
        for public in self.public_admin_paths:
            if path == public or (public.endswith("/") and path.startswith(public)):
                return False
        return True

    def _admin_token_refusal(self, scope: Scope) -> str | None:
        """None when the request carries the admin token; else why not (never echoing
        what was sent)."""
        offered = []
        for name, value in scope.get("headers") or ():
            if name == ADMIN_TOKEN_HEADER:
                offered.append(value.strip())
            elif name == b"authorization":
                scheme, _, credential = value.strip().partition(b" ")
                if scheme.lower() == b"bearer":
                    offered.append(credential.strip())
        # Every offer is compared, so the time taken says nothing about which one was close.
        matched = False
        for candidate in offered:
            matched |= hmac.compare_digest(candidate, self._admin_token)
        if matched:
            return None
        if not offered:
            return ("the admin API needs the mock's admin token: send Authorization: Bearer <token> "
                    "or X-m3ter-mock-admin-token: <token>")
        return "the admin token is not valid"

    # -- after the early answers ---------------------------------------------------------
    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method == "GET" and path in self.documents:
            await self._send_document(scope, receive, send)
            return
        if not self._is_admin(path):
            await self.app(scope, receive, send)
            return
        route = path[len(self.admin_prefix):].rstrip("/")
        if method == "GET" and route == "/deliveries" and _query_flag(scope, "wait"):
            # The list is read after the wait, as the caller asked.
            await self._settle()
            await self.app(scope, receive, send)
        elif method == "POST" and route == "/events" and _query_flag(scope, "wait"):
            # The Event is recorded first; its answer is held back until its deliveries ran.
            held = _HeldResponse()
            await self.app(scope, receive, held.send)
            if held.status == 200:
                await self._settle()
            await held.replay(send)
        elif method == "POST" and route == "/clock":
            # A clock change waits (in a handler thread) for the work it makes due; queued
            # changes wait here instead of each holding a thread.
            await _acquire(self._clock_gate)
            try:
                await self.app(scope, receive, send)
            finally:
                self._clock_gate.release()
        else:
            await self.app(scope, receive, send)

    async def _settle(self) -> bool:
        """Wait, without holding a thread, until nothing is due and nothing is running in
        any worker (including work that due work made due), or ``wait_seconds`` pass."""
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.001
        quiet_passes = 0
        while True:
            if all(worker.wait_idle(0) for worker in self.backend.workers()):
                # Twice in a row: an item that finished between two workers' checks may
                # have handed work to one already checked; the second pass sees it.
                quiet_passes += 1
                if quiet_passes == 2:
                    return True
                continue
            quiet_passes = 0
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.025)

    # -- the spec documents --------------------------------------------------------------
    async def _send_document(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Connexion's document depends on the request only through the root path.
        key = (scope["path"], scope.get("root_path", ""))
        cached = self._document_cache.get(key)
        if cached is None:
            held = _HeldResponse()
            await self.app(scope, receive, held.send)
            if held.status == 200:
                self._document_cache[key] = (held.start["headers"], held.body)
            await held.replay(send)
            return
        headers, body = cached
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _HeldResponse:
    """Collects a response instead of sending it, to send it later."""

    def __init__(self):
        self.start: dict | None = None
        self.chunks: list[bytes] = []

    @property
    def status(self) -> int:
        return self.start["status"] if self.start else 0

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    async def replay(self, send: Send) -> None:
        if self.start is None:
            return
        await send(self.start)
        await send({"type": "http.response.body", "body": self.body})


def _query_flag(scope: Scope, name: str) -> bool:
    """A boolean query parameter as Connexion reads it (the last value; ``true`` in any case)."""
    values = [value for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                 keep_blank_values=True) if key == name]
    return bool(values) and values[-1].lower() == "true"


async def _acquire(lock: threading.Lock) -> None:
    delay = 0.001
    while not lock.acquire(blocking=False):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.025)


def _printable(path: str) -> str:
    return _CONTROL.sub("?", path)


def _cross_origin(scope: Scope) -> bool:
    """The request comes from a web page of another origin than the mock's own (its Origin
    header names another host, or is ``null``)."""
    origin = host = None
    for name, value in scope.get("headers") or ():
        if name == b"origin":
            origin = value.decode("latin-1").strip()
        elif name == b"host":
            host = value.decode("latin-1").strip().lower()
    if origin is None:
        return False
    netloc = urlsplit(origin).netloc.lower() if "://" in origin else ""
    return not netloc or netloc != host
