"""README promises that no other test proved (see "What the README promises, and the test
that proves it" in tests/README.md). Everything goes through the HTTP API or the command
line; the expected values are the README's, written out here."""

from __future__ import annotations

import copy
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mockserver.app import create_app
from mockserver.backend.crud import Caller
from mockserver.backend.store import Collection
from mockserver.settings import Settings
from tests.conftest import basic, bearer_for
from tests.support.receiver import receiving
from tests.support.processes import free_port, serving_line

ORG = "org-readme"
BASE = f"/organizations/{ORG}"
AGGREGATION = {"name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"}


def post(client, auth, path, body):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def rule_to(client, auth, url, event_name, code):
    """A rule that fires on every Event of ``event_name``, linked to a webhook at ``url``."""
    rule = post(client, auth, "notifications/configurations", {
        "name": code, "code": code, "description": "d", "eventName": event_name, "alwaysFireEvent": True})
    hook = post(client, auth, "integrationdestinations/webhooks", {
        "name": code, "description": "d", "url": url, "code": code,
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "s3cr3t-value"}})
    post(client, auth, "integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                              "destination": "Webhook", "destinationId": hook["id"]})
    return rule


def events(client, auth, query):
    response = client.get(f"{BASE}/events?pageSize=100&{query}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()["data"]


# -- "except for deliveries that an integration.perform.error caused, so a broken receiver
#    cannot start a loop" ----------------------------------------------------------------

def test_a_failed_delivery_of_an_integration_error_records_no_further_error(client, auth):
    client.post("/_mock/clock", json={"freeze": True})
    with receiving([500] * 100) as broken:
        rule_to(client, auth, broken.url, "configuration.compoundaggregation.created", "on_create")
        rule_to(client, auth, broken.url, "integration.perform.error", "on_error")
        post(client, auth, "compoundaggregations", AGGREGATION)
        # 5 attempts (the default), 1+2+4+8 s apart: 40 rounds of a loop would fit in 600 s
        client.post("/_mock/clock", json={"advanceSeconds": 600})
        client.get(f"/_mock/deliveries?orgId={ORG}&wait=true")
        errors = events(client, auth, "eventName=integration.perform.error&eventType=IntegrationEvent")
        assert len(errors) == 1  # from the first rule's deliveries only
        assert len(events(client, auth, "eventType=Notification")) == 2  # each rule fired once
        assert len(broken.requests) == 10  # 5 attempts for each firing, then nothing


# -- "POST /_mock/reset: empty every organization (the clock stays)" and "back to running
#    (from where it stood: time never goes backwards)" -------------------------------------

def test_reset_keeps_the_clock(client):
    client.post("/_mock/clock", json={"freeze": True, "at": "2031-06-01T12:00:00Z"})
    auth = bearer_for(client)  # a token of the clock's time
    post(client, auth, "compoundaggregations", AGGREGATION)
    assert client.post("/_mock/reset").status_code == 200
    assert client.get("/_mock/clock").json() == {"now": "2031-06-01T12:00:00.000Z", "frozen": True}
    assert client.get(f"{BASE}/compoundaggregations", headers=auth).json() == {"data": []}


def test_a_clock_set_running_again_runs_on_from_where_it_stood(client):
    client.post("/_mock/clock", json={"freeze": True, "at": "2031-06-01T12:00:00Z"})
    running = client.post("/_mock/clock", json={"freeze": False}).json()
    assert running["frozen"] is False and running["now"].startswith("2031-06-01T12:00:")
    assert client.get("/_mock/clock").json()["now"] >= "2031-06-01T12:00:00.000Z"


# -- "A page costs the same whatever the size of the collection" -------------------------

@pytest.fixture
def touched(monkeypatch):
    """Every item the store's scan hands out (what a list page reads)."""
    seen: list[int] = []
    scan = Collection.scan

    def counting(self, *args, **kwargs):
        for seq, item in scan(self, *args, **kwargs):
            seen.append(seq)
            yield seq, item

    monkeypatch.setattr(Collection, "scan", counting)
    return seen


def stored(app, client, auth, org, count):
    """``count`` compound aggregations in ``org``: one created through the API, the rest
    copies of it under new ids (creating 100,000 one by one would take a minute)."""
    first = client.post(f"/organizations/{org}/compoundaggregations", json=AGGREGATION, headers=auth).json()
    service = app.backend.compound_aggregations
    with app.backend.store.lock:
        collection = app.backend.store.collection(org, service.kind.collection)
        model = collection.get(first["id"])
        for n in range(1, count):
            collection.put({**copy.deepcopy(model), "id": f"{n:08d}-0000-4000-8000-000000000000"})
    return first


def test_a_page_reads_as_many_items_with_100_stored_as_with_100000(app, client, auth, touched):
    stored(app, client, auth, "org-small", 100)
    stored(app, client, auth, "org-large", 100_000)

    def page(org, token=None):
        touched.clear()
        query = {"pageSize": 100, **({"nextToken": token} if token else {})}
        body = client.get(f"/organizations/{org}/compoundaggregations", params=query, headers=auth).json()
        return len(body["data"]), body.get("nextToken"), len(touched)

    assert page("org-small")[::2] == (100, 100)  # the whole collection, and no next page
    count, token, read = page("org-large")
    assert (count, read) == (100, 101) and token  # the page and one more, to know a next page exists
    # a deep page: the 999th of 1,000 (walked to through the service, then asked for over HTTP)
    service, caller, token = app.backend.compound_aggregations, Caller("org-large", "test-client"), None
    for _ in range(998):
        _, token = service.list(caller, {}, 100, token)
    count, last_token, read = page("org-large", token)
    assert (count, read) == (100, 101) and last_token
    assert page("org-large", last_token)[::2] == (100, 100)  # the last page: no next page to look for


# -- "Deliveries run on a background worker; the API call that caused them never waits" --

def test_the_call_that_fires_a_notification_answers_while_the_receiver_still_holds_it(client, auth):
    release = threading.Event()
    with receiving(hold=release) as held:
        try:
            rule_to(client, auth, held.url, "configuration.compoundaggregation.created", "on_create")
            response = client.post(f"{BASE}/compoundaggregations", json=AGGREGATION, headers=auth)
            assert response.status_code == 200
            assert held.wait_for(1)  # the delivery reached the receiver, which holds it
            assert held.sent == []  # and has not answered
            # no attempt has finished: had the API call waited for one, it would be listed
            assert client.get(f"/_mock/deliveries?orgId={ORG}").json()["data"] == []
        finally:
            release.set()
        assert held.wait_replied(1)
    attempts = client.get(f"/_mock/deliveries?orgId={ORG}&wait=true").json()["data"]
    assert [a["outcome"] for a in attempts] == ["delivered"]


# -- Authentication ----------------------------------------------------------------------

@pytest.mark.parametrize(("client_id", "secret"), [("", "a-secret"), ("an-id", "")])
def test_an_empty_client_id_or_secret_gets_no_token(client, client_id, secret):
    response = client.post("/oauth/token", json={"grant_type": "client_credentials"}, headers=basic(client_id, secret))
    assert response.status_code == 401


def test_a_token_is_self_contained_it_works_after_a_reset(client):
    """Signed, self-contained values: nothing is kept per token, so emptying the mock
    leaves every token issued before it valid."""
    auth = bearer_for(client)
    client.post("/_mock/reset")
    assert client.get(f"{BASE}/compoundaggregations", headers=auth).status_code == 200


@pytest.fixture(scope="module")
def clients_from_the_environment():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("M3TER_MOCK_CLIENTS", "env-ci:env-ci-pass:org-env env-any:env-any-pass")
        settings = Settings.from_environment([], validate_responses=True)
    return create_app(settings).test_client()


def test_clients_in_m3ter_mock_clients_are_the_only_ones(clients_from_the_environment):
    client = clients_from_the_environment
    assert client.post("/oauth/token", json={"grant_type": "client_credentials"},
                       headers=basic("someone", "else")).status_code == 401
    bound = bearer_for(client, "env-ci", "env-ci-pass")
    assert client.get("/organizations/org-env/compoundaggregations", headers=bound).status_code == 200
    assert client.get("/organizations/org-other/compoundaggregations", headers=bound).status_code == 403
    free = bearer_for(client, "env-any", "env-any-pass")
    assert client.get("/organizations/org-other/compoundaggregations", headers=free).status_code == 200


# -- the spec, the UI, HEAD --------------------------------------------------------------

def test_the_spec_and_a_swagger_ui_are_served(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200 and spec.json()["openapi"] == "3.0.3"
    operations = [op for item in spec.json()["paths"].values() for op in item.values()
                  if isinstance(op, dict) and "operationId" in op]
    assert len(operations) == 323  # every operation of m3ter's published API
    ui = client.get("/ui/")
    assert ui.status_code == 200 and ui.headers["content-type"].startswith("text/html")
    assert "swagger" in ui.text.lower()


def test_head_is_answered_with_405(client, auth):
    response = client.request("HEAD", f"{BASE}/compoundaggregations", headers=auth)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"] and "HEAD" not in response.headers["Allow"]


# -- Events: "dtActioned is always absent" -------------------------------------------------

def test_no_event_is_ever_actioned(client, auth):
    with receiving() as receiver:
        rule_to(client, auth, receiver.url, "configuration.compoundaggregation.created", "on_create")
        post(client, auth, "compoundaggregations", AGGREGATION)
        client.post("/_mock/events?wait=true", json={"orgId": ORG, "eventName": "configuration.commitment.updated",
                                                     "newDto": {"id": "c1"}, "oldDto": {"id": "c1"}})
        found = events(client, auth, "includeActioned=true")
        notifications = events(client, auth, "includeActioned=true&eventType=Notification")
    assert len(found) == 3 and len(notifications) == 1  # the entity's, the injected and the notification
    assert all("dtActioned" not in e for e in found)


# -- Errors: "no error quotes a secret or more than 60 characters of a value" (schema
#    errors) and rule messages cut at 500 characters --------------------------------------

def test_a_rules_message_never_runs_past_500_characters(client, auth):
    response = client.post(f"{BASE}/notifications/configurations", headers=auth, json={
        "name": "n", "code": "n", "description": "d", "eventName": "x" * 5000})
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("eventName: 'xxx") and len(message) == 500 and message.endswith("…")


# -- `m3ter-mock serve`: the default address, and --quiet ----------------------------------

def serve(*argv):
    return subprocess.Popen([sys.executable, "-m", "mockserver", "serve", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).resolve().parent.parent)


def test_serve_listens_on_127_0_0_1_port_4010_by_default():
    process = serve()
    try:
        assert "serving on http://127.0.0.1:4010 " in serving_line(process)  # logged just before it binds
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_quiet_serves_without_a_line_per_request():
    port = free_port()
    process = serve("--port", str(port), "--quiet")
    try:
        serving_line(process)
        for _ in range(400):  # uvicorn binds a moment after the line
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    answer = conn.recv(64)
                break
            except OSError:
                threading.Event().wait(0.025)
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        process.terminate()
        log, _ = process.communicate(timeout=10)
    assert not re.search(r"GET /openapi\.json 200", log), log



# -- "alwaysFireEvent: true (or no calculation) fires on every Event of the type"; a firing
#    records a Notification Event with the triggering Event's name and data ---------------

def test_a_rule_without_a_calculation_fires_on_every_event_and_records_a_notification(client, auth):
    rule = post(client, auth, "notifications/configurations", {
        "name": "Every account", "code": "every_account", "description": "d",
        "eventName": "configuration.account.created"})
    for n in range(3):
        client.post("/_mock/events?wait=true", json={"orgId": ORG, "eventName": "configuration.account.created",
                                                     "newDto": {"id": f"a{n}", "name": f"Acme {n}"}})
    fired = events(client, auth, f"notificationId={rule['id']}")
    assert sorted(e["m3terEvent"]["eventData"]["newDto"]["id"] for e in fired) == ["a0", "a1", "a2"]
    for event in fired:
        assert event["eventName"] == "configuration.account.created"  # the name of the Event that fired it
        assert event["m3terEvent"]["notification"] == {"id": rule["id"], "code": "every_account",
                                                       "name": "Every account"}
    assert len(events(client, auth, "eventType=Notification")) == 3


# -- bounds stated in the README that a test cannot wait for: pinned by value --------------

def test_a_waiting_call_waits_at_most_30_seconds_and_32_lanes_run_at_once():
    import inspect

    from mockserver.api.middleware import MockMiddleware
    from mockserver.backend import deliveries

    assert inspect.signature(MockMiddleware).parameters["wait_seconds"].default == 30.0
    assert deliveries.MAX_LANES == 32


# -- the table in tests/README.md ------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
TABLE_HEADING = "## What the README promises, and the test that proves it"
README_AREAS = {"intro", "set-up", "client", "serve", "authentication", "organizations", "entities", "lists",
                "rules between entities", "export schedules", "webhook destinations", "events catalogue", "errors",
                "events", "notification rules", "deliveries", "signature", "worked example", "clock and admin",
                "data exports", "running it safely", "known differences", "spec level", "what it serves",
                "faults and latency", "request journal", "snapshots and the state file", "seed data", "pytest plugin",
                "plain Schemathesis", "lenient mode", "speed"}


def promise_rows() -> list[tuple[str, str, list[tuple[str, str]]]]:
    text = (ROOT / "tests" / "README.md").read_text(encoding="utf-8")
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("README", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append((cells[0], cells[1], re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", cells[2])))
    return rows


def test_every_test_the_table_names_exists():
    import ast

    rows = promise_rows()
    assert len(rows) >= 100
    assert {area for area, _, _ in rows} == README_AREAS  # every part of the README has its rows
    defined: dict[str, set[str]] = {}
    for area, claim, tests in rows:
        assert tests, f"no test for: {claim}"
        for path, name in tests:
            if path not in defined:
                tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
                defined[path] = {node.name for node in ast.walk(tree)
                                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                                 and node.name.startswith("test_")}
            assert name in defined[path], f"{path}::{name} (for: {claim}) does not exist"


# -- "What it serves": every operation, counted, none a 501 ------------------------------------

def test_the_readme_counts_every_operation_and_none_answers_501(client):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What it serves", 1)[1].split("\n## ", 1)[0]
    assert "All 323 operations" in section
    counts = [int(n) for n in re.findall(r"^\|[^|]+\| (\d+) \|$", section, flags=re.M)]
    assert counts == [192, 88, 43] and sum(counts) == 323
    assert "No operation answers 501" in section
    spec = client.get("/openapi.json").json()
    operations = [op for item in spec["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert len(operations) == 323
    assert not [op["operationId"] for op in operations
                if (op.get("x-mock") or {}).get("action") == "unimplemented" or "501" in op["responses"]]
