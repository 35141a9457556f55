"""Routing: where m3ter's published spec has a literal segment beside a parameter
(``/bills/preview`` beside ``/bills/{id}``), the literal wins, in the mock's 405/404
middleware, in Connexion's router (which picks the operation that security and validation
apply) and in Flask's (which picks the handler), and the three agree on every operation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import connexion
import pytest
from connexion.middleware.abstract import ROUTING_CONTEXT
from connexion.resolver import Resolver
from starlette.testclient import TestClient

from mockserver.api.middleware import (RouteTable, compile_routes, match_route, order_by_specificity,
                                       ordered_paths)
from mockserver.app import load_spec

ORG = "/organizations/{orgId}"
# m3ter's published spec, outside the repository: the tests that walk all of it skip without it.
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "m3ter-openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")

# Templates from m3ter's published spec where a literal segment sits beside a parameter,
# each with its methods, the parameter's template listed first as the published spec often
# does (so a router that takes the first match gets them wrong).
CONFLICTS = {
    ORG + "/bills/{id}": ["get", "delete"],
    ORG + "/bills/preview": ["post"],
    ORG + "/bills/approve": ["post"],
    ORG + "/bills/search": ["get"],
    ORG + "/bills/{billId}/lineitems": ["get"],
    ORG + "/bills/latest/{accountId}": ["get"],
    ORG + "/bills/accountid/{accountId}": ["get"],
    ORG + "/bills/{id}/status": ["put"],
    ORG + "/bills/{id}/statement/json": ["get"],
    ORG + "/bills/billingperiod/{lastDateInBillingPeriod}/{billingFrequency}": ["get"],
    ORG + "/billjobs/{id}": ["get"],
    ORG + "/billjobs/recalculate": ["post"],
    ORG + "/statementjobs/{id}": ["get"],
    ORG + "/statementjobs/batch": ["post"],
    ORG + "/integrationconfigs/{id}": ["get", "put", "delete"],
    ORG + "/integrationconfigs/available": ["get"],
    ORG + "/integrationconfigs/entity/{entityType}": ["get"],
    ORG + "/integrationconfigs/{id}/enable": ["post"],
    ORG + "/users/{id}": ["get", "put"],
    ORG + "/users/me": ["get"],
    ORG + "/integrationruns/{entityType}/{entityId}": ["get"],
    ORG + "/integrationruns/{entityType}/latest": ["get"],
    ORG + "/integrationruns/logs/{id}": ["get"],
    ORG + "/balances/{balanceId}/balancechargeschedules/{id}": ["get", "put", "delete"],
    ORG + "/balances/{balanceId}/balancechargeschedules/preview": ["post"],
}
CONFLICT_PATHS = {template: {m: {} for m in methods} for template, methods in CONFLICTS.items()}

# (method, concrete path) -> the template that serves it, or the methods of a 405.
EXPECTED = [
    ("POST", "/organizations/o/bills/preview", ORG + "/bills/preview"),
    ("POST", "/organizations/o/bills/approve", ORG + "/bills/approve"),
    ("GET", "/organizations/o/bills/search", ORG + "/bills/search"),
    ("GET", "/organizations/o/bills/b-1", ORG + "/bills/{id}"),
    ("DELETE", "/organizations/o/bills/b-1/", ORG + "/bills/{id}"),
    ("POST", "/organizations/o/statementjobs/batch", ORG + "/statementjobs/batch"),
    ("POST", "/organizations/o/billjobs/recalculate", ORG + "/billjobs/recalculate"),
    ("GET", "/organizations/o/integrationconfigs/available", ORG + "/integrationconfigs/available"),
    ("GET", "/organizations/o/integrationconfigs/i-1", ORG + "/integrationconfigs/{id}"),
    ("GET", "/organizations/o/users/me", ORG + "/users/me"),
    ("POST", "/organizations/o/balances/b/balancechargeschedules/preview",
     ORG + "/balances/{balanceId}/balancechargeschedules/preview"),
    # Neither template is more specific in every segment: the leftmost literal decides.
    ("GET", "/organizations/o/bills/latest/lineitems", ORG + "/bills/latest/{accountId}"),
    ("GET", "/organizations/o/bills/accountid/lineitems", ORG + "/bills/accountid/{accountId}"),
    ("GET", "/organizations/o/bills/billingperiod/statement/json",
     ORG + "/bills/billingperiod/{lastDateInBillingPeriod}/{billingFrequency}"),
    ("GET", "/organizations/o/integrationruns/logs/latest", ORG + "/integrationruns/logs/{id}"),
    ("GET", "/organizations/o/integrationruns/Bill/latest", ORG + "/integrationruns/{entityType}/latest"),
]
# A literal path is that resource only: a method it lacks is a 405 with its own methods,
# even where a parameter's template has the method.
EXPECTED_405 = [
    ("GET", "/organizations/o/bills/preview", {"POST"}),
    ("DELETE", "/organizations/o/bills/search", {"GET"}),
    ("PUT", "/organizations/o/integrationconfigs/available", {"GET"}),
    ("DELETE", "/organizations/o/users/me", {"GET"}),
    ("GET", "/organizations/o/statementjobs/batch", {"POST"}),
    ("PUT", "/organizations/o/bills/accountid/status", {"GET"}),
    ("POST", "/organizations/o/integrationconfigs/entity/enable", {"GET"}),
    ("PATCH", "/organizations/o/bills/b-1", {"GET", "DELETE"}),
]


def concrete(template: str) -> str:
    """The template with every parameter filled with a value no literal segment has."""
    return re.sub(r"\{([^}]+)\}", lambda m: f"{m.group(1)}-7", template)


def operations(paths: dict) -> list[tuple[str, str]]:
    return [(method, template) for template, item in paths.items() for method in item if method in METHODS]


@pytest.fixture(scope="module")
def shipped():
    """The spec the mock serves."""
    return load_spec()


# -- the order ------------------------------------------------------------------------------

def test_the_literal_template_comes_before_the_parameter():
    ordered = order_by_specificity(CONFLICTS)
    for literal, parameter in [("/bills/preview", "/bills/{id}"), ("/statementjobs/batch", "/statementjobs/{id}"),
                               ("/integrationconfigs/available", "/integrationconfigs/{id}"),
                               ("/users/me", "/users/{id}"),
                               ("/integrationruns/{entityType}/latest", "/integrationruns/{entityType}/{entityId}"),
                               ("/bills/latest/{accountId}", "/bills/{billId}/lineitems")]:
        assert ordered.index(ORG + literal) < ordered.index(ORG + parameter), literal


def test_templates_that_cannot_meet_keep_the_order_they_were_given():
    given = ["/z/{id}", "/a/{id}", "/z/{id}/x", "/a", "/z/me", "/b/{id}"]
    # /z/me moves up to just before /z/{id}; nothing else moves.
    assert order_by_specificity(given) == ["/z/me", "/z/{id}", "/a/{id}", "/z/{id}/x", "/a", "/b/{id}"]
    assert list(ordered_paths({t: {} for t in given})) == order_by_specificity(given)


# -- the middleware's routes ----------------------------------------------------------------

@pytest.mark.parametrize("method, path, template", EXPECTED)
def test_a_path_resolves_to_its_most_specific_template(method, path, template):
    route = match_route(compile_routes(CONFLICT_PATHS), path)
    assert route.template == template and method in route.methods


@pytest.mark.parametrize("method, path, allowed", EXPECTED_405)
def test_a_method_the_most_specific_template_lacks_is_refused_with_its_methods(method, path, allowed):
    route = match_route(compile_routes(CONFLICT_PATHS), path)
    assert method not in route.methods and route.methods == allowed


def test_the_admin_prefix_is_part_of_the_template():
    routes = compile_routes({"/events": {"post": {}}, "/{thing}": {"get": {}}}, "/_mock")
    assert match_route(routes, "/_mock/events").template == "/_mock/events"
    assert match_route(routes, "/_mock/clock").template == "/_mock/{thing}"
    assert match_route(routes, "/events") is None


ODD_PATHS = ["/", "", "/organizations", "/organizations/o", "/organizations/o/bills/", "/organizations/o/bills//",
             "/organizations//bills/preview", "/organizations/o/bills/preview/", "/organizations/o/bills/preview//",
             "/organizations/o/nothing/here", "/organizations/o/bills/b/lineitems/l/extra/segments/x"]


def test_the_middlewares_table_finds_what_the_ordered_list_finds():
    routes = compile_routes(CONFLICT_PATHS) + compile_routes({"/clock": {"get": {}}, "/{x}/y": {"get": {}}}, "/_mock")
    table = RouteTable(routes)
    paths = [path for _, path, _ in EXPECTED] + [path for _, path, _ in EXPECTED_405] + ODD_PATHS
    paths += [concrete(template) for template in CONFLICTS] + ["/_mock/clock", "/_mock/z/y", "/_mock/clock/y"]
    assert [table.match(p) for p in paths] == [match_route(routes, p) for p in paths]
    assert table.match("/organizations/o/bills/preview/").template == ORG + "/bills/preview"
    assert table.match("/_mock/clock/y").template == "/_mock/{x}/y"
    assert table.match("/organizations//bills/preview") is None


def _every_operation_resolves_to_itself(paths: dict) -> list[str]:
    routes = compile_routes(paths)
    table = RouteTable(routes)
    wrong = []
    for method, template in operations(paths):
        path = concrete(template)
        route = match_route(routes, path)
        if route is None or route.template != template or method.upper() not in route.methods:
            wrong.append(f"{method.upper()} {template} -> {route.template if route else None}")
        if table.match(path) is not route:
            wrong.append(f"{method.upper()} {template}: the table disagrees with the list")
    return wrong


def test_every_operation_of_the_shipped_spec_resolves_to_its_own_template(shipped):
    assert _every_operation_resolves_to_itself(shipped["paths"]) == []


@pytest.mark.skipif(not REFERENCE.exists(), reason="m3ter's published spec is not beside the repository")
def test_every_operation_of_the_published_spec_resolves_to_its_own_template():
    paths = json.loads(REFERENCE.read_text(encoding="utf-8"))["paths"]
    assert len(operations(paths)) == 323
    assert _every_operation_resolves_to_itself(paths) == []


# -- Connexion's router and Flask's agree ---------------------------------------------------

def _bare_spec(paths: dict) -> tuple[dict, dict]:
    """A spec with the given templates and methods only, each operation named after its
    method and template; and the name -> (method, template) table."""
    names, spec_paths = {}, {}
    for method, template in operations(paths):
        name = f"op{len(names)}"
        names[name] = (method.upper(), template)
        parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                      for p in re.findall(r"\{([^}]+)\}", template)]
        spec_paths.setdefault(template, {})[method] = {
            "operationId": name, "parameters": parameters, "responses": {"200": {"description": "ok"}}}
    return {"openapi": "3.0.3", "info": {"title": "routes", "version": "1"}, "paths": spec_paths}, names


def _answering_app(paths: dict) -> tuple[connexion.FlaskApp, dict]:
    """A Connexion FlaskApp, its paths ordered as the mock orders them, whose every handler
    says which operation Flask called and which one Connexion routed to."""
    spec, names = _bare_spec(paths)

    def handler_for(name):
        def handler(**_):
            from connexion import context
            return {"flask": name, "connexion": context.operation.operation_id}
        return handler

    app = connexion.FlaskApp(__name__)
    app.add_api({**spec, "paths": ordered_paths(spec["paths"])},
                resolver=Resolver(function_resolver=handler_for), swagger_ui_options=None)
    return app, names


def _disagreements(client: TestClient, names: dict) -> list[str]:
    wrong = []
    for name, (method, template) in names.items():
        response = client.request(method, concrete(template))
        answer = response.json() if response.status_code == 200 else {}
        if answer != {"flask": name, "connexion": name}:
            wrong.append(f"{method} {template}: {response.status_code} {answer}")
    return wrong


def test_connexion_and_flask_route_the_conflicts_to_the_same_operation():
    app, names = _answering_app(CONFLICT_PATHS)
    by_route = {route: name for name, route in names.items()}
    with TestClient(app) as client:
        assert _disagreements(client, names) == []
        for method, path, template in EXPECTED:
            answer = client.request(method, path).json()
            assert answer == {"flask": by_route[(method, template)], "connexion": by_route[(method, template)]}, path


@pytest.mark.skipif(not REFERENCE.exists(), reason="m3ter's published spec is not beside the repository")
def test_connexion_and_flask_route_every_published_operation_to_itself():
    app, names = _answering_app(json.loads(REFERENCE.read_text(encoding="utf-8"))["paths"])
    assert len(names) == 323
    # One client for every request (entered once, so its event-loop thread is started once).
    with TestClient(app) as client:
        assert _disagreements(client, names) == []


# -- the mock itself ------------------------------------------------------------------------

class RoutingRecorder:
    """Wraps the mock's ASGI app and notes the operation Connexion routed each request to
    (Connexion records it in the request's shared ``extensions``)."""

    def __init__(self, app):
        self.app = app
        self.operation_id = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope.setdefault("extensions", {})
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.operation_id = scope["extensions"].get(ROUTING_CONTEXT, {}).get("operation_id")


@pytest.fixture
def recorded(app):
    recorder = RoutingRecorder(app)
    with TestClient(recorder) as client:
        yield recorder, client


def test_the_mock_routes_every_operation_of_its_spec_to_that_operation(shipped, recorded):
    recorder, client = recorded
    wrong = []
    for method, template in operations(shipped["paths"]):
        operation_id = shipped["paths"][template][method]["operationId"]
        recorder.operation_id = None
        # No credentials: routing comes before security, so the 401 still names the operation.
        response = client.request(method.upper(), concrete(template))
        if recorder.operation_id != operation_id:
            wrong.append(f"{method.upper()} {template}: {response.status_code} routed to {recorder.operation_id}")
    assert wrong == []


@pytest.mark.parametrize("method, path, allowed", EXPECTED_405)
def test_the_mock_answers_405_with_the_literal_paths_methods(client, method, path, allowed):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == ", ".join(sorted(allowed | {"OPTIONS"}))
    options = client.options(path)
    assert options.status_code == 204 and options.headers["Allow"] == response.headers["Allow"]


@pytest.mark.parametrize("method, path, template", EXPECTED)
def test_the_mock_routes_a_literal_path_to_its_own_operation(shipped, recorded, method, path, template):
    recorder, client = recorded
    response = client.request(method, path)
    assert response.status_code != 405 and "No such endpoint" not in response.text
    assert recorder.operation_id == shipped["paths"][template][method.lower()]["operationId"]
