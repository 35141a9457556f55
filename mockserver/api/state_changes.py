"""Tells the state file (``backend.state``) about every request that may have changed the
store, once it has been answered, and saves it at shutdown. Only used when the mock has a
state file."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Receive, Scope, Send

# Methods that never change the store: the mock's GETs only read.
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class StateChanges:
    def __init__(self, app: ASGIApp, state):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READS:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.changed()


def saved_at_shutdown(state):
    """The app's lifespan: at shutdown (uvicorn's, on SIGTERM or Ctrl-C, before the process
    ends), the last save of the state file."""

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await asyncio.to_thread(state.close)

    return lifespan
