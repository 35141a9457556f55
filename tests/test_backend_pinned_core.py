"""Backend behaviour that mutation testing found unpinned: the generic lists' ``date`` filter,
deliveries that would reach one of the host's own addresses when the mock listens on all of
them, https deliveries through their TLS handshake (and one cut off by the deadline), the
evaluation of a calculation on a stored Event, and stopping the clock workers."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest

from mockserver.app import create_app
from mockserver.backend import notifying
from mockserver.backend.crud import Caller
from mockserver.backend.worker import DueWorker, LaneWorker
from mockserver.domain.clock import Clock
from mockserver.domain.errors import MockError
from tests.conftest import bearer_for, make_settings
from tests.support.receiver import receiving

ORG = "org-pinned-core"
BASE = f"/organizations/{ORG}"
NO_RESPONSE = "could not connect to the receiver, or it did not answer in time"

# A certificate for pinned.example only (valid 2000-2100), and its key: made once with openssl
# so that these tests need no openssl command, and no other process, to make one.
CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIBgDCCASagAwIBAgIBATAKBggqhkjOPQQDAjAZMRcwFQYDVQQDDA5waW5uZWQu
ZXhhbXBsZTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFowGTEXMBUG
A1UEAwwOcGlubmVkLmV4YW1wbGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQm
9eixVXUdzUzgZW9LVnJPBrjEY7wYSsH34IVHj1z6QxSF+Kiq0HgLpV8SgDEXUMtq
VQIuYLBjGuEGK8LDcY3Yo10wWzAZBgNVHREEEjAQgg5waW5uZWQuZXhhbXBsZTAP
BgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIChDAdBgNVHQ4EFgQUaGl5XISH
vgE5YyHc6RSU9BGHaIcwCgYIKoZIzj0EAwIDSAAwRQIgQq+CE4W4os4v6QAWBsSe
iaTYqch3v0drl6fGwepZcfgCIQDoY3USPq6K6LCflD6sTuxrm/hquvzWaK3rxbQE
EI6MnA==
-----END CERTIFICATE-----
"""
PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4m2nDQXKFxHBL+YW
o0K+r5l4G2w1BsF3/QR9BZYxr0ahRANCAAQm9eixVXUdzUzgZW9LVnJPBrjEY7wY
SsH34IVHj1z6QxSF+Kiq0HgLpV8SgDEXUMtqVQIuYLBjGuEGK8LDcY3Y
-----END PRIVATE KEY-----
"""


class Api:
    def __init__(self, client, auth):
        self.client, self.auth = client, auth

    def get(self, path: str, **query):
        response = self.client.get(f"{BASE}/{path}", params=query, headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict) -> dict:
        response = self.client.post(f"{BASE}/{path}", json=body, headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    def wire(self, url: str) -> dict:
        """A rule on every compound aggregation created, linked to a webhook at ``url``."""
        note = self.post("notifications/configurations", {
            "name": "n", "code": "n", "description": "d", "eventName": "configuration.compoundaggregation.created",
            "alwaysFireEvent": True})
        hook = self.post("integrationdestinations/webhooks", {
            "name": "Receiver", "description": "d", "url": url,
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "pinned-core-secret"}})
        return self.post("integrationconfigs", {"entityType": "Notification", "entityId": note["id"],
                                                "destination": "Webhook", "destinationId": hook["id"]})

    def aggregation(self) -> dict:
        return self.post("compoundaggregations", {"name": "Storage", "code": "storage", "rounding": "UP",
                                                  "quantityPerUnit": 1, "unit": "GB", "calculation": "a"})

    def attempts(self) -> list[dict]:
        response = self.client.get(f"/_mock/deliveries?orgId={ORG}&wait=true")
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture
def api(app, client, auth):
    app.backend.clock.freeze(datetime(2026, 3, 1, tzinfo=timezone.utc))  # one attempt each: retries wait
    return Api(client, auth)


# -- the date filter of the generic lists ------------------------------------------------------

def test_commitments_listed_for_a_date_are_those_active_on_it(api):
    """Active on a date: started on or before it, and ending after it (the end date is the
    first day no longer covered)."""
    account = api.post("accounts", {"name": "Acme", "code": "acme", "emailAddress": "billing@acme.example"})

    def commitment(start: str, end: str) -> str:
        return api.post("commitments", {"accountId": account["id"], "amount": 100, "currency": "USD",
                                        "startDate": start, "endDate": end})["id"]

    starts_that_day = commitment("2024-06-01", "2024-07-01")
    running = commitment("2024-01-01", "2025-01-01")
    commitment("2024-05-01", "2024-06-01")  # ended the day before
    commitment("2024-06-02", "2024-07-01")  # starts the day after
    assert [c["id"] for c in api.get("commitments", date="2024-06-01")["data"]] == [starts_that_day, running]


# -- deliveries to the host's own addresses ---------------------------------------------------

@contextmanager
def resolving(app, table: dict[str, str]):
    """The deliveries' name resolution replaced: each name resolves to one address."""
    def resolve(host, port):
        address = table[host]
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, (address, port))]

    app.backend.deliveries.resolve = resolve
    try:
        yield
    finally:
        del app.backend.deliveries.resolve


