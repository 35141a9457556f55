"""Faults and latency (``/_mock/faults``): rules matched by operationId, organization and a
body field answer a status, delay, or drop the connection, for the next N calls or with a
seeded probability; the admin API is never faulted; the official SDK retries through an
injected 429 and 503 and succeeds."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mockserver.api import faults as fault_injection
from tests.conftest import ORG, basic

OTHER_ORG = "other-org-0002"


def products(org: str = ORG) -> str:
    return f"/organizations/{org}/products"


def add_rule(client, **rule) -> dict:
    response = client.post("/_mock/faults", json=rule)
    assert response.status_code == 200, response.text
    return response.json()


def stored_products(backend, org: str = ORG) -> list[dict]:
    return list(backend.resources["products"].entities(org))


# -- each action ---------------------------------------------------------------------------

@pytest.mark.allows_server_errors
def test_a_status_fault_answers_instead_of_the_handler_which_never_runs(app, client, auth):
    rule = add_rule(client, operationId="PostProduct", orgId=ORG, action="status", status=503, times=1)

    faulted = client.post(products(), json={"name": "Storage", "code": "storage"}, headers=auth)
    assert faulted.status_code == 503
    assert faulted.headers["content-type"] == "application/json"
    assert faulted.json() == {
        "message": f"injected fault (m3ter-mock fault rule {rule['id']}): Service Unavailable"}
    assert stored_products(app.backend) == []

    created = client.post(products(), json={"name": "Storage", "code": "storage"}, headers=auth)
    assert created.status_code == 200
    assert [p["code"] for p in stored_products(app.backend)] == ["storage"]


def test_a_429_says_retry_after_1_unless_told_and_a_409_carries_its_message(client, auth):
    add_rule(client, operationId="ListProducts", action="status", status=429, times=1)
    add_rule(client, operationId="ListMeters", action="status", status=429, retryAfter=0, times=1)
    rule = add_rule(client, operationId="ListPlans", action="status", status=409, message="plan is locked")

    assert client.get(products(), headers=auth).headers["Retry-After"] == "1"
    assert client.get(f"/organizations/{ORG}/meters", headers=auth).headers["Retry-After"] == "0"
    conflict = client.get(f"/organizations/{ORG}/plans", headers=auth)
    assert conflict.status_code == 409
    assert "Retry-After" not in conflict.headers
    assert conflict.json() == {"message": f"injected fault (m3ter-mock fault rule {rule['id']}): plan is locked"}


def test_a_fault_comes_before_authentication_and_validation(app, client):
    add_rule(client, operationId="PostProduct", action="status", status=429)
    # No token and a body the spec refuses: the rule answers all the same, and nothing is written.
    response = client.post(products(), json={"name": 12})
    assert response.status_code == 429
    assert stored_products(app.backend) == []


def test_a_drop_closes_the_connection_without_an_answer(live_app, live_url):
    live_app.backend.reset()
    with httpx.Client(base_url=live_url, timeout=10) as http:
        token = http.post("/oauth/token", json={"grant_type": "client_credentials"},
                          headers=basic("test-client", "test-secret")).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/_mock/faults", json={"operationId": "PostProduct", "action": "drop",
                                                "times": 1}).status_code == 200
        with pytest.raises(httpx.TransportError):
            http.post(products(), json={"name": "Storage", "code": "storage"}, headers=auth)
        assert stored_products(live_app.backend) == []
        # Spent after one: the next call is served.
        assert http.post(products(), json={"name": "Storage", "code": "storage"},
                         headers=auth).status_code == 200
        [rule] = http.get("/_mock/faults").json()["data"]
        assert (rule["fired"], rule["active"]) == (1, False)


def test_a_body_rule_reads_a_chunked_body_and_hands_it_on_whole(live_app, live_url):
    live_app.backend.reset()
    with httpx.Client(base_url=live_url, timeout=10) as http:
        token = http.post("/oauth/token", json={"grant_type": "client_credentials"},
                          headers=basic("test-client", "test-secret")).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        http.post("/_mock/faults", json={"operationId": "PostProduct", "action": "status", "status": 409,
                                         "bodyField": "code", "bodyEquals": "taken"})

        def chunked(body: bytes):
            yield from (body[i:i + 7] for i in range(0, len(body), 7))  # no Content-Length

        faulted = http.post(products(), content=chunked(b'{"name": "A", "code": "taken"}'), headers=headers)
        assert faulted.status_code == 409
        served = http.post(products(), content=chunked(b'{"name": "Storage", "code": "storage"}'), headers=headers)
        assert served.status_code == 200 and served.json()["name"] == "Storage"
        assert [p["code"] for p in stored_products(live_app.backend)] == ["storage"]


def test_in_process_a_drop_is_a_call_without_a_response(client, auth):
    add_rule(client, operationId="ListProducts", action="drop")
    with pytest.raises(AssertionError, match="did not receive any response"):
        client.get(products(), headers=auth)


def test_a_delay_waits_then_the_call_is_served(client, auth, monkeypatch):
    asked = []

    async def recorded_sleep(seconds):
        asked.append(seconds)

    monkeypatch.setattr(fault_injection, "SLEEP", recorded_sleep)
    add_rule(client, operationId="PostProduct", action="delay", delaySeconds=2.5)
    response = client.post(products(), json={"name": "Storage", "code": "storage"}, headers=auth)
    assert response.status_code == 200 and response.json()["code"] == "storage"
    assert asked == [2.5]


def test_a_delay_is_real_time_on_the_event_loop():
    # Real seconds (not the mock's clock), slept without holding a thread.
    assert fault_injection.SLEEP is asyncio.sleep


def test_a_delayed_call_holds_up_no_other_call(live_app, live_url, monkeypatch):
    live_app.backend.reset()
    entered, release = threading.Event(), threading.Event()

    async def held_sleep(seconds):
        entered.set()
        # Released by the test, not by time: nothing here depends on how fast the machine is.
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)

    monkeypatch.setattr(fault_injection, "SLEEP", held_sleep)
    with httpx.Client(base_url=live_url, timeout=30) as http, ThreadPoolExecutor(1) as pool:
        token = http.post("/oauth/token", json={"grant_type": "client_credentials"},
                          headers=basic("test-client", "test-secret")).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        http.post("/_mock/faults", json={"operationId": "ListProducts", "orgId": ORG,
                                         "action": "delay", "delaySeconds": 30})
        delayed = pool.submit(httpx.get, live_url + products(), headers=auth, timeout=30)
        try:
            assert entered.wait(30)
            # While that call waits: another operation, the same one elsewhere, the admin API.
            assert http.get(f"/organizations/{ORG}/meters", headers=auth).status_code == 200
            assert http.get(products(OTHER_ORG), headers=auth).status_code == 200
            assert http.get("/_mock/faults").status_code == 200
            assert not delayed.done()
        finally:
            release.set()
        assert delayed.result(timeout=30).status_code == 200


# -- when a rule fires -----------------------------------------------------------------------

@pytest.mark.allows_server_errors
def test_the_next_n_calls_are_faulted_then_calls_are_normal_again(client, auth):
    rule = add_rule(client, operationId="ListProducts", action="status", status=500, times=3)
    assert (rule["times"], rule["remaining"], rule["fired"], rule["active"]) == (3, 3, 0, True)

    statuses = [client.get(products(), headers=auth).status_code for _ in range(5)]
    assert statuses == [500, 500, 500, 200, 200]

    [listed] = client.get("/_mock/faults").json()["data"]
    assert (listed["fired"], listed["matched"], listed["remaining"], listed["active"]) == (3, 3, 0, False)


def _pattern(client, auth, calls: int = 40) -> list[bool]:
    return [client.get(products(), headers=auth).status_code == 429 for _ in range(calls)]


def test_a_probability_with_a_seed_fires_on_the_same_calls_every_run(client, auth):
    add_rule(client, operationId="ListProducts", action="status", status=429, probability=0.5, seed=7)
    first = _pattern(client, auth)
    [rule] = client.get("/_mock/faults").json()["data"]
    assert (rule["seed"], rule["probability"]) == (7, 0.5)
    assert rule["matched"] == 40 and rule["fired"] == sum(first)
    assert 0 < sum(first) < 40  # it is a draw, not always or never

    client.delete("/_mock/faults")
    add_rule(client, operationId="ListProducts", action="status", status=429, probability=0.5, seed=7)
    assert _pattern(client, auth) == first

    client.delete("/_mock/faults")
    add_rule(client, operationId="ListProducts", action="status", status=429, probability=0.5, seed=8)
    assert _pattern(client, auth) != first


def test_a_probability_without_a_seed_shows_the_seed_that_replays_it(client, auth):
    drawn = add_rule(client, operationId="ListProducts", action="status", status=429, probability=0.3)
    assert isinstance(drawn["seed"], int)
    first = _pattern(client, auth)
    client.delete("/_mock/faults")
    add_rule(client, operationId="ListProducts", action="status", status=429, probability=0.3, seed=drawn["seed"])
    assert _pattern(client, auth) == first


def test_times_caps_a_probability_rule(client, auth):
    add_rule(client, operationId="ListProducts", action="status", status=429, probability=0.5, seed=7, times=2)
    assert sum(_pattern(client, auth)) == 2


@pytest.mark.allows_server_errors
def test_rules_are_tried_in_order_and_the_first_that_fires_decides(client, auth):
    first = add_rule(client, operationId="ListProducts", action="status", status=429, times=1)
    second = add_rule(client, operationId="ListProducts", action="status", status=503, times=1)
    statuses = [client.get(products(), headers=auth).status_code for _ in range(3)]
    assert statuses == [429, 503, 200]
    counts = {rule["id"]: (rule["matched"], rule["fired"]) for rule in client.get("/_mock/faults").json()["data"]}
    # The second rule was not reached while the first fired.
    assert counts == {first["id"]: (1, 1), second["id"]: (1, 1)}


# -- what a rule matches ---------------------------------------------------------------------

def test_a_body_field_equal_to_a_value(app, client, auth):
    add_rule(client, operationId="PostProduct", action="status", status=409, bodyField="code", bodyEquals="taken")
    add_rule(client, operationId="PostProduct", action="status", status=409,
             bodyField="customFields.tier", bodyEquals="gold")

    assert client.post(products(), json={"name": "A", "code": "taken"}, headers=auth).status_code == 409
    assert client.post(products(), json={"name": "B", "code": "b", "customFields": {"tier": "gold"}},
                       headers=auth).status_code == 409
    assert client.post(products(), json={"name": "C", "code": "c", "customFields": {"tier": "silver"}},
                       headers=auth).status_code == 200
    assert client.post(products(), json={"name": "D", "code": "d"}, headers=auth).status_code == 200
    assert [p["code"] for p in stored_products(app.backend)] == ["c", "d"]
    counts = [(rule["matched"], rule["fired"]) for rule in client.get("/_mock/faults").json()["data"]]
    assert counts == [(1, 1), (1, 1)]


def test_a_body_rule_leaves_other_bodies_and_the_body_limit_alone(app, client, auth):
    add_rule(client, operationId="PostProduct", action="status", status=409, bodyField="code", bodyEquals="taken")
    # Not JSON: no match, and validation answers as ever.
    refused = client.post(products(), content=b"code=taken", headers={**auth, "Content-Type": "application/json"})
    assert refused.status_code == 400
    # Over the body limit (1 MiB): the request limits answer, not the rule.
    huge = client.post(products(), json={"name": "x" * (1024 * 1024), "code": "taken"}, headers=auth)
    assert huge.status_code == 413
    [rule] = client.get("/_mock/faults").json()["data"]
    assert (rule["matched"], rule["fired"]) == (0, 0)


def test_an_organization_rule_faults_that_organization_only(client, auth):
    add_rule(client, orgId=OTHER_ORG, action="status", status=429)
    assert client.get(products(OTHER_ORG), headers=auth).status_code == 429
    assert client.get(f"/organizations/{OTHER_ORG}/meters", headers=auth).status_code == 429
    assert client.get(products(ORG), headers=auth).status_code == 200


def test_an_operation_rule_faults_that_operation_only(client, auth):
    add_rule(client, operationId="ListMeters", action="status", status=429)
    assert client.get(f"/organizations/{ORG}/meters", headers=auth).status_code == 429
    assert client.get(products(), headers=auth).status_code == 200


@pytest.mark.allows_server_errors
def test_the_admin_api_is_never_faulted(client, auth):
    add_rule(client, action="status", status=503)  # every operation of every organization
    assert client.get(products(), headers=auth).status_code == 503
    assert client.get("/_mock/faults").status_code == 200
    assert client.get("/_mock/clock").status_code == 200
    assert client.get("/_mock/deliveries").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    # An admin operation cannot be named by a rule either.
    refused = client.post("/_mock/faults", json={"operationId": "GetClock", "action": "status", "status": 503})
    assert refused.status_code == 400
    assert refused.json() == {"message": "operationId: no operation 'GetClock' in the m3ter API"}


# -- the rules themselves ---------------------------------------------------------------------

def test_rules_are_listed_got_deleted_one_by_one_and_cleared(client):
    first = add_rule(client, operationId="ListProducts", action="status", status=429)
    second = add_rule(client, orgId=OTHER_ORG, action="delay", delaySeconds=1)
    assert [r["id"] for r in client.get("/_mock/faults").json()["data"]] == [first["id"], second["id"]]
    assert [r["id"] for r in client.get(f"/_mock/faults?orgId={OTHER_ORG}").json()["data"]] == [second["id"]]
    assert client.get(f"/_mock/faults/{first['id']}").json() == first

    deleted = client.delete(f"/_mock/faults/{first['id']}")
    assert deleted.status_code == 200 and deleted.json()["id"] == first["id"]
    assert client.get(f"/_mock/faults/{first['id']}").status_code == 404
    assert client.delete(f"/_mock/faults/{first['id']}").status_code == 404
    assert [r["id"] for r in client.get("/_mock/faults").json()["data"]] == [second["id"]]

    assert client.delete("/_mock/faults").json() == {"cleared": 1}
    assert client.get("/_mock/faults").json() == {"data": []}


def test_a_reset_drops_every_rule(client, auth):
    add_rule(client, operationId="ListProducts", action="status", status=429)
    assert client.post("/_mock/reset").status_code == 200
    assert client.get("/_mock/faults").json() == {"data": []}
    assert client.get(products(), headers=auth).status_code == 200


def test_at_most_100_rules_are_kept(client):
    for _ in range(100):
        add_rule(client, operationId="ListProducts", action="status", status=429, times=1)
    refused = client.post("/_mock/faults", json={"action": "drop"})
    assert refused.status_code == 409
    assert len(client.get("/_mock/faults").json()["data"]) == 100


@pytest.mark.parametrize("rule, message", [
    ({"action": "status", "status": 404}, "status: 404 is less than the minimum of 408"),
    ({"action": "status", "status": 418}, "status: must be 408, 409, 429 or a 5xx"),
    ({"action": "status"}, "status: required when action is 'status'"),
    ({"action": "delay"}, "delaySeconds: required when action is 'delay' (more than 0, at most 30)"),
    ({"action": "delay", "delaySeconds": 31}, "delaySeconds: 31 is greater than the maximum of 30"),
    ({"action": "drop", "status": 503}, "status: only when action is 'status'"),
    ({"action": "drop", "operationId": "NoSuchOperation"}, "operationId: no operation 'NoSuchOperation' in the m3ter API"),
    ({"action": "drop", "bodyField": "code"}, "bodyEquals: required with bodyField"),
    ({"action": "drop", "bodyEquals": 1}, "bodyEquals: only with bodyField"),
    ({"action": "drop", "seed": 3}, "seed: only with probability"),
    ({"action": "drop", "probability": 0}, "probability: 0 is less than or equal to the minimum of 0"),
    ({"action": "explode"}, "action: 'explode' is not one of ['status', 'delay', 'drop']"),
])
def test_a_rule_that_cannot_mean_anything_is_a_400_naming_the_field(client, rule, message):
    response = client.post("/_mock/faults", json=rule)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert client.get("/_mock/faults").json() == {"data": []}


# -- the official SDK retries through injected faults ---------------------------------------------

@pytest.mark.allows_server_errors
def test_the_sdk_retries_through_an_injected_429_and_503_and_succeeds(sdk, live_app):
    faults = live_app.backend.faults
    too_many = faults.create({"operationId": "PostProduct", "orgId": ORG, "action": "status", "status": 429,
                              "retryAfter": 0, "times": 1})
    unavailable = faults.create({"operationId": "PostProduct", "orgId": ORG, "action": "status", "status": 503,
                                 "times": 1})

    product = sdk.with_options(max_retries=2).products.create(name="Storage", code="storage")

    assert product.code == "storage"
    assert [(r["id"], r["fired"]) for r in faults.list()] == [(too_many["id"], 1), (unavailable["id"], 1)]
    # The faulted attempts never reached the handler: one product, from the third attempt.
    assert [p["code"] for p in stored_products(live_app.backend)] == ["storage"]


@pytest.mark.allows_server_errors
def test_without_retries_the_sdk_sees_the_injected_fault(sdk, live_app):
    import m3ter

    live_app.backend.faults.create({"operationId": "ListProducts", "action": "status", "status": 503, "times": 1})
    with pytest.raises(m3ter.InternalServerError) as raised:
        sdk.with_options(max_retries=0).products.list()
    assert raised.value.status_code == 503
    assert "injected fault" in raised.value.message
