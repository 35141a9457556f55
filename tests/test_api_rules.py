"""The core rules, through HTTP, in-process: versioning, codes, references, schedules,
auth, pagination cursors and bad input. Every rejected request leaves the store as it was."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import basic, bearer_for
from tests.support.state import unchanged

ORG = "org-rules"
BASE = f"/organizations/{ORG}"
ROLE = "arn:aws:iam::123456789012:role/m3ter-export"


def aggregation(**overrides):
    body = {"name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a + b"}
    body.update(overrides)
    return body


def create(client, auth, path, body):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


# -- versioning and codes ---------------------------------------------------------------

def test_put_without_version_is_400_and_changes_nothing(app, client, auth):
    entity = create(client, auth, "compoundaggregations", aggregation())
    def attempt():
        response = client.put(f"{BASE}/compoundaggregations/{entity['id']}", json=aggregation(name="New"), headers=auth)
        assert response.status_code == 400
        assert "version" in response.json()["message"]
    unchanged(app, attempt)


def test_stale_version_is_409_and_changes_nothing(app, client, auth):
    entity = create(client, auth, "compoundaggregations", aggregation())
    ok = client.put(f"{BASE}/compoundaggregations/{entity['id']}", json=aggregation(name="B", version=1), headers=auth)
    assert ok.json()["version"] == 2
    def attempt():
        response = client.put(f"{BASE}/compoundaggregations/{entity['id']}", json=aggregation(name="C", version=1), headers=auth)
        assert response.status_code == 409
    unchanged(app, attempt)


def test_put_replaces_every_writable_field_and_keeps_audit(client, auth):
    entity = create(client, auth, "compoundaggregations", aggregation(code="storage", customFields={"a": 1}))
    body = aggregation(name="Replaced", version=1, dtCreated="1999-01-01T00:00:00Z", createdBy="evil", id="other")
    updated = client.put(f"{BASE}/compoundaggregations/{entity['id']}", json=body, headers=auth).json()
    assert updated["name"] == "Replaced"
    assert "code" not in updated and "customFields" not in updated  # full replacement
    assert updated["id"] == entity["id"]
    assert updated["dtCreated"] == entity["dtCreated"] and updated["createdBy"] == "test-client"


def test_duplicate_code_is_409(app, client, auth):
    create(client, auth, "compoundaggregations", aggregation(code="dup"))
    def attempt():
        response = client.post(f"{BASE}/compoundaggregations", json=aggregation(code="dup"), headers=auth)
        assert response.status_code == 409 and "dup" in response.json()["message"]
    unchanged(app, attempt)
    # the same code in another organization is fine
    assert client.post("/organizations/other/compoundaggregations", json=aggregation(code="dup"), headers=auth).status_code == 200


def test_delete_returns_entity_then_404(client, auth):
    entity = create(client, auth, "compoundaggregations", aggregation())
    deleted = client.delete(f"{BASE}/compoundaggregations/{entity['id']}", headers=auth)
    assert deleted.status_code == 200 and deleted.json()["id"] == entity["id"]
    assert client.get(f"{BASE}/compoundaggregations/{entity['id']}", headers=auth).status_code == 404
    assert client.delete(f"{BASE}/compoundaggregations/{entity['id']}", headers=auth).status_code == 404


def test_orgs_are_isolated(client, auth):
    entity = create(client, auth, "compoundaggregations", aggregation())
    assert client.get(f"/organizations/elsewhere/compoundaggregations/{entity['id']}", headers=auth).status_code == 404
    assert client.get("/organizations/elsewhere/compoundaggregations", headers=auth).json() == {"data": []}


# -- lists ------------------------------------------------------------------------------

def test_pages_are_stable_and_last_page_has_no_token(client, auth):
    ids = [create(client, auth, "compoundaggregations", aggregation(code=f"c{n}"))["id"] for n in range(5)]
    seen, token = [], None
    while True:
        query = {"pageSize": 2, **({"nextToken": token} if token else {})}
        body = client.get(f"{BASE}/compoundaggregations", params=query, headers=auth).json()
        seen += [e["id"] for e in body["data"]]
        token = body.get("nextToken")
        if not token:
            break
    assert seen == ids


def test_repeated_and_comma_joined_array_params(client, auth):
    ids = [create(client, auth, "compoundaggregations", aggregation(code=f"c{n}"))["id"] for n in range(4)]
    repeated = client.get(f"{BASE}/compoundaggregations?ids={ids[0]}&ids={ids[2]}", headers=auth).json()
    joined = client.get(f"{BASE}/compoundaggregations?ids={ids[2]},{ids[0]}", headers=auth).json()
    assert [e["id"] for e in repeated["data"]] == [e["id"] for e in joined["data"]] == [ids[0], ids[2]]
    codes = client.get(f"{BASE}/compoundaggregations?codes=c1,c3", headers=auth).json()
    assert [e["code"] for e in codes["data"]] == ["c1", "c3"]


@pytest.mark.parametrize("mutate", [lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
                                    lambda t: "garbage", lambda t: t.split(".")[0]])
def test_tampered_token_is_400(client, auth, mutate):
    for n in range(3):
        create(client, auth, "compoundaggregations", aggregation(code=f"t{n}"))
    token = client.get(f"{BASE}/compoundaggregations?pageSize=1", headers=auth).json()["nextToken"]
    response = client.get(f"{BASE}/compoundaggregations", params={"nextToken": mutate(token)}, headers=auth)
    assert response.status_code == 400 and "nextToken" in response.json()["message"]


def test_token_from_another_list_is_400(client, auth):
    for n in range(3):
        create(client, auth, "compoundaggregations", aggregation(code=f"f{n}"))
    token = client.get(f"{BASE}/compoundaggregations?pageSize=1", headers=auth).json()["nextToken"]
    for path in ["/organizations/other-org/compoundaggregations", f"{BASE}/notifications/configurations",
                 f"{BASE}/compoundaggregations?codes=f1"]:
        sep = "&" if "?" in path else "?"
        assert client.get(f"{path}{sep}nextToken={token}", headers=auth).status_code == 400


def test_notification_filters(client, auth):
    base = {"description": "d", "eventName": "configuration.commitment.updated"}
    on = create(client, auth, "notifications/configurations", {**base, "name": "on", "code": "on"})
    off = create(client, auth, "notifications/configurations", {**base, "name": "off", "code": "off", "active": False})
    other = create(client, auth, "notifications/configurations",
                   {**base, "name": "x", "code": "x", "eventName": "configuration.account.created"})
    def ids(query):
        return [e["id"] for e in client.get(f"{BASE}/notifications/configurations?{query}", headers=auth).json()["data"]]
    assert ids("active=true") == [on["id"], other["id"]]
    assert ids("active=false") == [off["id"]]
    assert ids("eventName=configuration.account.created") == [other["id"]]


# -- references -------------------------------------------------------------------------

def destination(client, auth):
    return create(client, auth, "dataexports/destinations", {"bucketName": "bucket", "iamRoleArn": ROLE})


def schedule(**overrides):
    body = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"], "name": "Nightly",
            "code": "nightly", "scheduleType": "DAY", "period": 1, "offset": 2}
    body.update(overrides)
    return body


def test_schedule_needs_existing_destinations(app, client, auth):
    def attempt():
        response = client.post(f"{BASE}/dataexports/schedules", json=schedule(destinationIds=["nope"]), headers=auth)
        assert response.status_code == 400 and "destinationIds" in response.json()["message"]
    unchanged(app, attempt)


def test_destination_in_use_cannot_be_deleted(app, client, auth):
    dest = destination(client, auth)
    sched = create(client, auth, "dataexports/schedules", schedule(destinationIds=[dest["id"]]))
    unchanged(app, lambda: client.delete(f"{BASE}/dataexports/destinations/{dest['id']}", headers=auth).status_code == 409
              or pytest.fail("expected 409"))
    client.delete(f"{BASE}/dataexports/schedules/{sched['id']}", headers=auth)
    assert client.delete(f"{BASE}/dataexports/destinations/{dest['id']}", headers=auth).status_code == 200


def test_destination_kinds_and_defaults(client, auth):
    s3 = destination(client, auth)
    assert (s3["destinationType"], s3["partitionOrder"], s3["name"]) == ("S3", "TIME_FIRST", "bucket")
    gcs = create(client, auth, "dataexports/destinations", {"destinationType": "GCS", "bucketName": "gcs-bucket",
                                                             "projectNumber": "1", "poolId": "p", "providerId": "q"})
    assert gcs["destinationType"] == "GCS" and "iamRoleArn" not in gcs
    mixed = client.post(f"{BASE}/dataexports/destinations", headers=auth,
                        json={"destinationType": "GCS", "bucketName": "b-b", "iamRoleArn": ROLE})
    assert mixed.status_code == 400


@pytest.mark.parametrize(("body", "field"), [
    ({"destination": "Webhook", "destinationId": "missing", "entityType": "Notification"}, "destinationId"),
    ({"destination": "Webhook", "entityType": "Notification", "entityId": "missing"}, "entityId"),
])
def test_integration_config_references_must_exist(app, client, auth, body, field):
    def attempt():
        response = client.post(f"{BASE}/integrationconfigs", json=body, headers=auth)
        assert response.status_code == 400 and field in response.json()["message"]
    unchanged(app, attempt)


def test_integration_config_run_view_enable_and_lookup(client, auth):
    note = create(client, auth, "notifications/configurations",
                  {"name": "n", "code": "n", "description": "d", "eventName": "configuration.commitment.updated"})
    hook = create(client, auth, "integrationdestinations/webhooks", {
        "name": "h", "description": "d", "url": "http://127.0.0.1:9/h",
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "s"}})
    config = create(client, auth, "integrationconfigs", {"destination": "Webhook", "destinationId": hook["id"],
                                                        "entityType": "Notification", "entityId": note["id"]})
    assert config["enabled"] is True
    run = client.get(f"{BASE}/integrationconfigs/{config['id']}", headers=auth).json()
    assert run["status"] == "WAITING" and run["entityId"] == note["id"]
    found = client.get(f"{BASE}/integrationconfigs/entity/Notification?entityId={note['id']}", headers=auth)
    assert found.status_code == 200 and found.json()["id"] == config["id"]
    assert client.get(f"{BASE}/integrationconfigs/entity/Account", headers=auth).status_code == 404
    assert client.post(f"{BASE}/integrationconfigs/{config['id']}/enable", headers=auth).json()["enabled"] is True
    listed = client.get(f"{BASE}/integrationconfigs?destinationId={hook['id']}", headers=auth).json()["data"]
    assert [c["id"] for c in listed] == [config["id"]]


def test_notification_event_name_must_be_an_event_type(app, client, auth):
    def attempt():
        response = client.post(f"{BASE}/notifications/configurations", headers=auth,
                               json={"name": "n", "code": "n", "description": "d", "eventName": "configuration.unicorn.created"})
        assert response.status_code == 400 and "eventName" in response.json()["message"]
    unchanged(app, attempt)


# -- schedules --------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "period", "offset", "cron"), [
    ("DAY", 1, 2, "0 2 * * *"), ("HOUR", 2, 15, "15 */2 * * *"), ("MINUTE", 15, None, "*/15 * * * *")])
def test_schedule_derives_cron(client, auth, kind, period, offset, cron):
    body = schedule(scheduleType=kind, period=period)
    body.pop("offset")
    if offset is not None:
        body["offset"] = offset
    created = create(client, auth, "dataexports/schedules", body)
    assert created["cronExpression"] == cron and created["scheduleType"] == kind


@pytest.mark.parametrize(("overrides", "field"), [
    ({"scheduleType": "MINUTE", "period": 5, "offset": None}, "period"),
    ({"scheduleType": "DAY", "period": 4}, "period"),
    ({"scheduleType": "MINUTE", "period": 15, "offset": 3}, "offset"),
    ({"scheduleType": "DAY", "period": 1, "offset": 24}, "offset"),
])
def test_schedule_frequency_bounds(app, client, auth, overrides, field):
    body = {k: v for k, v in schedule(**overrides).items() if v is not None}
    def attempt():
        response = client.post(f"{BASE}/dataexports/schedules", json=body, headers=auth)
        assert response.status_code == 400
        assert response.json()["message"].startswith(field)
    unchanged(app, attempt)


def test_sdk_shaped_schedule_is_ad_hoc(client, auth):
    created = create(client, auth, "dataexports/schedules", {"sourceType": "USAGE", "timePeriod": "TODAY"})
    assert created["scheduleType"] == "AD_HOC" and "cronExpression" not in created
    assert created["exportFileFormat"] == "CSV"


# -- auth -------------------------------------------------------------------------------

def test_token_by_form_body(client):
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("a", "b"))
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic bm9jb2xvbg=="}, basic("", "x")])
def test_token_needs_basic_credentials(client, headers):
    response = client.post("/oauth/token", json={"grant_type": "client_credentials"}, headers=headers)
    assert response.status_code == 401 and "message" in response.json()


def test_wrong_grant_type_is_400(client):
    response = client.post("/oauth/token", json={"grant_type": "password"}, headers=basic("a", "b"))
    assert response.status_code == 400 and "grant_type" in response.json()["message"]


def test_token_expires_by_the_clock(app, client):
    app.backend.clock.freeze()
    headers = bearer_for(client)
    assert client.get(f"{BASE}/compoundaggregations", headers=headers).status_code == 200
    app.backend.clock.advance(timedelta(hours=5, seconds=1))  # tokens last 5 hours (README)
    response = client.get(f"{BASE}/compoundaggregations", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_forged_token_is_401(client):
    response = client.get(f"{BASE}/compoundaggregations", headers={"Authorization": "Bearer m3mock.eyJjIjoieCJ9.0000"})
    assert response.status_code == 401


# -- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "status", "needle"), [
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, ""),
    ({"content": b"\xff\xfe\x00", "headers": {"Content-Type": "application/json"}}, 400, "UTF-8"),
    ({"content": b"name=x", "headers": {"Content-Type": "text/plain"}}, 415, ""),
    ({"json": aggregation(quantityPerUnit="one")}, 400, "quantityPerUnit"),
    ({"json": aggregation(quantityPerUnit=0)}, 400, "quantityPerUnit"),
    ({"json": aggregation(name="x" * 201)}, 400, "name"),
    ({"json": aggregation(code="9lives")}, 400, "code"),
    ({"json": {k: v for k, v in aggregation().items() if k != "unit"}}, 400, "unit"),
    ({"json": aggregation(productId="short")}, 400, "productId"),
    ({"json": aggregation(customFields={"nested": {"a": 1}})}, 400, "customFields"),
])
def test_bad_bodies_are_clear_4xx_and_change_nothing(app, client, auth, kwargs, status, needle):
    headers = {**auth, **kwargs.pop("headers", {})}
    def attempt():
        response = client.post(f"{BASE}/compoundaggregations", headers=headers, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert needle in response.json()["message"]
    unchanged(app, attempt)


def test_oneof_errors_name_the_field_of_the_meant_shape(client, auth):
    response = client.post(f"{BASE}/dataexports/schedules", json={"sourceType": "OPERATIONAL"}, headers=auth)
    assert response.status_code == 400 and "operationalDataTypes" in response.json()["message"]
    response = client.post(f"{BASE}/dataexports/schedules", json={"sourceType": "USAGE", "timePeriod": "SOMETIME"}, headers=auth)
    assert response.status_code == 400 and "timePeriod" in response.json()["message"]


@pytest.mark.parametrize("query", ["pageSize=0", "pageSize=101", "pageSize=ten", "unknownFilter=1"])
def test_bad_query_is_400(client, auth, query):
    response = client.get(f"{BASE}/compoundaggregations?{query}", headers=auth)
    assert response.status_code == 400


def test_control_characters_in_path_are_400(client, auth):
    assert client.get(f"{BASE}/compoundaggregations/a%0Ab", headers=auth).status_code == 400


def test_method_not_allowed_lists_allowed_methods(client, auth):
    response = client.patch(f"{BASE}/compoundaggregations", headers=auth)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, OPTIONS, POST"
    options = client.options(f"{BASE}/compoundaggregations/abc")
    assert options.status_code == 204 and options.headers["Allow"] == "DELETE, GET, OPTIONS, PUT"


def test_unknown_path_is_json_404(client, auth):
    response = client.get(f"{BASE}/no-such-thing", headers=auth)
    assert response.status_code == 404 and "message" in response.json()


def test_events_fields_unknown_event_is_400(client, auth):
    response = client.get(f"{BASE}/events/fields?eventName=configuration.nope.created", headers=auth)
    assert response.status_code == 400 and "eventName" in response.json()["message"]


def test_webhook_url_must_be_http_with_host(app, client, auth):
    for url in ["ftp://example.com/x", "http://", "not a url", "https://:80/x"]:
        response = client.post(f"{BASE}/integrationdestinations/webhooks", headers=auth, json={
            "name": "h", "description": "d", "url": url,
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "s"}})
        assert response.status_code == 400 and "url" in response.json()["message"], url


@pytest.mark.parametrize("value", ["notadate", "2024-13-45", "2024-02-30T00:00:00Z"])
def test_a_date_parameter_that_is_not_a_date_is_a_400_naming_it(client, auth, value):
    response = client.get("/organizations/org-dates/charges", params={"billDate": value}, headers=auth)
    assert response.status_code == 400
    assert response.json()["message"] == f"billDate: {value!r} is not a 'date'"


def test_a_date_parameter_that_is_a_date_is_served(client, auth):
    response = client.get("/organizations/org-dates/charges", params={"billDate": "2024-02-29"}, headers=auth)
    assert response.status_code == 200 and response.json() == {"data": []}
