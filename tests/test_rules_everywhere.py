"""Each rule on every path it applies to: ``code`` uniqueness on create and on update for
every resource that has codes; a ``nextToken`` bound to its organization, list and filters
on every list (each filter of each list, and the admin list of deliveries); organization
binding against look-alike ids on every route shape, in-process and over HTTP."""

from __future__ import annotations

import http.client

import pytest
import yaml

from mockserver.app import create_app
from mockserver.domain.auth import Client
from tests.conftest import bearer_for, make_settings
from tests.support.server import serve_in_thread
from tests.support.state import unchanged

ORG = "org-everywhere"
OTHER = "org-everywhere-2"
BASE = f"/organizations/{ORG}"
ROLE = "arn:aws:iam::123456789012:role/m3ter-export"


def created(response):
    assert response.status_code == 200, response.text
    return response.json()


# -- code uniqueness: create and update, every resource with codes ------------------------

def aggregation(code):
    return {"name": "Storage", "code": code, "rounding": "UP", "quantityPerUnit": 1, "unit": "GB",
            "calculation": "a"}


def destination(code):
    return {"name": "d", "code": code, "bucketName": "acme-exports", "iamRoleArn": ROLE}


def schedule(code):
    return {"name": "s", "code": code, "sourceType": "USAGE", "timePeriod": "TODAY"}


def notification(code):
    return {"name": "n", "code": code, "description": "d", "eventName": "configuration.commitment.updated"}


def webhook(code):
    return {"name": "h", "code": code, "description": "d", "url": "http://127.0.0.1:9/hook",
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "s"}}


CODED = {
    "compoundaggregations": aggregation,
    "dataexports/destinations": destination,
    "dataexports/schedules": schedule,
    "notifications/configurations": notification,
    "integrationdestinations/webhooks": webhook,
}


@pytest.mark.parametrize("path", list(CODED))
def test_a_code_is_unique_on_create_and_on_update(app, client, auth, path):
    body = CODED[path]
    url = f"{BASE}/{path}"
    alpha = created(client.post(url, json=body("alpha"), headers=auth))
    beta = created(client.post(url, json=body("beta"), headers=auth))

    def refused(response):
        assert response.status_code == 409, response.text
        assert "'alpha'" in response.json()["message"] and alpha["id"] in response.json()["message"]

    unchanged(app, lambda: refused(client.post(url, json=body("alpha"), headers=auth)))
    # an update may not take another entity's code ...
    unchanged(app, lambda: refused(client.put(f"{url}/{beta['id']}", json={**body("alpha"), "version": beta["version"]},
                                              headers=auth)))
    # ... and may keep its own
    beta = created(client.put(f"{url}/{beta['id']}", json={**body("beta"), "version": beta["version"]}, headers=auth))
    assert beta["code"] == "beta" and beta["version"] == 2
    # a code given up by an update or a delete is free again; the new one is taken
    alpha = created(client.put(f"{url}/{alpha['id']}", json={**body("gamma"), "version": alpha["version"]},
                               headers=auth))
    assert client.post(url, json=body("gamma"), headers=auth).status_code == 409
    beta = created(client.put(f"{url}/{beta['id']}", json={**body("alpha"), "version": beta["version"]}, headers=auth))
    assert created(client.post(url, json=body("beta"), headers=auth))["code"] == "beta"
    assert client.delete(f"{url}/{alpha['id']}", headers=auth).status_code == 200
    assert created(client.post(url, json=body("gamma"), headers=auth))["code"] == "gamma"
    # per organization
    assert client.post(f"/organizations/{OTHER}/{path}", json=body("alpha"), headers=auth).status_code == 200


def test_switching_a_webhook_off_keeps_its_code_taken(client, auth):
    url = f"{BASE}/integrationdestinations/webhooks"
    hook = created(client.post(url, json=webhook("alpha"), headers=auth))
    assert created(client.put(f"{url}/{hook['id']}/active?active=false", headers=auth))["code"] == "alpha"
    assert client.post(url, json=webhook("alpha"), headers=auth).status_code == 409


