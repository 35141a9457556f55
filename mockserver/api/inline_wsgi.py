"""The Flask app called on the event loop's own thread, in place of Connexion's ASGI→WSGI bridge.

The bridge Connexion ships (a2wsgi) runs each request in a thread pool and hands every
message back to the loop through a queue: three thread hand-offs per request, which cost
more CPU than the mock's handlers themselves (the profile in benchmarks/README.md). Here the
body is read first (RequestLimits bounds it), the WSGI app runs to completion on the loop,
and its answer is sent in one piece.

Running inline is sound because no handler waits on the event loop: every handler is short
work under the store's lock (handlers ran one at a time under it before too), slow outbound
work runs on the workers' threads, and injected delays are awaited by the ASGI middleware
before the app is reached. A handler that blocks would hold up every connection, so none
may wait on the network or on a request to this mock.
"""

from __future__ import annotations

import io
from typing import Callable, Iterable

from a2wsgi.wsgi import build_environ
from starlette.types import Receive, Scope, Send

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class InlineWSGI:
    def __init__(self, app: WSGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # a WSGI app has nothing to start or stop
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        environ = build_environ(scope, io.BytesIO(b"".join(chunks)))
        started: list = []
        written: list[bytes] = []

        def start_response(status: str, headers: list, exc_info=None):
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        result = self.app(environ, start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        await send({"type": "http.response.start", "status": int(status[:3]),
                    "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                                for name, value in headers]})
        await send({"type": "http.response.body", "body": b"".join(written)})
