"""The request path's shortcuts (issue 13) answer as the plain path did:

* the indexed router (mockserver/api/routing.py) picks the route Starlette's own loop picks,
  for every path of the m3ter and admin specs, with every method, and for the near misses
  (a trailing slash, a segment too many or too few, an unknown literal);
* the documents' middleware still serves the documents and the UI;
* the Flask app called inline (mockserver/api/inline_wsgi.py) answers a lifespan scope;
* a request is in the journal by the time its client has the answer."""

from __future__ import annotations

import re

from starlette.routing import Match, Mount, Router

from mockserver.api.routing import IndexedRoutingMiddleware, RouteIndex

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def _routers(app) -> list[tuple[str, Router]]:
    app.test_client().get("/_mock/health")  # Connexion builds its middleware stack on first use
    routing = next(layer for layer in app.middleware.middleware_stack if isinstance(layer, IndexedRoutingMiddleware))
    return [(mount.path, mount.app) for mount in routing.router.routes if isinstance(mount, Mount)]


def _plain_choice(routes, scope):
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route, "full"
        if match is Match.PARTIAL and partial is None:
            partial = route
    return (partial, "partial") if partial is not None else (None, "none")


def _paths(template: str) -> list[str]:
    concrete = re.sub(r"\{[^}]+\}", "abc-123", template)
    return [concrete, concrete + "/", concrete.rstrip("/") + "/extra", concrete.rsplit("/", 1)[0],
            concrete.replace("/organizations/", "/organisations/"), re.sub(r"\{[^}]+\}", "", template)]


def test_the_index_picks_what_starlettes_loop_picks_for_every_path(app):
    checked = 0
    for base, router in _routers(app):
        index = RouteIndex(router.routes)
        for route in router.routes:
            for path in _paths(route.path):
                for method in METHODS:
                    scope = {"type": "http", "path": base + path, "root_path": base, "method": method}
                    assert _plain_choice(index.candidates(path), scope) == _plain_choice(router.routes, scope), \
                        (method, base + path)
                    checked += 1
    assert checked > 5000  # both APIs, every route, its near misses, every method


def test_a_request_is_answered_through_the_index(app, client, auth):
    # A literal segment wins over a parameter at the same place, as in the plain router.
    answer = client.get("/organizations/org-1/products", headers=auth)
    assert answer.status_code == 200 and answer.json() == {"data": []}
    assert client.get("/organizations/org-1/products/nope", headers=auth).status_code == 404
    routers = dict(_routers(app))
    assert all(getattr(router, "_indexed", False) for router in routers.values())


def test_a_parameter_may_not_span_segments_unless_declared():
    from starlette.routing import Route

    async def endpoint(request):  # never called
        raise AssertionError

    routes = [Route("/a/{x}/c", endpoint), Route("/files/{rest:path}", endpoint)]
    index = RouteIndex(routes)
    assert routes[0] in index.candidates("/a/b/c")
    # ``{rest:path}`` may match any number of segments: it is always a candidate.
    assert routes[1] in index.candidates("/files/a/b/c/d")
    assert routes[0] not in index.candidates("/a/b/d")


def test_the_documents_and_the_ui_are_still_served(client):
    assert client.get("/openapi.json").json()["info"]["title"]
    assert client.get("/_mock/openapi.json").json()["paths"]
    assert client.get("/ui/").headers["content-type"].startswith("text/html")
    assert client.get("/ui", follow_redirects=False).status_code == 307  # on to /ui/, as before


def test_the_inline_flask_app_starts_and_stops_with_the_server():
    import asyncio

    from mockserver.api.inline_wsgi import InlineWSGI

    def never_called(environ, start_response):
        raise AssertionError

    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    asyncio.run(InlineWSGI(never_called)({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_a_request_is_in_the_journal_before_the_last_of_its_answer_goes_out(app):
    """Whatever the layers inside send (here, as a thread-pool bridge does: the whole body,
    then an empty last message), the entry is recorded before the last message is passed on,
    so a client holding its answer always finds its request in the journal."""
    import asyncio

    from mockserver.api.middleware import MockMiddleware, compile_routes

    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    layer = MockMiddleware(inner, app.backend, compile_routes(app.backend.spec["paths"]), quiet=True)
    seen = []

    async def send(message):
        seen.append((message["type"], message.get("more_body"), app.backend.journal.count(_org_filter("o-1"))))

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/organizations/o-1/products", "raw_path": b"",
             "query_string": b"", "headers": [], "server": ("testserver", 80), "client": ("127.0.0.1", 1)}
    asyncio.run(layer(scope, receive, send))
    assert seen[-1] == ("http.response.body", False, 1)
    assert app.backend.journal.count(_org_filter("o-1")) == 1  # recorded once, not again at the end


def _org_filter(org_id):
    from mockserver.domain.journal import JournalFilter

    return JournalFilter(org_id=org_id)
