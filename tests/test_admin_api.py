"""The control plane (``/_mock``): the admin token, ``wait=true`` without holding request
threads, the spec documents built once, serialized clock changes and the paged list of
delivery attempts."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mockserver.app import create_app
from tests.conftest import basic, bearer_for, make_settings
from tests.support.server import serve_in_thread

# Contains "secret": the suite's log check then proves it never reaches a log line.
ADMIN_TOKEN = "admin-secret-token-5e1f0c"
ORG = "org-admin"
BASE = f"/organizations/{ORG}"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HEADER = {"X-m3ter-mock-admin-token": ADMIN_TOKEN}


@pytest.fixture(scope="module")
def guarded_app():
    return create_app(make_settings(admin_token=ADMIN_TOKEN))


@pytest.fixture
def guarded(guarded_app):
    guarded_app.backend.reset()
    return guarded_app.test_client()


def created(response):
    assert response.status_code == 200, response.text
    return response.json()


def linked_webhook(client, auth, url, event_name="configuration.commitment.updated", org_base=BASE):
    """A webhook destination at ``url`` that every ``event_name`` Event is sent to."""
    hook = created(client.post(f"{org_base}/integrationdestinations/webhooks", headers=auth, json={
        "name": "Receiver", "description": "d", "url": url,
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "hook-secret-value-1"}}))
    rule = created(client.post(f"{org_base}/notifications/configurations", headers=auth, json={
        "name": "Rule", "code": "rule", "description": "d", "eventName": event_name, "alwaysFireEvent": True}))
    config = created(client.post(f"{org_base}/integrationconfigs", headers=auth, json={
        "entityType": "Notification", "entityId": rule["id"], "destination": "Webhook", "destinationId": hook["id"]}))
    return hook, rule, config


# -- the admin token ----------------------------------------------------------------------

def test_without_the_token_every_admin_call_is_a_401_and_changes_nothing(guarded):
    assert guarded.post("/_mock/clock", headers=BEARER, json={"freeze": True, "at": "2030-01-01T00:00:00Z"}
                        ).status_code == 200
    auth = bearer_for(guarded)  # issued on the moved clock
    kept = created(guarded.post(f"{BASE}/compoundaggregations", headers=auth, json={
        "name": "Kept", "code": "kept", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"}))
    _, _, config = linked_webhook(guarded, auth, "http://127.0.0.1:9/hook")
    events_before = created(guarded.get(f"{BASE}/events?pageSize=100", headers=auth))["data"]

    anonymous = {}
    wrong_bearer = {"Authorization": "Bearer not-the-admin-token"}
    wrong_header = {"X-m3ter-mock-admin-token": "not-the-admin-token"}
    m3ter_token = auth  # a valid m3ter bearer token is not the admin token
    calls = [
        ("POST", "/_mock/reset", None),
        ("POST", "/_mock/clock", {"advanceSeconds": 31536000}),
        ("GET", "/_mock/clock", None),
        ("POST", "/_mock/events?wait=true", {"orgId": ORG, "eventName": "configuration.commitment.updated",
                                             "newDto": {"id": "c1"}}),
        ("GET", f"/_mock/deliveries?orgId={ORG}", None),
        ("POST", f"/_mock/organizations/{ORG}/integrationconfigs/{config['id']}/disable", None),
        ("POST", f"/_mock/organizations/{ORG}/dataexports/faults", {"count": 1}),
        ("GET", f"/_mock/organizations/{ORG}/dataexports/jobs/nothing", None),
        ("GET", "/_mock/no-such-path", None),  # a 404 needs the token too
        ("DELETE", "/_mock/reset", None),  # and so does a 405
    ]
    for headers in (anonymous, wrong_bearer, wrong_header, m3ter_token):
        for method, path, body in calls:
            response = guarded.request(method, path, headers=headers, json=body)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert set(response.json()) == {"message"}
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "not-the-admin-token" not in response.text
    # The public download prefix leads nowhere else.
    assert guarded.post("/_mock/downloads/%2E%2E%2Freset").status_code in (404, 405)
    assert guarded.post("/_mock/downloads/x/../../reset").status_code in (401, 404, 405)

    assert guarded.get("/_mock/clock", headers=BEARER).json() == {"now": "2030-01-01T00:00:00.000Z", "frozen": True}
    assert guarded.get(f"{BASE}/compoundaggregations/{kept['id']}", headers=auth).status_code == 200
    assert created(guarded.get(f"{BASE}/events?pageSize=100", headers=auth))["data"] == events_before
    config_run = f"{BASE}/integrationconfigs/{config['id']}"
    assert created(guarded.get(config_run, headers=auth))["status"] != "DISABLED"
    assert created(guarded.post(f"/_mock/organizations/{ORG}/integrationconfigs/{config['id']}/disable",
                                headers=BEARER))["enabled"] is False
    assert created(guarded.get(config_run, headers=auth))["status"] == "DISABLED"
    # The faults call was refused: the first accepted one makes exactly one fault pending.
    assert created(guarded.post(f"/_mock/organizations/{ORG}/dataexports/faults", headers=HEADER,
                                json={"count": 1})) == {"pendingFaults": 1}


def test_with_the_token_in_either_header_the_admin_api_works(guarded):
    assert created(guarded.post("/_mock/clock", headers=BEARER, json={"freeze": True, "at": "2030-01-01T00:00:00Z"}))
    assert created(guarded.post("/_mock/clock", headers=HEADER, json={"advanceSeconds": 60}))["now"] == \
        "2030-01-01T00:01:00.000Z"
    auth = bearer_for(guarded)
    assert created(guarded.get("/_mock/clock", headers={"authorization": f"bearer {ADMIN_TOKEN}"}))["frozen"] is True
    event = created(guarded.post("/_mock/events?wait=true", headers=HEADER, json={
        "orgId": ORG, "eventName": "configuration.commitment.updated", "newDto": {"id": "c1"}}))
    assert event["eventName"] == "configuration.commitment.updated"
    assert created(guarded.get("/_mock/deliveries?wait=true", headers=BEARER)) == {"data": []}
    assert guarded.get("/_mock/no-such-path", headers=BEARER).status_code == 404
    assert guarded.delete("/_mock/reset", headers=BEARER).status_code == 405
    aggregation = created(guarded.post(f"{BASE}/compoundaggregations", headers=auth, json={
        "name": "Gone", "code": "gone", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"}))
    assert created(guarded.post("/_mock/reset", headers=BEARER)) == {"message": "every organization is empty"}
    assert guarded.get(f"{BASE}/compoundaggregations/{aggregation['id']}", headers=auth).status_code == 404


def test_download_urls_and_the_admin_spec_need_no_token(guarded):
    auth = bearer_for(guarded)
    created(guarded.post(f"{BASE}/compoundaggregations", headers=auth, json={
        "name": "Exported", "code": "exported", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB",
        "calculation": "a"}))
    job_id = created(guarded.post(f"{BASE}/dataexports/adhoc", headers=auth, json={
        "sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]}))["jobId"]
    url = created(guarded.get(f"{BASE}/dataexports/jobs/{job_id}/getdownloadurl", headers=auth))["url"]
    path = "/" + url.split("/", 3)[3]
    assert path.startswith("/_mock/downloads/")
    response = guarded.get(path)
    assert response.status_code == 200, response.text
    assert "Exported" in response.text
    assert guarded.get("/_mock/downloads/guessed-token").status_code == 403  # unknown: still refused
    spec = guarded.get("/_mock/openapi.json")
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "m3ter-mock admin API"


def test_without_an_admin_token_the_admin_api_is_open(client):
    assert client.get("/_mock/clock").status_code == 200
    assert client.post("/_mock/reset").status_code == 200


# -- the spec documents -------------------------------------------------------------------

def test_the_spec_documents_are_built_once(monkeypatch):
    from connexion.spec import Specification

    client = create_app(make_settings()).test_client()
    built = []
    original = Specification.with_base_path

    def counting(self, base_path):
        built.append(base_path)
        return original(self, base_path)

    monkeypatch.setattr(Specification, "with_base_path", counting)
    first, second, third = (client.get("/openapi.json") for _ in range(3))
    assert first.status_code == 200 and first.json()["openapi"] == "3.0.3"
    assert first.content == second.content == third.content
    assert first.headers["content-type"] == third.headers["content-type"] == "application/json"
    assert len(built) == 1
    admin = [client.get("/_mock/openapi.json").content for _ in range(3)]  # public, too
    assert admin[0] == admin[1] == admin[2]
    assert len(built) == 2


# -- wait=true, clock changes: over real HTTP ---------------------------------------------

class HangingReceiver:
    """Answers every webhook 200, but only once released."""

    def __init__(self):
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.count = 0
        self.url = ""

    @contextmanager
    def running(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.count += 1
                receiver.arrived.set()
                receiver.release.wait(timeout=120)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        try:
            yield self
        finally:
            self.release.set()
            server.shutdown()
            server.server_close()


class Arrivals:
    """An ASGI wrapper counting the requests that have reached the server, by path."""

    def __init__(self, app):
        self.app = app
        self.counts: dict[str, int] = {}
        self.changed = threading.Condition()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            with self.changed:
                self.counts[scope["path"]] = self.counts.get(scope["path"], 0) + 1
                self.changed.notify_all()
        await self.app(scope, receive, send)

    def wait_for(self, path: str, count: int, timeout: float = 60) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.counts.get(path, 0) >= count, timeout)


@pytest.fixture(scope="module")
def served():
    # A delivery attempt may last as long as the receiver hangs (the test releases it).
    app = create_app(make_settings(delivery_timeout_seconds=120))
    arrivals = Arrivals(app)
    with serve_in_thread(arrivals) as url:
        yield app, arrivals, url


def test_waiting_calls_hold_no_request_thread(served):
    app, arrivals, url = served
    app.backend.reset()
    waiters = 40
    with HangingReceiver().running() as receiver, \
            httpx.Client(base_url=url, timeout=10, trust_env=False) as http, \
            ThreadPoolExecutor(max_workers=waiters) as pool:
        auth = {"Authorization": "Bearer " + http.post("/oauth/token", json={"grant_type": "client_credentials"},
                                                       headers=basic("waiting", "waiting-pass")).json()["access_token"]}
        linked_webhook(http, auth, receiver.url)
        event = {"orgId": ORG, "eventName": "configuration.commitment.updated", "newDto": {"id": "c1"}}
        assert http.post("/_mock/events", json=event).status_code == 200
        assert receiver.arrived.wait(timeout=60)  # the delivery is in flight, and hangs

        def wait_call(n):
            with httpx.Client(base_url=url, timeout=120, trust_env=False) as own:
                if n % 2:
                    return own.get(f"/_mock/deliveries?orgId={ORG}&wait=true")
                return own.post("/_mock/events?wait=true", json={**event, "newDto": {"id": f"c{n}"}})

        try:
            futures = [pool.submit(wait_call, n) for n in range(waiters)]
            assert arrivals.wait_for("/_mock/deliveries", waiters // 2)
            assert arrivals.wait_for("/_mock/events", waiters // 2 + 1)
            # Every waiter is in: an ordinary call still gets a thread and an answer.
            answer = http.post("/oauth/token", json={"grant_type": "client_credentials"},
                               headers=basic("waiting", "waiting-pass"))
            assert answer.status_code == 200
            assert http.get(f"{BASE}/integrationconfigs", headers=auth).status_code == 200
        finally:
            receiver.release.set()
        answers = [future.result(timeout=120) for future in futures]
    assert [a.status_code for a in answers] == [200] * waiters
    # Each list was read after the wait: the first delivery is there, delivered.
    for listed in answers[1::2]:
        first = [a for a in listed.json()["data"] if a["attempt"] == 1 and a["eventId"]]
        assert first and first[0]["outcome"] == "delivered"
    # Every injected Event (1 + 20) was delivered once the waits were over.
    assert receiver.count == 1 + waiters // 2


HOURLY_EXPORT = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"],
                 "scheduleType": "HOUR", "period": 1, "name": "hourly", "code": "hourly"}


def export_runs(http, auth):
    jobs = http.get(f"{BASE}/dataexports/jobs", params={"pageSize": 100}, headers=auth)
    assert jobs.status_code == 200, jobs.text
    return sorted(job["dateCreated"] for job in jobs.json()["data"])


def test_concurrent_clock_advances_add_up(served):
    """With an hourly export, each advance steps through due times (the window in which
    unserialized advances lost hours and failed with 500s)."""
    app, _, url = served
    app.backend.reset()
    calls = 24
    token_request = {"json": {"grant_type": "client_credentials"}, "headers": basic("clock", "clock-pass")}
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
        assert http.post("/_mock/clock", json={"freeze": True, "at": "2031-01-01T00:00:00Z"}).status_code == 200
        auth = {"Authorization": "Bearer " + http.post("/oauth/token", **token_request).json()["access_token"]}
        assert http.post(f"{BASE}/dataexports/schedules", headers=auth, json=HOURLY_EXPORT).status_code == 200

        def advance(_):
            with httpx.Client(base_url=url, timeout=120, trust_env=False) as own:
                return own.post("/_mock/clock", json={"advanceSeconds": 3600})

        with ThreadPoolExecutor(max_workers=calls) as pool:
            answers = list(pool.map(advance, range(calls)))
        assert [a.status_code for a in answers] == [200] * calls
        # Each answer shows the clock right after its own change: 1 h, 2 h, ... 24 h later.
        hours = [f"2031-01-{1 + h // 24:02d}T{h % 24:02d}:00:00.000Z" for h in range(1, calls + 1)]
        assert sorted(a.json()["now"] for a in answers) == hours
        assert http.get("/_mock/clock").json() == {"now": "2031-01-02T00:00:00.000Z", "frozen": True}
        auth = {"Authorization": "Bearer " + http.post("/oauth/token", **token_request).json()["access_token"]}
        assert export_runs(http, auth) == hours  # one run per hour, none skipped


def test_concurrent_clock_changes_through_the_backend_add_up(app, client):
    app.backend.change_clock(freeze=True, at="2032-03-01T00:00:00Z")
    auth = bearer_for(client)
    assert client.post(f"{BASE}/dataexports/schedules", headers=auth, json=HOURLY_EXPORT).status_code == 200
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: app.backend.change_clock(advance_seconds=1800), range(32)))
    assert app.backend.clock.now().isoformat() == "2032-03-01T16:00:00+00:00"
    assert export_runs(client, bearer_for(client)) == [f"2032-03-01T{h:02d}:00:00.000Z" for h in range(1, 17)]


# -- the paged list of delivery attempts --------------------------------------------------

@pytest.fixture
def answered(app, monkeypatch):
    """Deliveries answered 200 without a network (the delivery worker's harness seam, as
    the contract suite uses it)."""
    monkeypatch.setattr(app.backend.deliveries, "local_answer", lambda url, headers, body: 200)
    return app


def put_attempts(app, client, org_id, count) -> list[str]:
    """``count`` delivery attempts in ``org_id``, made the way the mock makes them (a rule
    that fires on every injected Event, linked to a webhook); returns the ids of the
    Notification Events they delivered, oldest first, as the events list shows them."""
    auth = bearer_for(client)
    org_base = f"/organizations/{org_id}"
    linked_webhook(client, auth, "http://127.0.0.1:9/hook", org_base=org_base)
    for n in range(count):
        app.backend.inject_event(org_id, "configuration.commitment.updated", new={"id": f"c{n}"})
        if n % 500 == 499:  # a destination holds at most 1,000 waiting deliveries
            app.backend.run_due()
    app.backend.run_due()
    ids, token = [], None
    while True:
        query = {"eventType": "Notification", "pageSize": 100, **({"nextToken": token} if token else {})}
        body = client.get(f"{org_base}/events", params=query, headers=auth).json()
        ids += [e["id"] for e in body["data"]]
        token = body.get("nextToken")
        if not token:
            return ids[::-1]


def all_pages(client, query):
    """The Events the attempts delivered, page after page, and the size of each page."""
    ids, token, pages = [], None, []
    while True:
        body = client.get("/_mock/deliveries", params={**query, **({"nextToken": token} if token else {})}).json()
        pages.append(len(body["data"]))
        ids += [a["eventId"] for a in body["data"]]
        token = body.get("nextToken")
        if not token:
            return ids, pages


def test_deliveries_come_a_page_at_a_time_oldest_first(answered, client):
    a_ids = put_attempts(answered, client, "org-a", 5)
    b_ids = put_attempts(answered, client, "org-b", 3)
    assert (len(a_ids), len(b_ids)) == (5, 3)
    assert all_pages(client, {"orgId": "org-a", "pageSize": 2}) == (a_ids, [2, 2, 1])
    assert all_pages(client, {"pageSize": 2}) == (a_ids + b_ids, [2, 2, 2, 2])
    assert all_pages(client, {"pageSize": 5}) == (a_ids + b_ids, [5, 3])
    assert all_pages(client, {"pageSize": 8}) == (a_ids + b_ids, [8])
    assert all_pages(client, {}) == (a_ids + b_ids, [8])
    assert all_pages(client, {"orgId": "org-none"}) == ([], [0])


def test_the_default_page_is_100_and_a_page_at_most_1000(answered, client):
    put_attempts(answered, client, "org-many", 1001)
    first = client.get("/_mock/deliveries").json()
    assert len(first["data"]) == 100 and first["nextToken"]
    assert len(client.get("/_mock/deliveries", params={"pageSize": 1000}).json()["data"]) == 1000
    for size in (0, 1001, "x"):
        refused = client.get("/_mock/deliveries", params={"pageSize": size})
        assert refused.status_code == 400 and "pageSize" in refused.json()["message"]


def test_a_next_token_works_only_on_the_list_that_issued_it(answered, client):
    put_attempts(answered, client, "org-a", 3)
    put_attempts(answered, client, "org-b", 3)
    of_a = client.get("/_mock/deliveries", params={"orgId": "org-a", "pageSize": 1}).json()["nextToken"]
    of_all = client.get("/_mock/deliveries", params={"pageSize": 1}).json()["nextToken"]
    for query in ({"orgId": "org-b", "nextToken": of_a}, {"nextToken": of_a}, {"orgId": "org-a", "nextToken": of_all},
                  {"nextToken": "garbage"}, {"nextToken": of_all[:-2] + "xx"}, {"nextToken": "~" + of_a}):
        refused = client.get("/_mock/deliveries", params=query)
        assert refused.status_code == 400 and "nextToken" in refused.json()["message"], query
