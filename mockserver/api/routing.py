"""Connexion's routing, without trying every route in turn.

Connexion routes each request with a Starlette ``Router``: a list of one regular expression
per path, tried in order until one matches. With the whole m3ter API that is up to ~200
regular expressions per request, a measured sixth of a GET's cost. ``IndexedRoutingMiddleware``
gives each API's router an index of its routes by their literal path segments: a request's
segments pick the few routes that could match, and only those are tried, in the router's
own order. Whatever those routes do not match (a redirect for a trailing slash, an unknown
path, a lifespan or websocket scope) goes through Starlette's own loop, so the answer is the
one the plain router would give.
"""

from __future__ import annotations

from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette._utils import get_route_path
from starlette.routing import Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send

_MAX_CACHED_SHAPES = 4096


class SegmentIndex:
    """Which of a list of path templates could match a path, from their literal segments.

    A template (as a list of segments; a segment holding ``{`` is a parameter) can match a
    path only if it has as many segments and each of its literal segments equals the path's
    segment at that place. The answer for a path depends only on its segment count and on
    which of its segments are literals some template has at that place, so it is computed
    once per such shape and kept (the shapes are few: ids are never part of the key)."""

    def __init__(self, templates: list[list[str]]):
        # segment count -> (template numbers, {position: {literal: template numbers}})
        self._by_count: dict[int, tuple[set[int], dict[int, dict[str, set[int]]]]] = {}
        for number, segments in enumerate(templates):
            members, literals = self._by_count.setdefault(len(segments), (set(), {}))
            members.add(number)
            for position, segment in enumerate(segments):
                if "{" not in segment:
                    literals.setdefault(position, {}).setdefault(segment, set()).add(number)
        self._shapes: dict[tuple, list[int]] = {}

    def candidates(self, segments: list[str]) -> list[int]:
        """The numbers of the templates that could match, in ascending order."""
        entry = self._by_count.get(len(segments))
        if entry is None:
            return []
        members, literals = entry
        key = (len(segments), *(segment if segment in literals.get(position, ()) else None
                                for position, segment in enumerate(segments)))
        found = self._shapes.get(key)
        if found is None:
            chosen = set(members)
            for position, by_literal in literals.items():
                # A template with a literal here matches only a path with that literal here.
                chosen -= set().union(*by_literal.values()) - by_literal.get(segments[position], set())
            found = sorted(chosen)
            if len(self._shapes) >= _MAX_CACHED_SHAPES:
                self._shapes.clear()
            self._shapes[key] = found
        return found


class RouteIndex:
    """The routes of one Starlette router that could match a path, in the router's order."""

    def __init__(self, routes: list):
        self.routes = list(routes)
        # A Mount, or a parameter that may span segments (``{name:path}``): always tried.
        self._always = [number for number, route in enumerate(self.routes)
                        if not isinstance(route, Route) or ":path}" in route.path]
        always = set(self._always)
        self._indexed = [number for number in range(len(self.routes)) if number not in always]
        self._segments = SegmentIndex([self.routes[number].path.split("/") for number in self._indexed])

    def candidates(self, path: str) -> list:
        numbers = [self._indexed[k] for k in self._segments.candidates(path.split("/"))]
        if self._always:
            numbers = sorted(numbers + self._always)
        return [self.routes[number] for number in numbers]


def index_router(router: Router) -> None:
    """Makes ``router`` try only the routes its index picks for each HTTP request."""
    plain = router.middleware_stack
    state: dict = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await plain(scope, receive, send)
            return
        index = state.get("index")
        if index is None or len(index.routes) != len(router.routes):
            index = state["index"] = RouteIndex(router.routes)
        partial = partial_scope = None
        for route in index.candidates(get_route_path(scope)):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.setdefault("router", router)
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope.setdefault("router", router)
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await plain(scope, receive, send)  # no route: Starlette's redirect or default

    router.middleware_stack = app


class IndexedRoutingMiddleware(RoutingMiddleware):
    """Connexion's routing middleware with an indexed router per API."""

    def add_api(self, *args, **kwargs) -> None:
        super().add_api(*args, **kwargs)
        for route in self.router.routes:
            if isinstance(route, Mount) and isinstance(route.app, Router) and not getattr(route.app, "_indexed", False):
                index_router(route.app)
                route.app._indexed = True


class DocumentsOnlySwaggerUI(SwaggerUIMiddleware):
    """Connexion's middleware for the spec documents and the Swagger UI, entered only by the
    requests that could be for them. It routes every request through a router of its own (a
    Mount per API) only to hand almost all of them on; the documents are a handful of paths."""

    _prefixes: tuple[str, ...] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self._document_prefixes()):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _document_prefixes(self) -> tuple[str, ...]:
        if self._prefixes is None:
            # Each document route up to its first parameter, without a trailing slash (the
            # router redirects "/ui" to "/ui/"): a prefix of every path the router serves.
            self._prefixes = tuple(
                (mount.path + route.path.split("{", 1)[0]).rstrip("/") or "/"
                for mount in self.router.routes if isinstance(mount, Mount)
                for route in getattr(mount.app, "routes", ()))
        return self._prefixes