@contextmanager
def listening_on_every_address(app, wildcard: str, port: int):
    """As when the mock is served on ``0.0.0.0`` or ``::`` (the command line fills the set)."""
    app.backend.own_addresses.add((wildcard, port))
    try:
        yield
    finally:
        app.backend.own_addresses.discard((wildcard, port))


def host_address(family: int, towards: str) -> str | None:
    """The host's own (non-loopback) address that traffic ``towards`` would leave from, if
    it has one (connecting a UDP socket sends nothing)."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((towards, 9))
            found = ipaddress.ip_address(probe.getsockname()[0].split("%")[0])
    except OSError:
        return None
    return None if found.is_loopback or found.is_link_local or found.is_unspecified else str(found)


def refusal(app, api, monkeypatch, name: str, address: str, wildcard: str) -> str:
    """The error of the one attempt to deliver to http://``name``:4999 when ``name`` resolves
    to ``address`` and the mock listens on ``wildcard``:4999; the allow list holds only
    loopback, so nothing is ever sent off the host."""
    monkeypatch.setattr(app.backend.settings, "webhook_allow", ("127.0.0.0/8",))
    with resolving(app, {name: address}), listening_on_every_address(app, wildcard, 4999):
        api.wire(f"http://{name}:4999/hook")
        api.aggregation()
        [attempt] = api.attempts()
    assert attempt["outcome"] == "failed"
    return attempt["error"]


@pytest.mark.parametrize("family, towards, wildcard", [(socket.AF_INET, "198.51.100.1", "0.0.0.0"),
                                                        (socket.AF_INET6, "2001:db8::1", "::")],
                         ids=["ipv4", "ipv6"])
def test_a_delivery_to_one_of_the_hosts_own_addresses_is_refused_when_the_mock_listens_on_all(
        app, api, monkeypatch, family, towards, wildcard):
    address = host_address(family, towards)
    if address is None:
        pytest.skip("this host has no such address")
    assert refusal(app, api, monkeypatch, "self.example", address, wildcard) == (
        "refused by the webhook policy: self.example:4999 is the mock's own address; deliveries may not call the mock")


def test_a_delivery_to_another_hosts_address_is_not_taken_for_the_mocks_own(app, api, monkeypatch):
    address = "198.51.100.7"  # TEST-NET-2: no host has it
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        with pytest.raises(OSError):
            probe.bind((address, 0))
    assert refusal(app, api, monkeypatch, "far.example", address, "0.0.0.0") == (
        f"refused by the webhook policy: far.example ({address}) is not in the webhook allow list")


# -- https deliveries ----------------------------------------------------------------------------

@pytest.fixture
def pinned_tls(tmp_path):
    """A server context with the pinned.example certificate, and a client context trusting it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text(CERTIFICATE)
    key.write_text(PRIVATE_KEY)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cadata=CERTIFICATE)


