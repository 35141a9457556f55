"""The outermost layer: things that must happen before Connexion routes a request.

* Hands the backend to the security hooks (they run before any Flask context exists).
* Rejects control characters in the path: Starlette cannot route such a path, which would
  otherwise fall through past security and validation into Flask and crash there.
* Answers a method the path does not have with 405 and an ``Allow`` header built from the
  spec (Connexion lists only the first route's methods), and answers OPTIONS.
* Answers an unknown path with the JSON 404 body instead of Flask's HTML page.
* Logs one line per request: method, path, status, milliseconds. Never a header or body,
  so no credential or secret reaches the log.
"""

from __future__ import annotations

import json
import logging
import re
import time
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from .context import BACKEND_SCOPE_KEY

access_log = logging.getLogger("m3ter_mock.access")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def compile_routes(spec_paths: dict, prefix: str = "") -> list[tuple[re.Pattern, set[str]]]:
    routes = []
    for template, item in spec_paths.items():
        template = prefix + template
        methods = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")}
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$"
        routes.append((re.compile(regex), methods))
    return routes


class MockMiddleware:
    def __init__(self, app: ASGIApp, backend, routes, passthrough_prefixes=(), quiet=False):
        self.app = app
        self.backend = backend
        self.routes = routes
        self.passthrough_prefixes = tuple(passthrough_prefixes)
        self.quiet = quiet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[BACKEND_SCOPE_KEY] = self.backend
        started = time.perf_counter()
        status_seen = {"status": 0}

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
            await send(message)

        try:
            early = self._early_answer(scope)
            if early is not None:
                await self._respond(send_logged, *early)
            else:
                await self.app(scope, receive, send_logged)
        finally:
            if not self.quiet:
                access_log.info("%s %s %s %.1fms", scope["method"], _printable(scope["path"]),
                                status_seen["status"], (time.perf_counter() - started) * 1000)

    def _early_answer(self, scope: Scope):
        path = scope["path"]
        raw = scope.get("raw_path") or path.encode("latin-1", "replace")
        if _CONTROL.search(path) or _CONTROL.search(unquote(raw.decode("latin-1"))):
            return 400, {"message": "path: control characters are not allowed"}, {}
        if path.startswith(self.passthrough_prefixes):
            return None
        for regex, methods in self.routes:
            if regex.match(path):
                allow = ", ".join(sorted(methods | {"OPTIONS"}))
                if scope["method"] == "OPTIONS":
                    return 204, None, {"Allow": allow}
                if scope["method"] not in methods:
                    return 405, {"message": f"{scope['method']} is not allowed on {path}; allowed: {allow}"}, {"Allow": allow}
                return None
        return 404, {"message": f"No such endpoint: {path}"}, {}

    @staticmethod
    async def _respond(send, status, body, headers):
        payload = b"" if body is None else json.dumps(body).encode()
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if body is not None:
            raw_headers += [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})


def _printable(path: str) -> str:
    return _CONTROL.sub("?", path)
