"""Webhook deliveries against hostile URLs, hostile receivers and many tenants: the webhook
policy (when saved and on the resolved address at delivery), never calling the mock itself,
run statuses that do not reveal port state, one lane per destination, a total deadline and
a bounded reply per attempt, and retention of Events and delivery attempts."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import ssl
import subprocess
import threading
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest

from mockserver.app import create_app
from tests.conftest import bearer_for, make_settings
from tests.support.tcp_server import tcp_server
from tests.support.receiver import receiving

ORG = "org-hardening"
OTHER_ORG = "org-hardening-other"
NO_RESPONSE = "could not connect to the receiver, or it did not answer in time"
HOOKS = "integrationdestinations/webhooks"
CREDENTIALS = {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "hardening-webhook-secret"}


class Api:
    """The few calls these tests make, for one organization, through any client."""

    def __init__(self, client, auth, org=ORG):
        self.client, self.auth, self.base = client, auth, f"/organizations/{org}"
        self.org = org

    def post(self, path, body):
        return self.client.post(f"{self.base}/{path}", json=body, headers=self.auth)

    def ok(self, path, body):
        response = self.post(path, body)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path):
        response = self.client.get(f"{self.base}/{path}", headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    def webhook(self, url):
        return self.post(HOOKS, {"name": "Receiver", "description": "d", "url": url, "credentials": CREDENTIALS})

    def wire(self, url):
        """A rule on every compound aggregation created, linked to a webhook at ``url``."""
        note = self.ok("notifications/configurations", {
            "name": "n", "code": "n", "description": "d", "eventName": "configuration.compoundaggregation.created",
            "alwaysFireEvent": True})
        response = self.webhook(url)
        assert response.status_code == 200, response.text
        hook = response.json()
        return self.ok("integrationconfigs", {"entityType": "Notification", "entityId": note["id"],
                                              "destination": "Webhook", "destinationId": hook["id"]})

    def aggregation(self, code="storage"):
        return self.ok("compoundaggregations", {"name": "Storage", "code": code, "rounding": "UP",
                                                "quantityPerUnit": 1, "unit": "GB", "calculation": "a"})

    def run(self, config):
        return self.get(f"integrationconfigs/{config['id']}")

    def attempts(self):
        response = self.client.get(f"/_mock/deliveries?orgId={self.org}&wait=true")
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture
def api(client, auth):
    return Api(client, auth)


# -- the policy when a destination is saved ----------------------------------------------

METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.0.1/",
    "http://2852039166/",  # 169.254.169.254 in decimal
    "http://0xa9fea9fe/",  # ... in hex
    "http://0xA9FEA9FE:80/",
    "http://0251.0376.0251.0376/",  # ... in octal
    "http://169.254.43518/",  # ... short form
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://169.254.169.254./",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.Google.Internal./",
    "http://metadata/",
]


@pytest.mark.parametrize("url", METADATA_URLS)
def test_link_local_and_metadata_destinations_are_refused_when_saved(api, url):
    response = api.webhook(url)
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("url: ")
    assert "link-local / cloud metadata" in message or "cloud metadata address" in message
    assert api.get(HOOKS)["data"] == []


def test_an_update_to_a_metadata_address_is_refused(api):
    hook = api.webhook("http://127.0.0.1:9/hook").json()
    response = api.client.put(f"{api.base}/{HOOKS}/{hook['id']}", headers=api.auth, json={
        "name": "Receiver", "description": "d", "url": "http://0xa9fea9fe/", "version": hook["version"],
        "credentials": CREDENTIALS})
    assert response.status_code == 400
    assert response.json()["message"] == ("url: 0xa9fea9fe (169.254.169.254) is a link-local / cloud metadata "
                                           "address; webhooks may not be delivered there")
    assert api.get(f"{HOOKS}/{hook['id']}")["url"] == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://localhost:9/", "http://0x7f000001:9/",
                                 "http://10.1.2.3/", "http://192.168.0.10:8080/", "https://hooks.example.com/m3ter"])
def test_loopback_and_private_destinations_are_allowed_by_default(api, url):
    assert api.webhook(url).status_code == 200


def test_the_allow_list_restricts_destinations(app, api, monkeypatch):
    monkeypatch.setattr(app.backend.settings, "webhook_allow", ("hooks.example.com", "127.0.0.0/8"))
    assert api.webhook("https://hooks.example.com/m3ter").status_code == 200
    assert api.webhook("http://127.0.0.5:8080/").status_code == 200
    refused = api.webhook("http://10.1.2.3/")
    assert refused.status_code == 400
    assert refused.json()["message"] == "url: 10.1.2.3 is not in the webhook allow list"
    # still never a metadata address, whatever the list says
    monkeypatch.setattr(app.backend.settings, "webhook_allow", ("169.254.0.0/16",))
    assert api.webhook("http://169.254.169.254/").status_code == 400


# -- the policy at delivery time ---------------------------------------------------------

@contextmanager
def resolving(app, table):
    """Name resolution for the deliveries replaced by ``table`` (name -> addresses)."""
    asked = []

    def resolve(host, port):
        asked.append(host)
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, (ip, port)) for ip in table[host]]

    app.backend.deliveries.resolve = resolve
    try:
        yield asked
    finally:
        del app.backend.deliveries.resolve


def test_a_name_resolving_to_a_metadata_address_is_refused_at_delivery(app, api):
    """DNS rebinding: the name passed when it was saved; at delivery it resolves to a
    metadata address (next to a harmless one), and nothing is sent anywhere."""
    app.backend.clock.freeze()
    with receiving() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        with resolving(app, {"rebound.example": ["127.0.0.1", "169.254.169.254"]}) as asked:
            config = api.wire(f"http://rebound.example:{port}/hook")
            api.aggregation()
            attempts = api.attempts()
            app.backend.advance_to(app.backend.clock.now() + timedelta(hours=1))  # past every retry
        assert receiver.requests == []
    assert asked == ["rebound.example"]
    assert [(a["outcome"], a["statusCode"]) for a in api.attempts()] == [("failed", None)]  # never retried
    expected = ("refused by the webhook policy: 169.254.169.254 is a link-local / cloud metadata address; "
                "webhooks may not be delivered there")
    assert attempts[0]["error"] == expected
    run = api.run(config)
    assert run["status"] == "ERROR" and run["error"] == expected
    failure = api.get("events?eventName=integration.perform.error")["data"]
    assert [e["m3terEvent"]["eventData"]["newDto"]["error"] for e in failure] == [expected]


def test_the_delivery_connects_to_the_checked_address_and_names_the_host(app, api):
    """The name is resolved once (here to the receiver's loopback address) and the request
    goes to that address with the name in Host and in the signed URL."""
    with receiving() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        url = f"http://pinned.example:{port}/hook"
        with resolving(app, {"pinned.example": ["127.0.0.1"]}):
            api.wire(url)
            api.aggregation()
            assert receiver.wait_for(1)
            api.attempts()
    got = receiver.requests[0]
    assert got.headers["Host"] == f"pinned.example:{port}"
    message = f"{url}||key-1|{got.headers['X-m3ter-timestamp']}|".encode() + got.body
    assert got.headers["X-m3ter-signature"] == hmac.new(b"hardening-webhook-secret", message,
                                                        hashlib.sha256).hexdigest()
    assert got.headers["X-m3ter-mock-delivery"] == app.backend.instance_id
    assert got.headers["Content-Type"] == "application/json"


def test_a_loopback_receiver_is_reached_by_name(api):
    with receiving() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        config = api.wire(f"http://localhost:{port}/hook")
        api.aggregation()
        assert receiver.wait_for(1)
        assert [a["outcome"] for a in api.attempts()] == ["delivered"]
    assert receiver.requests[0].headers["Host"] == f"localhost:{port}"
    assert api.run(config)["status"] == "COMPLETE"


@pytest.fixture
def tls_receiver(tmp_path):
    """An https receiver on loopback with a certificate for ``pinned.example`` only."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=pinned.example",
                    "-addext", "subjectAltName=DNS:pinned.example"], check=True, capture_output=True)
    names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _context: names.append(name)
    with receiving(tls=context) as receiver:
        yield receiver, ssl.create_default_context(cafile=str(cert)), names


