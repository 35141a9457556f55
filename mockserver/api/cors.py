"""CORS for browser clients of the m3ter API (``serve --cors ORIGIN``), off unless asked for.

It sits outside every other layer, so every answer to an allowed origin carries
``Access-Control-Allow-Origin``: the 401, 404, 405 and 413 answered early too, so a browser
client can read why it was refused. A preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is answered by the mock's ordinary ``OPTIONS`` answer
(``MockMiddleware``: 204 with the path's ``Allow`` taken from the spec); this layer adds the
methods and headers a browser needs to it, so a preflight is logged like any request.

Never under ``/_mock``: the admin API can reset every organization and move the clock, and
it is for the tests and tools that drive the mock, never for a web page, so no page may read
its answers or send it a preflighted call. An origin that is not allowed gets the answers it
would get without CORS, which a browser then refuses to hand over."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from mockserver.domain.cors import CorsPolicy

# Response headers a browser client may need to read besides the CORS-safelisted ones: when
# to retry, why a token was refused, what a path allows.
EXPOSED = b"Retry-After, WWW-Authenticate, Allow"
# Seconds a browser may reuse a preflight answer.
MAX_AGE = b"600"


class CorsMiddleware:
    def __init__(self, app: ASGIApp, policy: CorsPolicy, excluded_prefix: str):
        self.app = app
        self.policy = policy
        self.excluded_prefix = excluded_prefix

    def _excluded(self, path: str) -> bool:
        prefix = self.excluded_prefix
        return path == prefix or path.startswith(prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._excluded(scope["path"]):
            await self.app(scope, receive, send)
            return
        origin = requested_method = requested_headers = None
        for name, value in scope.get("headers") or ():
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                requested_method = value
            elif name == b"access-control-request-headers":
                requested_headers = value.decode("latin-1")
        allowed = self.policy.allow_origin(origin) if origin is not None else None
        preflight = scope["method"] == "OPTIONS" and requested_method is not None
        policy = self.policy

        async def send_with_cors(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"vary"]
                vary = [v for k, v in message.get("headers", ()) if k.lower() == b"vary"]
                if not policy.any_origin:
                    # The answer depends on Origin: caches must not hand one origin's to another.
                    vary.append(b"Origin")
                if vary:
                    headers.append((b"vary", b", ".join(vary)))
                if allowed is not None:
                    headers.append((b"access-control-allow-origin", allowed.encode("latin-1")))
                    allow = next((v for k, v in headers if k.lower() == b"allow"), None)
                    if preflight and message["status"] == 204 and allow is not None:
                        headers += [(b"access-control-allow-methods", allow),
                                    (b"access-control-allow-headers",
                                     policy.allow_headers(requested_headers).encode("latin-1")),
                                    (b"access-control-max-age", MAX_AGE)]
                    else:
                        headers.append((b"access-control-expose-headers", EXPOSED))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)
