"""Events, notification rules and signed webhook deliveries, end to end through HTTP."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from urllib.parse import urlsplit

import pytest

from tests.support.receiver import receiving

ORG = "org-notify"
BASE = f"/organizations/{ORG}"
SEED_RULE = ("(new.amountSpent >= ((new.amount*100)/90)) AND "
             "((old.amountSpent <= ((old.amount*100)/90)) OR (old.amountSpent == null))")


def post(client, auth, path, body):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def rule(client, auth, event_name, calculation=None, **extra):
    body = {"name": "Rule", "code": f"rule_{len(client.app_rules)}" if hasattr(client, "app_rules") else extra.pop("code", "rule"),
            "description": "test rule", "eventName": event_name, **extra}
    if calculation is not None:
        body["calculation"] = calculation
    return post(client, auth, "notifications/configurations", body)


def webhook(client, auth, url, secret="s3cr3t-webhook-secret", api_key="key-123", **extra):
    return post(client, auth, "integrationdestinations/webhooks", {
        "name": "Receiver", "description": "test receiver", "url": url,
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": api_key, "secret": secret}, **extra})


def link(client, auth, notification, hook):
    return post(client, auth, "integrationconfigs", {"entityType": "Notification", "entityId": notification["id"],
                                                    "destination": "Webhook", "destinationId": hook["id"]})


def inject(client, event_name, new=None, old=None, wait=True):
    body = {"orgId": ORG, "eventName": event_name}
    if new is not None:
        body["newDto"] = new
    if old is not None:
        body["oldDto"] = old
    response = client.post(f"/_mock/events?wait={str(wait).lower()}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def events(client, auth, query=""):
    response = client.get(f"{BASE}/events?pageSize=100&{query}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def deliveries(client):
    return client.get(f"/_mock/deliveries?orgId={ORG}&wait=true").json()["data"]


def aggregation(client, auth, code="storage"):
    return post(client, auth, "compoundaggregations", {"name": "Storage", "code": code, "rounding": "UP",
                                                      "quantityPerUnit": 1, "unit": "GB", "calculation": "a"})


# -- events -----------------------------------------------------------------------------

def test_entity_changes_are_recorded_as_events(client, auth):
    created = aggregation(client, auth)
    updated = client.put(f"{BASE}/compoundaggregations/{created['id']}", headers=auth,
                         json={"name": "Renamed", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB",
                               "calculation": "a", "version": 1}).json()
    client.delete(f"{BASE}/compoundaggregations/{created['id']}", headers=auth)
    recorded = events(client, auth, f"resourceId={created['id']}")
    assert [e["eventName"] for e in recorded] == [
        "configuration.compoundaggregation.deleted", "configuration.compoundaggregation.updated",
        "configuration.compoundaggregation.created"]  # newest first
    deleted, changed, made = (e["m3terEvent"]["eventData"] for e in recorded)
    assert made == {"newDto": {**created, "orgId": ORG}}
    assert changed["oldDto"]["name"] == "Storage" and changed["newDto"]["name"] == "Renamed"
    assert changed["newDto"]["version"] == updated["version"] == 2
    assert set(deleted) == {"oldDto"}
    one = client.get(f"{BASE}/events/{recorded[0]['id']}", headers=auth)
    assert one.status_code == 200 and one.json() == recorded[0]
    assert client.get(f"{BASE}/events/no-such-event", headers=auth).status_code == 404


def test_rejected_changes_record_no_event(client, auth):
    aggregation(client, auth, code="dup")
    client.post(f"{BASE}/compoundaggregations", headers=auth, json={"name": "x", "code": "dup", "rounding": "UP",
                                                                  "quantityPerUnit": 1, "unit": "u", "calculation": "a"})
    assert len(events(client, auth)) == 1


def test_event_list_pages_and_filters(client, auth):
    for n in range(5):
        aggregation(client, auth, code=f"c{n}")
    inject(client, "configuration.commitment.created", new={"id": "c-1", "accountId": "acc-1", "amount": 5})
    everything = events(client, auth)
    assert len(everything) == 6
    seen, token = [], None
    while True:
        query = {"pageSize": 2, **({"nextToken": token} if token else {})}
        body = client.get(f"{BASE}/events", params=query, headers=auth).json()
        seen += [e["id"] for e in body["data"]]
        token = body.get("nextToken")
        if not token:
            break
    assert seen == [e["id"] for e in everything]
    assert [e["eventName"] for e in events(client, auth, "accountId=acc-1")] == ["configuration.commitment.created"]
    assert len(events(client, auth, "eventName=configuration.compoundaggregation.created")) == 5
    assert len(events(client, auth, "eventType=Configuration")) == 6
    assert events(client, auth, "eventType=Notification") == []
    assert len(events(client, auth, "includeActioned=false")) == 6
    picked = [everything[1]["id"], everything[4]["id"]]
    assert [e["id"] for e in events(client, auth, f"ids={','.join(picked)}")] == picked


def test_ids_cannot_be_combined_with_other_filters(client, auth):
    response = client.get(f"{BASE}/events?ids=a&eventName=x", headers=auth)
    assert response.status_code == 400 and "ids" in response.json()["message"]


# -- rules ------------------------------------------------------------------------------

def test_calculation_is_checked_when_saved(client, auth):
    base = {"name": "r", "code": "r", "description": "d", "eventName": "configuration.commitment.updated"}
    bad_syntax = client.post(f"{BASE}/notifications/configurations", headers=auth,
                             json={**base, "calculation": "(new.amount > 1"})
    assert bad_syntax.status_code == 400 and "line 1, column" in bad_syntax.json()["message"]
    unknown = client.post(f"{BASE}/notifications/configurations", headers=auth,
                          json={**base, "calculation": "new.amont > 1"})
    assert unknown.status_code == 400 and "new.amont" in unknown.json()["message"]
    assert client.get(f"{BASE}/notifications/configurations", headers=auth).json()["data"] == []
    assert post(client, auth, "notifications/configurations", {**base, "calculation": SEED_RULE})["calculation"] == SEED_RULE


AMOUNTS = [1000, 0]
SPENT = [None, 0, 500, 899, 900, 1111, 1112, 2000]


def seed_rule_is_true(new_spent, new_amount, old_spent, old_amount) -> bool:
    """The seed's rule, computed independently with m3ter's null semantics."""
    if new_spent is None:
        return False
    new_part = new_spent >= new_amount * 100 / 90
    old_part = (old_spent is not None and old_spent <= old_amount * 100 / 90) or old_spent is None
    return new_part and old_part


CASES = list(itertools.product(SPENT, AMOUNTS, SPENT, AMOUNTS))


def test_seed_commitment_rule_fires_exactly_where_true(client, auth):
    note = post(client, auth, "notifications/configurations", {
        "name": "Commitment has under 10% remaining", "description": "Commitment amount fell below 10%",
        "code": "under_10_percent", "eventName": "configuration.commitment.updated", "calculation": SEED_RULE})
    expected = []
    for n, (new_spent, new_amount, old_spent, old_amount) in enumerate(CASES):
        new = {"id": f"c{n}", "amount": new_amount}
        old = {"id": f"c{n}", "amount": old_amount}
        if new_spent is not None:
            new["amountSpent"] = new_spent
        if old_spent is not None:
            old["amountSpent"] = old_spent
        inject(client, "configuration.commitment.updated", new=new, old=old, wait=False)
        if seed_rule_is_true(new_spent, new_amount, old_spent, old_amount):
            expected.append(f"c{n}")
    fired = events(client, auth, f"notificationId={note['id']}")
    fired += [] if len(fired) < 100 else pytest.fail("more than one page of notifications")
    assert sorted(e["m3terEvent"]["eventData"]["newDto"]["id"] for e in fired) == sorted(expected)
    assert 0 < len(expected) < len(CASES)
    assert all(e["m3terEvent"]["notification"]["code"] == "under_10_percent" for e in fired)
    assert len(events(client, auth, "notificationCode=under_10_percent")) == len(expected)


def test_always_fire_and_inactive_rules(client, auth):
    always = post(client, auth, "notifications/configurations", {
        "name": "a", "code": "always", "description": "d", "eventName": "configuration.account.created",
        "calculation": "new.name == 'never'", "alwaysFireEvent": True})
    inactive = post(client, auth, "notifications/configurations", {
        "name": "i", "code": "inactive", "description": "d", "eventName": "configuration.account.created",
        "active": False})
    inject(client, "configuration.account.created", new={"id": "a1", "name": "Acme"})
    assert len(events(client, auth, f"notificationId={always['id']}")) == 1
    assert events(client, auth, f"notificationId={inactive['id']}") == []


def test_evaluate(client, auth):
    def evaluate(**body):
        response = client.post(f"{BASE}/notifications/evaluate", json=body, headers=auth)
        assert response.status_code == 200, response.text
        return response.json()

    assert evaluate(calculation=SEED_RULE, eventName="configuration.commitment.updated") == {"success": True}
    broken = evaluate(calculation="new.amount >", eventName="configuration.commitment.updated")
    assert broken["success"] is False and "syntax error" in broken["errorMessage"]
    event = inject(client, "configuration.commitment.updated",
                   new={"id": "c", "amount": 100, "amountSpent": 200}, old={"id": "c", "amount": 100})
    assert evaluate(calculation=SEED_RULE, eventId=event["id"]) == {"success": True}
    assert evaluate(calculation="new.amountSpent < 1", eventId=event["id"])["success"] is False
    missing = client.post(f"{BASE}/notifications/evaluate", json={"calculation": "true"}, headers=auth)
    assert missing.status_code == 400
    assert client.post(f"{BASE}/notifications/evaluate", json={"calculation": "true", "eventId": "nope"},
                       headers=auth).status_code == 404


# -- deliveries -------------------------------------------------------------------------

def independent_signature(secret: str, url: str, api_key: str, timestamp: str, body: bytes) -> str:
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    message = f"{base}|{parts.query}|{api_key}|{timestamp}|".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def wire(client, auth, url, event_name="configuration.compoundaggregation.created", **hook_extra):
    note = post(client, auth, "notifications/configurations", {
        "name": "n", "code": "n", "description": "d", "eventName": event_name, "alwaysFireEvent": True})
    hook = webhook(client, auth, url, **hook_extra)
    config = link(client, auth, note, hook)
    return note, hook, config


def test_delivery_is_signed(client, auth):
    with receiving(path="/hooks/m3ter") as receiver:
        url = receiver.url + "?team=billing&env=test"
        note, hook, config = wire(client, auth, url)
        created = aggregation(client, auth)
        assert receiver.wait_for(1)
        got = receiver.requests[0]
    assert got.path == "/hooks/m3ter?team=billing&env=test"
    assert got.headers["X-m3ter-apikey"] == "key-123"
    expected = independent_signature("s3cr3t-webhook-secret", url, "key-123", got.headers["X-m3ter-timestamp"], got.body)
    assert got.headers["X-m3ter-signature"] == expected
    payload = json.loads(got.body)
    assert payload["m3terEvent"]["notification"]["id"] == note["id"]
    assert payload["m3terEvent"]["eventData"]["newDto"]["id"] == created["id"]
    attempts = deliveries(client)
    assert [(a["attempt"], a["statusCode"], a["outcome"]) for a in attempts] == [(1, 200, "delivered")]
    run = client.get(f"{BASE}/integrationconfigs/{config['id']}", headers=auth).json()
    assert run["status"] == "COMPLETE" and run["url"] == url


def test_retries_on_the_clock_deliver_exactly_once(app, client, auth):
    app.backend.clock.freeze()
    with receiving([503, 503]) as receiver:
        wire(client, auth, receiver.url)
        aggregation(client, auth)
        assert [a["outcome"] for a in deliveries(client)] == ["retrying"]
        # the default back-off (README): 1 s, then 2 s
        assert client.post("/_mock/clock", json={"advanceSeconds": 1}).status_code == 200
        assert [a["outcome"] for a in deliveries(client)] == ["retrying", "retrying"]
        client.post("/_mock/clock", json={"advanceSeconds": 2})
        assert [a["outcome"] for a in deliveries(client)] == ["retrying", "retrying", "delivered"]
        client.post("/_mock/clock", json={"advanceSeconds": 3600})
        assert len(deliveries(client)) == 3
        assert [r.status for r in receiver.requests] == [503, 503, 200]
        assert len(receiver.accepted) == 1
        bodies = {r.body for r in receiver.requests}
        assert len(bodies) == 1  # the same notification each time


def test_exhausted_retries_record_an_integration_error_that_can_notify(app, client, auth):
    app.backend.clock.freeze()
    attempts = 5  # --delivery-attempts' default (README)
    with receiving([500] * 10) as broken, receiving() as watcher:
        note, hook, config = wire(client, auth, broken.url)
        alarm = post(client, auth, "notifications/configurations", {
            "name": "alarm", "code": "alarm", "description": "d", "eventName": "integration.perform.error",
            "calculation": "new.attempts >= 5"})
        link(client, auth, alarm, webhook(client, auth, watcher.url, code="watch"))
        aggregation(client, auth)
        client.post("/_mock/clock", json={"advanceSeconds": 3600})
        assert len(broken.requests) == attempts
        errors = events(client, auth, "eventName=integration.perform.error&eventType=IntegrationEvent")
        assert len(errors) == 1
        detail = errors[0]["m3terEvent"]["eventData"]["newDto"]
        assert detail["attempts"] == attempts and detail["statusCode"] == 500 and detail["entityId"] == note["id"]
        assert watcher.wait_for(1) and len(watcher.requests) == 1
    run = client.get(f"{BASE}/integrationconfigs/{config['id']}", headers=auth).json()
    assert run["status"] == "ERROR" and run["error"] == "HTTP 500"


def test_4xx_is_not_retried(app, client, auth):
    app.backend.clock.freeze()
    with receiving([404]) as receiver:
        wire(client, auth, receiver.url)
        aggregation(client, auth)
        client.post("/_mock/clock", json={"advanceSeconds": 3600})
        assert len(receiver.requests) == 1
    assert [a["outcome"] for a in deliveries(client)] == ["failed"]


def test_unreachable_receiver_is_retried_then_fails(app, client, auth):
    app.backend.clock.freeze()
    with receiving() as receiver:
        dead_url = receiver.url
    wire(client, auth, dead_url)
    aggregation(client, auth)
    client.post("/_mock/clock", json={"advanceSeconds": 3600})
    attempts = deliveries(client)
    assert [a["outcome"] for a in attempts][-1] == "failed"
    assert len(attempts) == 5  # --delivery-attempts' default (README)
    assert all(a["statusCode"] is None and a["error"] for a in attempts)


@pytest.mark.parametrize("switch_off", ["webhook", "config", "rule"])
def test_nothing_is_sent_when_switched_off(client, auth, switch_off):
    with receiving() as receiver:
        note, hook, config = wire(client, auth, receiver.url)
        if switch_off == "webhook":
            assert client.put(f"{BASE}/integrationdestinations/webhooks/{hook['id']}/active?active=false",
                              headers=auth).json()["active"] is False
        elif switch_off == "config":
            assert client.post(f"/_mock/organizations/{ORG}/integrationconfigs/{config['id']}/disable").json()["enabled"] is False
            assert client.get(f"{BASE}/integrationconfigs/{config['id']}", headers=auth).json()["status"] == "DISABLED"
        else:
            client.put(f"{BASE}/notifications/configurations/{note['id']}", headers=auth, json={
                "name": "n", "code": "n", "description": "d", "eventName": "configuration.compoundaggregation.created",
                "alwaysFireEvent": True, "active": False, "version": note["version"]})
        aggregation(client, auth)
        assert deliveries(client) == []
        assert receiver.requests == []
        # switched back on, the next change is delivered
        if switch_off == "config":
            client.post(f"{BASE}/integrationconfigs/{config['id']}/enable", headers=auth)
        elif switch_off == "webhook":
            client.put(f"{BASE}/integrationdestinations/webhooks/{hook['id']}/active?active=true", headers=auth)
        else:
            client.put(f"{BASE}/notifications/configurations/{note['id']}", headers=auth, json={
                "name": "n", "code": "n", "description": "d", "eventName": "configuration.compoundaggregation.created",
                "alwaysFireEvent": True, "active": True, "version": note["version"] + 1})
        aggregation(client, auth, code="second")
        assert receiver.wait_for(1) and len(receiver.requests) == 1


def test_secret_never_appears_after_creation(client, auth):
    secret = "ultra-secret-value-9f8e7d"
    hook = webhook(client, auth, "http://127.0.0.1:9/x", secret=secret)
    assert hook["credentials"]["secret"] == secret
    texts = [
        client.get(f"{BASE}/integrationdestinations/webhooks/{hook['id']}", headers=auth).text,
        client.get(f"{BASE}/integrationdestinations/webhooks", headers=auth).text,
        client.put(f"{BASE}/integrationdestinations/webhooks/{hook['id']}/active?active=true", headers=auth).text,
        client.put(f"{BASE}/integrationdestinations/webhooks/{hook['id']}", headers=auth, json={
            "name": "h", "description": "d", "url": "http://127.0.0.1:9/y", "version": hook["version"],
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k2", "secret": secret}}).text,
        client.get(f"{BASE}/events", headers=auth).text,
        client.get("/_mock/deliveries").text,
        client.delete(f"{BASE}/integrationdestinations/webhooks/{hook['id']}", headers=auth).text,
    ]
    assert all(secret not in text for text in texts)


def test_admin_clock(client):
    frozen = client.post("/_mock/clock", json={"freeze": True, "at": "2030-01-01T00:00:00Z"}).json()
    assert frozen == {"now": "2030-01-01T00:00:00.000Z", "frozen": True}
    assert client.post("/_mock/clock", json={"advanceSeconds": 90}).json()["now"] == "2030-01-01T00:01:30.000Z"
    assert client.post("/_mock/clock", json={"at": "2029-01-01T00:00:00Z"}).status_code == 400
    assert client.post("/_mock/clock", json={"advanceSeconds": -1}).status_code == 400
    assert client.post("/_mock/clock", json={"freeze": False}).json()["frozen"] is False


def test_admin_inject_rejects_unknown_event_types(client):
    response = client.post("/_mock/events", json={"orgId": ORG, "eventName": "configuration.unicorn.updated"})
    assert response.status_code == 400 and "eventName" in response.json()["message"]


def test_admin_reset_empties_everything(client, auth):
    aggregation(client, auth)
    assert client.post("/_mock/reset").status_code == 200
    assert client.get(f"{BASE}/compoundaggregations", headers=auth).json() == {"data": []}
    assert events(client, auth) == []