# -- nextToken: bound to organization, list and filters, on every list ---------------------

def admin_event(client, org, name, new):
    return created(client.post("/_mock/events", json={"orgId": org, "eventName": name, "newDto": new}))


def fill(app, client, auth, org):
    """Three or more items in every list of ``org``, with filter values to page through."""
    base = f"/organizations/{org}"
    made = {}
    made["compoundaggregations"] = [created(client.post(f"{base}/compoundaggregations", headers=auth,
                                                        json={**aggregation(f"c{n}"), "productId": "p" * 36}))
                                    for n in range(3)]
    for path, body in (("dataexports/destinations", destination), ("dataexports/schedules", schedule)):
        made[path] = [created(client.post(f"{base}/{path}", json=body(f"c{n}"), headers=auth)) for n in range(3)]
    made["notifications/configurations"] = [created(client.post(f"{base}/notifications/configurations", headers=auth,
                                                                json=notification(f"c{n}"))) for n in range(3)]
    made["integrationdestinations/webhooks"] = [created(client.post(
        f"{base}/integrationdestinations/webhooks", json=webhook(f"c{n}"), headers=auth)) for n in range(3)]
    made["integrationconfigs"] = [created(client.post(f"{base}/integrationconfigs", headers=auth, json={
        "entityType": "Account", "destination": "Slack", "destinationId": "slack-1" if n < 2 else "slack-2"}))
        for n in range(3)]
    made["dataexports/jobs"] = [created(client.post(f"{base}/dataexports/adhoc", headers=auth, json={
        "sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]})) for _ in range(3)]
    for n in range(3):
        admin_event(client, org, "configuration.commitment.updated", {"id": "r1", "accountId": "a1"})
        admin_event(client, org, "configuration.account.created", {"id": "r2", "accountId": "a2"})
    app.backend.run_due()
    return made


def ids_of(items, key="id"):
    return ",".join(item[key] for item in items)


def filter_sets(path, made, client, auth):
    """Sets of filters of a list, each matching at least two items (so it has a second page)."""
    if path == "compoundaggregations":
        items = made[path]
        return [{}, {"ids": ids_of(items)}, {"ids": ids_of(items[:2])}, {"codes": "c0,c1"}, {"codes": "c0,c2"},
                {"productId": "p" * 36}, {"codes": "c0,c1", "productId": "p" * 36}]
    if path == "dataexports/jobs":
        jobs = made[path]
        return [{}, {"ids": ids_of(jobs, "jobId")}, {"ids": ",".join(j["jobId"] for j in jobs[:2])},
                {"status": "SUCCEEDED"}, {"dateCreatedStart": "2020-01-01T00:00:00Z"},
                {"dateCreatedEnd": "2099-01-01T00:00:00Z"}, {"status": "SUCCEEDED", "dateCreatedEnd": "2099-01-01T00:00:00Z"}]
    if path == "events":
        events = client.get(f"{BASE}/events", params={"pageSize": 100}, headers=auth).json()["data"]
        return [{}, {"ids": ids_of(events)}, {"ids": ids_of(events[:2])},
                {"eventName": "configuration.commitment.updated"}, {"eventName": "configuration.account.created"},
                {"eventType": "configuration"}, {"includeActioned": "true"}, {"includeActioned": "false"},
                {"resourceId": "r1"}, {"accountId": "a1"}, {"resourceId": "r1", "accountId": "a1"}]
    if path == "notifications/configurations":
        items = made[path]
        return [{}, {"ids": ids_of(items)}, {"ids": ids_of(items[:2])}, {"active": "true"},
                {"eventName": "configuration.commitment.updated"},
                {"active": "true", "eventName": "configuration.commitment.updated"}]
    if path == "integrationconfigs":
        return [{}, {"destinationId": "slack-1"}]
    items = made[path]
    return [{}, {"ids": ids_of(items)}, {"ids": ids_of(items[:2])}]


LISTS = ["compoundaggregations", "dataexports/destinations", "dataexports/schedules", "dataexports/jobs", "events",
         "notifications/configurations", "integrationdestinations/webhooks", "integrationconfigs"]


def first_token(client, auth, url, filters):
    page = client.get(url, params={**filters, "pageSize": 1}, headers=auth)
    assert page.status_code == 200, page.text
    assert page.json().get("nextToken"), (url, filters)
    return page.json()["nextToken"]


def replay(client, auth, url, filters, token):
    return client.get(url, params={**filters, "pageSize": 1, "nextToken": token}, headers=auth)


def refused(response, where):
    assert response.status_code == 400, (where, response.text)
    assert response.json()["message"].startswith("nextToken: "), where


@pytest.fixture(scope="module")
def listed():
    """(client, auth, what was made): a mock of its own with every list filled in two
    organizations, and deliveries answered without a network (the delivery worker's
    harness seam); the tests only read it."""
    app = create_app(make_settings())
    app.backend.deliveries.local_answer = lambda url, headers, body: 200
    client = app.test_client()
    auth = bearer_for(client)
    made = fill(app, client, auth, ORG)
    fill(app, client, auth, OTHER)
    link_rule(client, auth)
    admin_event(client, ORG, "configuration.commitment.updated", {"id": "r1"})
    admin_event(client, ORG, "configuration.commitment.updated", {"id": "r1"})
    app.backend.run_due()
    yield client, auth, made
    app.backend.reset()


@pytest.mark.parametrize("path", LISTS)
def test_a_next_token_is_bound_to_the_filters_that_issued_it(listed, path):
    client, auth, made = listed
    url = f"{BASE}/{path}"
    sets = filter_sets(path, made, client, auth)
    tokens = [first_token(client, auth, url, filters) for filters in sets]
    for issued_with, token in zip(sets, tokens):
        assert replay(client, auth, url, issued_with, token).status_code == 200, issued_with
        for other in sets:
            if other != issued_with:
                refused(replay(client, auth, url, other, token), (issued_with, other))


@pytest.mark.parametrize("path", LISTS)
def test_a_next_token_is_bound_to_its_organization_and_list(listed, path):
    client, auth, _ = listed
    token = first_token(client, auth, f"{BASE}/{path}", {})
    assert replay(client, auth, f"{BASE}/{path}", {}, token).status_code == 200
    refused(replay(client, auth, f"/organizations/{OTHER}/{path}", {}, token), OTHER)
    for other in LISTS:
        if other != path:
            refused(replay(client, auth, f"{BASE}/{other}", {}, token), other)
    # the admin list of deliveries, both ways
    for query in ({"orgId": ORG}, {}):
        refused(client.get("/_mock/deliveries", params={**query, "nextToken": token}), query)
        deliveries_token = client.get("/_mock/deliveries", params={**query, "pageSize": 1}).json()["nextToken"]
        refused(replay(client, auth, f"{BASE}/{path}", {}, deliveries_token), ("deliveries", query))


def link_rule(client, auth):
    hook = created(client.post(f"{BASE}/integrationdestinations/webhooks", json=webhook("linked"), headers=auth))
    rule = created(client.post(f"{BASE}/notifications/configurations", headers=auth, json={
        **notification("linked"), "alwaysFireEvent": True}))
    created(client.post(f"{BASE}/integrationconfigs", headers=auth, json={
        "entityType": "Notification", "entityId": rule["id"], "destination": "Webhook", "destinationId": hook["id"]}))


# -- organization binding: look-alike ids, every route shape -------------------------------

BOUND_SECRET = "bound-client-secret-6d0a"
# Prefix, suffix, case, spacing and list-like look-alikes of "org-a" and "org-b", the
# organizations the client is bound to.
LOOK_ALIKES = ["org-a-x", "org-", "org", "xorg-a", "org-aa", "rg-a", "ORG-A", "Org-a", "org-A", "org-a ", " org-a",
               "org-a_", "org_a", "org-a,org-b", "org-b,org-a", "org-a;org-b", "оrg-a",  # a Cyrillic "о"
               "org-ab", "org-c", "0rg-a"]
# On every route shape (the organization is read from the path of each): one of each kind.
EVERY_SHAPE = ["org-a-x", "xorg-a", "ORG-A", "org-"]
@pytest.fixture(scope="module")
def bound_app():
    return create_app(make_settings(clients=[Client("bound", BOUND_SECRET, frozenset({"org-a", "org-b"}))]))


@pytest.fixture
def bound(bound_app):
    bound_app.backend.reset()
    client = bound_app.test_client()
    return client, bearer_for(client, "bound", BOUND_SECRET)


def route_shapes():
    """Every operation of the spec under /organizations/{orgId}, with its other path
    parameters filled in."""
    from mockserver.app import M3TER_SPEC

    with open(M3TER_SPEC, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    shapes = []
    for template, item in spec["paths"].items():
        if not template.startswith("/organizations/{orgId}"):
            continue
        for method in ("get", "post", "put", "delete"):
            if method in item:
                path = (template.replace("{entityType}", "Notification").replace("{jobId}", "job-1")
                        .replace("{id}", "id-1"))
                shapes.append((method.upper(), path))
    return shapes


SHAPES = route_shapes()


def test_every_route_shape_is_covered():
    assert len(SHAPES) == 322  # the 323 operations of the spec, less the token endpoint


def request(client, auth, method, template, org):
    return client.request(method, template.replace("{orgId}", org), headers=auth,
                          **({"json": {}} if method in ("POST", "PUT") else {}))


def assert_refused(response, org):
    assert response.status_code == 403, (org, response.text)
    assert response.json()["message"] == f"client 'bound' may not access organization {org!r}"


@pytest.mark.parametrize(("method", "template"), SHAPES, ids=[f"{m} {t}" for m, t in SHAPES])
def test_a_bound_client_is_refused_on_look_alike_organizations_on_every_route(bound, method, template):
    client, auth = bound
    for org in EVERY_SHAPE:
        assert_refused(request(client, auth, method, template, org), org)
    response = request(client, auth, method, template, "org-a")  # one it is bound to
    assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize("org", LOOK_ALIKES)
def test_a_bound_client_is_refused_on_every_look_alike(bound, org):
    client, auth = bound
    for method, template in (("GET", "/organizations/{orgId}/compoundaggregations"),
                             ("PUT", "/organizations/{orgId}/integrationdestinations/webhooks/id-1/active")):
        assert_refused(request(client, auth, method, template, org), org)


@pytest.mark.parametrize("org", ["org-a", "org-b", "org%2Da", "%6Frg-b"])
def test_a_bound_client_reaches_its_organizations_in_any_spelling(bound, org):
    client, auth = bound
    assert request(client, auth, "GET", "/organizations/{orgId}/compoundaggregations", org).status_code == 200


@pytest.fixture(scope="module")
def bound_url(bound_app):
    with serve_in_thread(bound_app) as url:
        yield url


@pytest.mark.parametrize(("path", "statuses"), [
    ("/organizations/org-c/compoundaggregations", {403}),
    ("/organizations/org-a/../org-c/compoundaggregations", {404}),
    ("/organizations/org-a%2F..%2Forg-c/compoundaggregations", {404}),
    ("/organizations/org-a/%2E%2E/org-c/compoundaggregations", {404}),
    ("//organizations/org-c/compoundaggregations", {404}),
    ("/organizations//org-c/compoundaggregations", {404}),
    ("/organizations/./org-c/compoundaggregations", {404}),
    ("/organizations/org-c;org-a/compoundaggregations", {403}),
    ("/organizations/org-c/compoundaggregations?orgId=org-a", {403}),
    ("/organizations/org-%63/compoundaggregations", {403}),
    ("/organizations/org-a%00/compoundaggregations", {400}),
    ("/organizations/%6Frg-a/compoundaggregations", {200}),  # org-a, percent-encoded
])
def test_raw_paths_over_http_cannot_reach_another_organization(bound, bound_url, path, statuses):
    """Paths as a raw HTTP client sends them (no normalising), to the served mock."""
    _, auth = bound
    host, port = bound_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    connection.putheader("Authorization", auth["Authorization"])
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status in statuses, (response.status, body)