def test_https_delivery_to_the_checked_address_verifies_the_name(app, api, tls_receiver, monkeypatch):
    receiver, trust, names = tls_receiver
    app.backend.clock.freeze()  # one attempt each: no retries
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    monkeypatch.setattr(app.backend.deliveries, "ssl_context", trust)
    other = Api(api.client, api.auth, OTHER_ORG)
    with resolving(app, {"pinned.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]}):
        good = api.wire(f"https://pinned.example:{port}/hook")
        wrong = other.wire(f"https://other.example:{port}/hook")
        api.aggregation()
        other.aggregation()
        assert receiver.wait_for(1)
        api.attempts()
        mismatch = other.attempts()
    assert sorted(names) == ["other.example", "pinned.example"]  # SNI carries the name
    assert len(receiver.requests) == 1 and receiver.requests[0].headers["Host"] == f"pinned.example:{port}"
    assert api.run(good)["status"] == "COMPLETE"
    assert "CERTIFICATE_VERIFY_FAILED" in mismatch[0]["error"]
    assert other.run(wrong)["error"] == NO_RESPONSE


def test_the_allow_list_is_applied_to_the_resolved_address(app, api, monkeypatch):
    with receiving() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        config = api.wire(receiver.url)
        monkeypatch.setattr(app.backend.settings, "webhook_allow", ("hooks.example.com",))
        api.aggregation()
        attempts = api.attempts()
        monkeypatch.setattr(app.backend.settings, "webhook_allow", ("127.0.0.1",))
        api.aggregation(code="second")
        assert receiver.wait_for(1)
        later = api.attempts()
    assert [(a["outcome"], a["error"]) for a in attempts] == [
        ("failed", "refused by the webhook policy: 127.0.0.1 is not in the webhook allow list")]
    assert [a["outcome"] for a in later] == ["failed", "delivered"]
    assert len(receiver.requests) == 1 and receiver.requests[0].headers["Host"] == f"127.0.0.1:{port}"
    assert api.run(config)["status"] == "COMPLETE"


# -- never the mock itself ----------------------------------------------------------------

@pytest.fixture
def served(live_app, live_url):
    live_app.backend.reset()
    with httpx.Client(base_url=live_url) as http:
        yield live_app, live_url, Api(http, bearer_for(http)), Api(http, bearer_for(http), OTHER_ORG)


def test_a_webhook_at_the_mocks_own_address_is_refused(served):
    app, url, api, other = served
    kept = other.aggregation()
    config = api.wire(f"{url}/_mock/reset")
    api.aggregation()
    app.backend.run_due()
    assert [a["id"] for a in other.get("compoundaggregations")["data"]] == [kept["id"]]
    run = api.run(config)
    assert run["status"] == "ERROR"
    assert run["error"].startswith("refused by the webhook policy: ")
    assert "the mock's own address" in run["error"]


def test_a_delivery_that_reaches_the_mock_another_way_is_refused_there(served):
    """Should a delivery arrive at the mock all the same (through a proxy, another name or
    an address the mock did not know it had), the mock refuses it by its header."""
    app, url, api, other = served
    kept = other.aggregation()
    config = api.wire(f"{url}/_mock/reset")
    app.backend.own_addresses.clear()
    app.backend.inject_event(ORG, "configuration.compoundaggregation.created", new={"id": "x"})
    app.backend.run_due()
    assert [a["id"] for a in other.get("compoundaggregations")["data"]] == [kept["id"]]
    assert api.run(config)["error"] == "HTTP 403"


# -- one lane per destination -------------------------------------------------------------

def test_a_hung_receiver_does_not_delay_another_organizations_delivery(client, auth):
    first, second = Api(client, auth, "org-lane-a"), Api(client, auth, "org-lane-b")
    release = threading.Event()
    with receiving(hold=release) as hung, receiving() as healthy:
        try:
            first.wire(hung.url)
            second.wire(healthy.url)
            first.aggregation()
            assert hung.wait_for(1)  # A's delivery is now in flight, and held
            second.aggregation()
            assert healthy.wait_for(1, timeout=5)
            assert hung.sent == []  # A is still waiting for its answer
        finally:
            release.set()
        assert hung.wait_replied(1)
        assert [a["outcome"] for a in first.attempts()] == ["delivered"]
        assert [a["outcome"] for a in second.attempts()] == ["delivered"]


def test_a_destination_far_behind_gets_no_more_queued(app, api, monkeypatch):
    monkeypatch.setattr(app.backend.deliveries, "max_waiting", 2)
    release = threading.Event()
    with receiving(hold=release) as hung:
        try:
            config = api.wire(hung.url)
            for n in range(4):
                api.aggregation(code=f"c{n}")
            assert hung.wait_for(1)
        finally:
            release.set()
        outcomes = sorted((a["outcome"], a["error"]) for a in api.attempts())
        assert len(hung.requests) == 2
        # once caught up, the destination takes deliveries again
        api.aggregation(code="later")
        assert [a["outcome"] for a in api.attempts()][4:] == ["delivered"]
        assert len(hung.requests) == 3
    dropped = "dropped: 2 deliveries to this destination are already waiting"
    assert outcomes == [("delivered", None)] * 2 + [("failed", dropped)] * 2
    assert api.run(config)["status"] == "COMPLETE"


def test_attempts_for_one_destination_run_in_order(app, api):
    with receiving() as receiver:
        api.wire(receiver.url)
        created = [api.aggregation(code=f"c{n}")["id"] for n in range(6)]
        assert receiver.wait_for(6)
        api.attempts()
    sent = [json.loads(r.body)["m3terEvent"]["eventData"]["newDto"]["id"] for r in receiver.requests]
    assert sent == created


# -- run statuses that do not reveal port state, a deadline, a bounded reply --------------

@pytest.fixture(scope="module")
def small_app():
    return create_app(make_settings(delivery_timeout_seconds=0.5, delivery_max_response_bytes=16 * 1024,
                                    retain_events=5, retain_delivery_attempts=3))


@pytest.fixture
def small(small_app):
    small_app.backend.reset()
    client = small_app.test_client()
    return Api(client, bearer_for(client))


def closed_port_url():
    with receiving() as receiver:
        return receiver.url


def test_failures_below_http_read_alike_in_the_run_status(small_app, small):
    small_app.backend.clock.freeze()
    with tcp_server(lambda c: c.close()) as hangs_up, tcp_server(lambda c: None) as silent, \
            tcp_server(lambda c: c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")) as not_http:
        cases = {"closed": closed_port_url(), "hangs up": hangs_up, "silent": silent, "not http": not_http}
        runs, errors = {}, {}
        for n, (name, url) in enumerate(cases.items()):
            api = Api(small.client, small.auth, f"org-port-{n}")
            config = api.wire(url)
            api.aggregation()
            errors[name] = api.attempts()[0]["error"]
            runs[name] = api.run(config)
    assert {name: (run["status"], run["error"]) for name, run in runs.items()} == {
        name: ("AWAITING_RETRY", NO_RESPONSE) for name in cases}
    # the admin list keeps the detail
    assert errors["closed"].startswith("ConnectError")
    assert errors["silent"].startswith("ReadTimeout")


def test_an_attempt_has_one_deadline_however_the_receiver_drips(small_app, small):
    small_app.backend.clock.freeze()
    stop = threading.Event()
    with receiving(drip=stop, drip_bytes=60) as dripping:
        try:
            config = small.wire(dripping.url)
            small.aggregation()
            attempts = small.attempts()
        finally:
            stop.set()
        assert dripping.wait_replied(1)
    assert [(a["outcome"], a["statusCode"]) for a in attempts] == [("retrying", None)]
    assert attempts[0]["error"].startswith("ReadTimeout")
    assert dripping.sent[0] < 60  # cut off before the receiver was done
    assert small.run(config)["error"] == NO_RESPONSE


def test_only_the_first_bytes_of_a_huge_reply_are_read(small):
    huge = 64 * 1024 * 1024
    with receiving(reply_bytes=huge) as receiver:
        small.wire(receiver.url)
        small.aggregation()
        attempts = small.attempts()
        assert receiver.wait_replied(1)
    assert [(a["outcome"], a["statusCode"]) for a in attempts] == [("delivered", 200)]
    # the mock hung up after its 16 KiB; only what the sockets buffer got out
    assert receiver.sent[0] < huge // 4


# -- retention ----------------------------------------------------------------------------

def test_events_are_kept_up_to_the_limit_newest_first(small):
    created = [small.aggregation(code=f"c{n}")["id"] for n in range(8)]
    events = small.get("events?pageSize=100")["data"]
    assert [e["m3terEvent"]["eventData"]["newDto"]["id"] for e in events] == created[:2:-1]
    assert small.client.get(f"{small.base}/events/{events[-1]['id']}", headers=small.auth).status_code == 200
    first_page = small.get("events?pageSize=2")
    assert len(first_page["data"]) == 2 and first_page["nextToken"]


def test_delivery_attempts_are_kept_up_to_the_limit(small_app, small):
    with receiving() as receiver:
        small.wire(receiver.url)
        for n in range(6):
            small.aggregation(code=f"c{n}")
        attempts = small.attempts()
        assert len(receiver.requests) == 6
    sent = [json.loads(r.body)["id"] for r in receiver.requests]
    assert [a["eventId"] for a in attempts] == sent[-3:]
    deliveries = small_app.backend.deliveries
    page, after = deliveries.attempts_page(ORG, 2)
    rest, end = deliveries.attempts_page(ORG, 2, after)
    assert [a["eventId"] for a in page + rest] == sent[-3:] and end is None