def test_an_https_delivery_is_made_through_its_tls_handshake(app, api, monkeypatch, pinned_tls):
    server, trust = pinned_tls
    monkeypatch.setattr(app.backend.deliveries, "ssl_context", trust)
    with receiving(tls=server) as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        with resolving(app, {"pinned.example": "127.0.0.1"}):
            config = api.wire(f"https://pinned.example:{port}/hook")
            api.aggregation()
            attempts = api.attempts()
    assert [(a["outcome"], a["statusCode"]) for a in attempts] == [("delivered", 200)]
    assert [r.headers["Host"] for r in receiver.requests] == [f"pinned.example:{port}"]
    assert api.get(f"integrationconfigs/{config['id']}")["status"] == "COMPLETE"


@contextmanager
def silent_tcp_server():
    """Accepts connections and never says a word (so a TLS handshake never ends)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for connection in held:
            connection.close()


@pytest.fixture(scope="module")
def short_deadline_app():
    return create_app(make_settings(delivery_timeout_seconds=0.5))


def test_a_tls_handshake_that_never_ends_is_cut_off_by_the_attempts_deadline(short_deadline_app):
    app = short_deadline_app
    app.backend.reset()
    app.backend.clock.freeze(datetime(2026, 3, 1, tzinfo=timezone.utc))
    client = app.test_client()
    api = Api(client, bearer_for(client))
    with silent_tcp_server() as port, resolving(app, {"pinned.example": "127.0.0.1"}):
        config = api.wire(f"https://pinned.example:{port}/hook")
        api.aggregation()
        [attempt] = api.attempts()
    assert attempt["statusCode"] is None
    assert attempt["error"] == "ConnectTimeout: the attempt's deadline passed during the TLS handshake"
    assert api.get(f"integrationconfigs/{config['id']}")["error"] == NO_RESPONSE


# -- evaluating a calculation on a stored Event ---------------------------------------------------

def test_a_calculation_runs_on_the_events_old_and_new_values_and_says_what_it_gave(app, api):
    event = app.backend.inject_event(ORG, "configuration.commitment.updated",
                                     new={"id": "c1", "amount": 100}, old={"id": "c1", "amount": 80})

    def evaluate(calculation: str) -> dict:
        return api.post("notifications/evaluate", {"calculation": calculation, "eventId": event["id"]})

    assert evaluate("old.amount == 80 AND new.amount == 100") == {"success": True}
    assert evaluate("old.amount > new.amount") == {
        "success": False, "errorMessage": f"calculation: evaluates to false on Event {event['id']}, not true"}
    assert evaluate("new.id") == {
        "success": False, "errorMessage": f"calculation: evaluates to 'c1' on Event {event['id']}, not true"}


def test_evaluating_without_an_event_is_a_400_naming_both_fields(app):
    # The API's validation answers first over HTTP; the service names the fields all the same.
    with pytest.raises(MockError) as refused:
        notifying.evaluate(app.backend, Caller(ORG, "test-client"), "true", None, None)
    assert refused.value.status == 400
    assert refused.value.message.startswith("eventName or eventId: ")


# -- stopping the clock workers ---------------------------------------------------------------------

def alive(name: str) -> bool:
    return any(thread.name == name and thread.is_alive() for thread in threading.enumerate())


def test_a_stopped_due_worker_has_ended_its_thread():
    clock = Clock(datetime(2026, 3, 1, tzinfo=timezone.utc))
    ran = []
    worker = DueWorker(clock, "pinned-due", ran.append)
    worker.schedule("first", clock.now())
    assert worker.wait_idle() and ran == ["first"]
    assert alive("m3ter-mock-pinned-due")
    worker.stop()
    assert not alive("m3ter-mock-pinned-due")


def test_a_stopped_lane_worker_has_ended_its_dispatcher():
    clock = Clock(datetime(2026, 3, 1, tzinfo=timezone.utc))
    ran = []
    worker = LaneWorker(clock, "pinned-lanes", ran.append, lane_of=lambda item: item, max_lanes=1)
    worker.schedule("first", clock.now())
    assert worker.wait_idle() and ran == ["first"]
    assert alive("m3ter-mock-pinned-lanes")
    worker.stop()
    assert not alive("m3ter-mock-pinned-lanes")
