"""Backend behaviour that mutation testing found unpinned, outside bill runs and state: the
user an accepted invitation makes, contract end-dating applied to child accounts, who
invites, unmanaged permission policies, a Lookup Table Revision's item count across its
update, the data version an entry's write answers, JSONL downloads' media type, a charge
preview's period, the defaults of a stored bill, webhook credentials across an update, every
delivery attempt as recorded and the run that follows it, the integration failure Event's
URL, credentials in a webhook URL, the delivery counts of a cleared queue, the clock set from
Python, Events listed by id page by page, measurements whose account cannot be a code, ingest
failure Events by file, usage exports' start date, the names of the workers' threads, the
generic engine's custom steps (exclusive reference pairs, the product a plan is for, account
loops, a balance's amount), the admin clock's and event injection's refusals, deletes of
referenced entities, and a token lifetime set in the settings."""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from mockserver.app import create_app
from mockserver.backend.actions import billing
from mockserver.backend.crud import Caller
from mockserver.domain import signing
from mockserver.domain.errors import MockError
from tests.conftest import make_settings
from tests.support.org_calls import AppCalls
from tests.support.receiver import receiving

ORG = "org-pinned-misc"
CLIENT = "test-client"


class Api(AppCalls):
    org = ORG
    webhook_secret = "pinned-misc-secret"

    def wire(self, url: str) -> dict:
        """A rule on every compound aggregation created, linked to a webhook at ``url``."""
        note = self.ok("post", "/notifications/configurations", {
            "name": "n", "code": "n", "description": "d", "eventName": "configuration.compoundaggregation.created",
            "alwaysFireEvent": True})
        hook = self.webhook(url)
        return self.ok("post", "/integrationconfigs", {"entityType": "Notification", "entityId": note["id"],
                                                      "destination": "Webhook", "destinationId": hook["id"]})

    def fire(self, code: str = "storage") -> None:
        self.ok("post", "/compoundaggregations", {"name": code.title(), "code": code, "rounding": "UP",
                                                  "quantityPerUnit": 1, "unit": "GB", "calculation": "1"})


@pytest.fixture
def api(app, client, auth):
    app.backend.change_clock(freeze=True, at="2026-03-01T00:00:00Z")
    return Api(app, client, auth)


# -- users, invitations, permission policies ---------------------------------------------------------

def test_the_user_an_invitation_makes_is_created_and_last_modified_when_it_is_accepted(api):
    invitation = api.ok("post", "/invitations", {"firstName": "Ada", "lastName": "L", "email": "ada@example.com"})
    assert (invitation["invitingPrincipalId"], invitation["accepted"]) == (CLIENT, False)  # who invited
    assert api.ok("get", f"/invitations/{invitation['id']}")["invitingPrincipalId"] == CLIENT
    api.advance(3600)
    response = api.client.post(f"/_mock/organizations/{ORG}/invitations/{invitation['id']}/accept")
    assert response.status_code == 200, response.text
    user = response.json()
    assert (user["dtCreated"], user["dtLastModified"]) == ("2026-03-01T01:00:00.000Z", "2026-03-01T01:00:00.000Z")
    assert user["createdBy"] == user["lastModifiedBy"]
    assert api.ok("get", f"/users/{user['id']}") == user


def test_a_permission_policy_made_through_the_api_is_never_a_managed_one(api):
    policy = api.ok("post", "/permissionpolicies", {"name": "Mine", "permissionPolicy": [
        {"effect": "ALLOW", "action": ["ALL"], "resource": ["*"]}]})
    assert policy["managedPolicy"] is False
    assert api.ok("get", f"/permissionpolicies/{policy['id']}")["managedPolicy"] is False


@pytest.mark.parametrize("children, ended", [(False, ["parent"]), (True, ["parent", "child", "grandchild"])])
def test_end_dating_through_a_contract_reaches_the_child_accounts_only_when_asked(api, children, ended):
    parent = api.account("parent")
    child = api.account("child", parentAccountId=parent["id"])
    grandchild = api.account("grandchild", parentAccountId=child["id"])
    api.account("stranger")
    product = api.ok("post", "/products", {"name": "P", "code": "p"})
    template = api.ok("post", "/plantemplates", {"name": "T", "productId": product["id"], "billFrequency": "MONTHLY",
                                                 "currency": "USD", "standingCharge": 1})
    plan = api.ok("post", "/plans", {"name": "Plan", "code": "plan", "planTemplateId": template["id"]})
    plans = {}
    for account in (parent, child, grandchild):
        plans[account["code"]] = api.ok("post", "/accountplans", {
            "accountId": account["id"], "planId": plan["id"], "startDate": "2024-01-01T00:00:00Z"})["id"]
    contract = api.ok("post", "/contracts", {"accountId": parent["id"], "name": "C", "startDate": "2024-01-01",
                                             "endDate": "2027-01-01"})
    answer = api.ok("put", f"/contracts/{contract['id']}/enddatebillingentities", {
        "endDate": "2026-06-01T00:00:00Z", "billingEntities": ["ACCOUNTPLAN"], "applyToChildren": children})
    assert answer["updatedEntities"]["ACCOUNTPLAN"]["ids"] == [plans[code] for code in ended]
    for code, plan_id in plans.items():
        assert api.ok("get", f"/accountplans/{plan_id}").get("endDate") == (
            "2026-06-01T00:00:00Z" if code in ended else None)


# -- Lookup Table data ---------------------------------------------------------------------------

FIELDS = [{"name": "customer", "type": "STRING"}, {"name": "rate", "type": "NUMBER"}]


def lookup_revision(api: Api) -> tuple[str, str, dict]:
    table = api.ok("post", "/lookuptables", {"name": "Rates", "code": "rates"})
    revision = api.ok("post", f"/lookuptables/{table['id']}/revisions",
                      {"name": "Rates 2026", "fields": FIELDS, "keys": ["customer"]})
    return table["id"], revision["id"], revision


def test_a_revisions_update_keeps_its_item_count_and_status(api):
    table, revision_id, revision = lookup_revision(api)
    base = f"/lookuptables/{table}/revisions/{revision_id}"
    api.ok("put", f"{base}/data", {"items": [{"customer": "acme", "rate": 1}, {"customer": "zeta", "rate": 2}]})
    assert api.ok("get", base)["itemCount"] == 2
    updated = api.ok("put", base, {"name": "Renamed", "fields": FIELDS, "keys": ["customer"],
                                   "version": api.ok("get", base)["version"]})
    assert (updated["name"], updated["itemCount"], updated["status"]) == ("Renamed", 2, "DRAFT")
    api.ok("put", f"{base}/status", {"status": "PUBLISHED"})
    published = api.ok("put", base, {"name": "Again", "fields": FIELDS, "keys": ["customer"],
                                     "version": api.ok("get", base)["version"]})
    assert (published["name"], published["itemCount"], published["status"]) == ("Again", 2, "PUBLISHED")


def test_writing_one_entry_answers_with_the_datas_new_version(api):
    table, revision_id, _ = lookup_revision(api)
    base = f"/lookuptables/{table}/revisions/{revision_id}/data"
    first = api.ok("put", f"{base}/acme", {"item": {"rate": 1}})
    assert (first["items"], first["version"], first["createdBy"]) == ([{"customer": "acme", "rate": 1}], 1, CLIENT)
    second = api.ok("put", f"{base}/zeta", {"item": {"rate": 2}, "version": 1})
    assert (second["items"], second["version"]) == ([{"customer": "zeta", "rate": 2}], 2)


def test_a_jsonl_download_of_lookup_data_is_served_as_ndjson(api):
    table, revision_id, _ = lookup_revision(api)
    base = f"/lookuptables/{table}/revisions/{revision_id}/data"
    api.ok("put", base, {"items": [{"customer": "acme", "rate": 1.5}]})
    started = api.ok("post", f"{base}/jobs/download", {"contentType": "application/jsonl"})
    job = api.ok("get", f"{base}/jobs/{started['jobId']}")
    download = api.client.get(urlsplit(job["downloadUrl"]).path)
    assert download.status_code == 200
    assert download.headers["content-type"].split(";")[0] == "application/x-ndjson"
    assert download.text == '{"customer":"acme","rate":1.5}\n'


# -- balances and billing actions -----------------------------------------------------------------------

def test_a_charge_schedule_preview_that_ends_before_it_starts_names_its_end(api):
    account = api.account("acme")
    balance = api.ok("post", "/balances", {"accountId": account["id"], "code": "b", "name": "B", "currency": "USD",
                                           "startDate": "2026-01-01T00:00:00Z", "endDate": "2027-01-01T00:00:00Z"})
    message = api.refused(400, "post", f"/balances/{balance['id']}/balancechargeschedules/preview", {
        "name": "Fee", "code": "fee", "currency": "USD", "chargeDescription": "Platform fee", "amount": 5,
        "servicePeriodStartDate": "2026-04-01T00:00:00Z", "servicePeriodEndDate": "2026-04-01T00:00:00Z",
        "billFrequency": "MONTHLY", "billFrequencyInterval": 1, "billInAdvance": False})
    assert message == "servicePeriodEndDate: must be after servicePeriodStartDate (the end is exclusive)"


def test_a_stored_bill_is_monthly_every_month_in_the_accounts_currency_unless_told_otherwise(api):
    service = billing.service(api.backend)
    caller = Caller(ORG, CLIENT)
    euro = api.account("euro", currency="EUR")
    bill = service.store_bill(caller, euro["id"], "2026-01-01", "2026-02-01")
    assert {k: bill[k] for k in ("billingFrequency", "billFrequencyInterval", "currency", "timezone", "billDate",
                                 "dueDate", "status", "locked", "billTotal")} == {
        "billingFrequency": "MONTHLY", "billFrequencyInterval": 1, "currency": "EUR", "timezone": "UTC",
        "billDate": "2026-02-01", "dueDate": "2026-02-01", "status": "PENDING", "locked": False, "billTotal": 0}
    assert service.store_bill(caller, api.account("plain")["id"], "2026-01-01", "2026-02-01")["currency"] == "USD"
    with pytest.raises(MockError) as refused:
        service.store_bill(caller, euro["id"], "2026-01-01", "2026-02-30")
    assert (refused.value.status, refused.value.message) == (400, "endDate: '2026-02-30' is not a date like 2024-09-30")
    with pytest.raises(MockError) as refused:
        service.store_bill(caller, euro["id"], "2026-01-32", "2026-02-01")
    assert refused.value.message == "startDate: '2026-01-32' is not a date like 2024-09-30"


# -- webhooks and deliveries -------------------------------------------------------------------------

def test_a_webhooks_credentials_keep_their_id_and_count_their_versions_across_updates(api):
    created = api.webhook("https://hooks.example.com/m3ter")
    credentials = created["credentials"]
    assert {k: credentials[k] for k in ("version", "destination", "destinationId", "dtCreated", "dtLastModified",
                                        "createdBy", "lastModifiedBy")} == {
        "version": 1, "destination": "WEBHOOK", "destinationId": created["id"], "dtCreated": "2026-03-01T00:00:00.000Z",
        "dtLastModified": "2026-03-01T00:00:00.000Z", "createdBy": CLIENT, "lastModifiedBy": CLIENT}
    api.advance(60)
    body = {"name": "Receiver", "description": "d", "url": "https://hooks.example.com/v2",
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-2", "secret": "another-secret"}}
    for version in (2, 3):
        updated = api.ok("put", f"/integrationdestinations/webhooks/{created['id']}",
                         {**body, "version": version - 1})["credentials"]
        assert (updated["id"], updated["version"], updated["apiKey"]) == (credentials["id"], version, "key-2")
    shown = api.ok("get", f"/integrationdestinations/webhooks/{created['id']}")["credentials"]
    assert (shown["version"], shown["dtCreated"], shown["dtLastModified"]) == (
        3, "2026-03-01T00:00:00.000Z", "2026-03-01T00:01:00.000Z")


def test_every_attempt_of_a_delivery_is_recorded_whole_and_the_run_follows_it(api):
    with receiving(statuses=[500, 200]) as receiver:
        config = api.wire(receiver.url)
        api.fire()
        [first] = api.attempts()
        run = api.ok("get", f"/integrationconfigs/{config['id']}")
        assert {k: run.get(k) for k in ("status", "dtStarted", "dtCompleted", "url", "error")} == {
            "status": "AWAITING_RETRY", "dtStarted": "2026-03-01T00:00:00.000Z", "dtCompleted": None,
            "url": receiver.url, "error": "HTTP 500"}
        api.advance(1)  # the first retry, one second later
        attempts = api.attempts()
    notification = api.ok("get", "/events", eventName="configuration.compoundaggregation.created")["data"][0]
    shared = {"deliveryId": first["deliveryId"], "orgId": ORG, "eventId": notification["id"],
              "eventName": "configuration.compoundaggregation.created",
              "notificationId": notification["m3terEvent"]["notification"]["id"],
              "integrationConfigId": config["id"], "destinationId": config["destinationId"], "url": receiver.url}
    assert [{k: v for k, v in a.items() if k != "id"} for a in attempts] == [
        {**shared, "attempt": 1, "statusCode": 500, "error": "HTTP 500", "outcome": "retrying",
         "startedAt": "2026-03-01T00:00:00.000Z", "finishedAt": "2026-03-01T00:00:00.000Z",
         "nextAttemptAt": "2026-03-01T00:00:01.000Z"},
        {**shared, "attempt": 2, "statusCode": 200, "error": None, "outcome": "delivered",
         "startedAt": "2026-03-01T00:00:01.000Z", "finishedAt": "2026-03-01T00:00:01.000Z", "nextAttemptAt": None}]
    run = api.ok("get", f"/integrationconfigs/{config['id']}")
    assert {k: run.get(k) for k in ("status", "dtStarted", "dtCompleted", "url", "error")} == {
        "status": "COMPLETE", "dtStarted": "2026-03-01T00:00:00.000Z", "dtCompleted": "2026-03-01T00:00:01.000Z",
        "url": receiver.url, "error": None}
    assert [r.status for r in receiver.requests] == [500, 200]


def test_the_failure_event_of_a_delivery_names_the_url_it_went_to(api):
    with receiving(statuses=[400]) as receiver:
        config = api.wire(receiver.url)
        api.fire()
        api.attempts()
    [failure] = api.ok("get", "/events", eventName="integration.perform.error")["data"]
    data = failure["m3terEvent"]["eventData"]["newDto"]
    assert {k: data[k] for k in ("url", "error", "attempts", "statusCode", "integrationConfigId", "destination")} == {
        "url": receiver.url, "error": "HTTP 400", "attempts": 1, "statusCode": 400,
        "integrationConfigId": config["id"], "destination": "Webhook"}


def test_credentials_in_a_webhook_url_are_sent_as_basic_authorization(api):
    # The API's pattern for url has no room for credentials; the backend's own interface does.
    with receiving() as receiver:
        parts = urlsplit(receiver.url)
        hook = api.backend.webhooks.create(Caller(ORG, CLIENT), {
            "name": "Receiver", "description": "d", "url": f"http://hook-user:p%40ss@{parts.netloc}{parts.path}",
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "pinned-misc-secret"}})
        note = api.ok("post", "/notifications/configurations", {
            "name": "n", "code": "n", "description": "d", "eventName": "configuration.compoundaggregation.created",
            "alwaysFireEvent": True})
        api.ok("post", "/integrationconfigs", {"entityType": "Notification", "entityId": note["id"],
                                              "destination": "Webhook", "destinationId": hook["id"]})
        api.fire()
        assert [a["outcome"] for a in api.attempts()] == ["delivered"]
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"hook-user:p@ss").decode()


def test_a_harness_answering_deliveries_in_process_gets_the_signed_request(api, monkeypatch):
    received = []
    monkeypatch.setattr(api.backend.deliveries, "local_answer",
                        lambda url, headers, body: received.append((url, headers, body)) or 204)
    api.wire("https://hooks.example.com/m3ter")
    api.fire()
    assert [a["outcome"] for a in api.attempts()] == ["delivered"]
    [(url, headers, body)] = received
    assert url == "https://hooks.example.com/m3ter"
    assert (headers["X-m3ter-apikey"], headers["X-m3ter-timestamp"]) == ("key-1", "1772323200000")  # ms
    assert signing.verify("pinned-misc-secret", url, "key-1", headers["X-m3ter-timestamp"], body,
                          headers["X-m3ter-signature"])
    assert json.loads(body)["eventName"] == "configuration.compoundaggregation.created"


def test_a_delivery_from_before_the_queue_was_cleared_does_not_count_against_the_ones_after(api, monkeypatch):
    # One delivery at a time may wait per destination. The first is on the wire when the queue
    # is cleared (as a reset does first); one queued after it then waits, so a third is
    # dropped, even once the first has come back: its count belonged to the cleared queue.
    deliveries = api.backend.deliveries
    monkeypatch.setattr(deliveries, "max_waiting", 1)
    entered, gate = threading.Semaphore(0), threading.Semaphore(0)

    def answer(url, headers, body):
        entered.release()
        assert gate.acquire(timeout=30)
        return 200

    monkeypatch.setattr(deliveries, "local_answer", answer)
    api.wire("https://hooks.example.com/m3ter")
    api.fire("first")
    assert entered.acquire(timeout=30)  # the first is on the wire
    deliveries.queue.clear()
    api.fire("second")  # queued after the clear: it waits for the first
    gate.release()
    assert entered.acquire(timeout=30)  # the first is done, the second on the wire
    api.fire("third")  # one is waiting already: dropped
    gate.release()
    api.backend.run_due()
    attempts = [(a["outcome"], a["error"]) for a in api.attempts()]
    assert attempts == [("failed", "dropped: 1 deliveries to this destination are already waiting"),
                        ("delivered", None)]


# -- the clock, lists, ingest ------------------------------------------------------------------------------

def test_the_clock_can_be_set_from_python_with_a_datetime_naive_ones_read_as_utc(app):
    app.backend.change_clock(freeze=True, at=datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2))))
    assert app.backend.clock.now() == datetime(2030, 5, 6, 5, 8, 9, tzinfo=timezone.utc)
    app.backend.change_clock(at=datetime(2030, 5, 6, 6, 0, 0))
    assert app.backend.clock.now() == datetime(2030, 5, 6, 6, 0, 0, tzinfo=timezone.utc)


def test_events_listed_by_id_come_newest_first_one_page_after_another(api):
    ids = [api.ok("post", "/products", {"name": code.title(), "code": code})["id"] for code in ("a", "b", "c")]
    events = {e["m3terEvent"]["eventData"]["newDto"]["id"]: e["id"]
              for e in api.ok("get", "/events", eventName="configuration.product.created")["data"]}
    wanted = [events[i] for i in ids]
    seen, token = [], None
    for _ in range(3):
        page = api.ok("get", "/events", ids=wanted, pageSize=1, **({"nextToken": token} if token else {}))
        seen += [e["id"] for e in page["data"]]
        token = page.get("nextToken")
    assert seen == list(reversed(wanted))
    assert token is None or api.ok("get", "/events", ids=wanted, pageSize=1, nextToken=token)["data"] == []


def measurements(*accounts: str) -> list[dict]:
    return [{"uid": f"m{n}", "meter": "disk", "account": account, "ts": "2026-02-01T00:00:00Z", "measure": {"gb": 1}}
            for n, account in enumerate(accounts)]


REFUSED_CODE = ("measurements[1].account: ' acme' cannot be an Account code (control characters, or whitespace at "
                "either end)")


def upload(api: Api, content: bytes) -> dict:
    """A measurements file uploaded, and its job once processed."""
    answer = api.ok("post", "/fileuploads/measurements/generateUploadUrl",
                    {"fileName": "usage.json", "contentType": "application/json", "contentLength": len(content)})
    put = api.client.put(urlsplit(answer["url"]).path + "?" + urlsplit(answer["url"]).query, content=content,
                         headers={"Content-Type": "application/json"})
    assert put.status_code == 200, put.text
    api.advance(1)
    return api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}")


def test_a_measurement_whose_account_cannot_be_a_code_fails_alone_and_its_events_name_the_file(api):
    # The API's validation refuses such an account first; a file and the direct interface do not.
    api.ok("post", "/meters", {"name": "Disk", "code": "disk", "derivedFields": [],
                               "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"}]})
    job = upload(api, json.dumps({"measurements": measurements("acme", " acme", "zeta")}).encode())
    assert (job["status"], job["totalRows"], job["processedRows"], job["failedRows"]) == ("succeeded", 3, 2, 1)
    [event] = api.ok("get", "/events", eventName="ingest.validation.failure")["data"]
    data = event["m3terEvent"]["eventData"]["newDto"]
    assert (data["error"], data["uid"], data["accountCode"]) == (REFUSED_CODE, "m1", " acme")
    [file] = parse_qs(urlsplit(data["getDownloadUrl"]).query)["file"]
    assert [e["id"] for e in api.ok("get", "/events", resourceId=file)["data"]] == [event["id"]]

    with pytest.raises(MockError) as refused:
        api.backend.usage.submit(Caller(ORG, CLIENT), measurements("acme", " acme", "zeta"))
    assert refused.value.message == (f"{REFUSED_CODE}; nothing of this batch was stored (1 of 3 measurements "
                                     f"failed: see the ingest.validation.failure Events)")


def test_an_adhoc_usage_exports_start_date_outside_the_utc_years_is_a_400_naming_it(api):
    message = api.refused(400, "post", "/dataexports/adhoc", {
        "sourceType": "USAGE", "startDate": "0001-01-01T00:00:00+01:00", "endDate": "2026-01-01T00:00:00Z"})
    assert message == "startDate: '0001-01-01T00:00:00+01:00' is outside the years 1 to 9999 in UTC"


def test_each_worker_thread_is_named_after_its_work(api):
    """A thread dump (and the log of a failed item) names the worker."""
    api.wire("https://hooks.example.com/m3ter")
    monkey = api.backend.deliveries
    monkey.local_answer = lambda url, headers, body: 200
    try:
        api.fire()
        account = api.account("acme")
        bill = billing.service(api.backend).store_bill(Caller(ORG, CLIENT), account["id"], "2026-01-01", "2026-02-01")
        api.ok("post", "/statementjobs", {"billId": bill["id"]})
        api.ok("post", "/billjobs", {})
        api.ok("post", "/dataexports/adhoc", {"sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS"]})
        api.advance(1)
        upload(api, b'{"measurements": []}')
    finally:
        monkey.local_answer = None
    names = {thread.name for thread in threading.enumerate()}
    assert {"m3ter-mock-deliveries", "m3ter-mock-exports", "m3ter-mock-statements", "m3ter-mock-billruns",
            "m3ter-mock-uploads"} <= names


# -- the generic engine's custom steps -----------------------------------------------------------------

def catalogue_world(api: Api) -> dict:
    product = api.ok("post", "/products", {"name": "P", "code": "p"})
    template = api.ok("post", "/plantemplates", {"name": "T", "productId": product["id"], "billFrequency": "MONTHLY",
                                                 "currency": "USD", "standingCharge": 1})
    plan = api.ok("post", "/plans", {"name": "Plan", "code": "plan", "planTemplateId": template["id"]})
    meter = api.ok("post", "/meters", {"name": "M", "code": "m", "derivedFields": [],
                                       "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"}]})
    aggregation = api.ok("post", "/aggregations", {"name": "A", "code": "a", "meterId": meter["id"],
                                                   "targetField": "gb", "aggregation": "SUM", "unit": "GB",
                                                   "rounding": "NONE", "quantityPerUnit": 1})
    return {"product": product, "template": template, "plan": plan, "aggregation": aggregation}


def test_of_a_pair_of_references_exactly_one_is_given_or_the_400_names_both(api):
    world = catalogue_world(api)
    band = {"startDate": "2026-01-01T00:00:00Z", "aggregationId": world["aggregation"]["id"],
            "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1}]}
    assert api.refused(400, "post", "/pricings", {**band, "planId": world["plan"]["id"],
                                                   "planTemplateId": world["template"]["id"]}) == \
        "planId: exactly one of planId, planTemplateId is required (given: planId, planTemplateId)"
    assert api.refused(400, "post", "/pricings", band) == "planId: exactly one of planId, planTemplateId is required"
    assert api.ok("post", "/pricings", {**band, "planTemplateId": world["template"]["id"]})["planTemplateId"] == \
        world["template"]["id"]


def test_a_plan_and_an_account_plan_show_the_product_they_are_for(api):
    world = catalogue_world(api)
    assert api.ok("get", f"/plans/{world['plan']['id']}")["productId"] == world["product"]["id"]
    account = api.account("acme")
    account_plan = api.ok("post", "/accountplans", {"accountId": account["id"], "planId": world["plan"]["id"],
                                                    "startDate": "2026-01-01T00:00:00Z"})
    assert account_plan["productId"] == world["product"]["id"]
    group = api.ok("post", "/plangroups", {"name": "G", "currency": "USD"})
    grouped = api.ok("post", "/accountplans", {"accountId": account["id"], "planGroupId": group["id"],
                                               "startDate": "2026-01-01T00:00:00Z"})
    assert "productId" not in grouped  # a plan group is for no one product


def test_an_account_cannot_be_made_its_own_parent_or_its_childs_child(api):
    top = api.account("top")
    middle = api.account("middle", parentAccountId=top["id"])
    bottom = api.account("bottom", parentAccountId=middle["id"])

    def reparent(account, parent_id):
        return api.call("put", f"/accounts/{account['id']}", {
            "name": account["name"], "code": account["code"], "emailAddress": account["emailAddress"],
            "parentAccountId": parent_id, "version": account["version"]})

    for parent in (top, bottom):
        refused = reparent(top, parent["id"])
        assert (refused.status_code, refused.json()["message"]) == (
            400, f"parentAccountId: Account {parent['id']!r} is {top['id']!r} itself or one of its children")
    moved = reparent(bottom, top["id"])
    assert moved.status_code == 200 and moved.json()["parentAccountId"] == top["id"]


def test_a_balance_update_keeps_the_amount_its_transactions_made(api):
    account = api.account("acme")
    body = {"accountId": account["id"], "code": "b", "name": "B", "currency": "USD",
            "startDate": "2026-01-01T00:00:00Z", "endDate": "2027-01-01T00:00:00Z"}
    balance = api.ok("post", "/balances", body)
    assert balance["amount"] == 0
    api.ok("post", f"/balances/{balance['id']}/transactions", {"amount": 42.5})
    updated = api.ok("put", f"/balances/{balance['id']}", {**body, "name": "Renamed", "version": 1})
    assert (updated["name"], updated["amount"]) == ("Renamed", 42.5)


# -- the admin API's clock and events, deletes of referenced entities ----------------------------------

def admin(api: Api, method: str, path: str, body: dict) -> tuple[int, dict]:
    response = getattr(api.client, method)(f"/_mock/{path}", json=body)
    return response.status_code, response.json()


def test_the_clock_refuses_to_go_back_or_to_unfreeze_while_moving(api):
    assert admin(api, "post", "clock", {"freeze": False, "advanceSeconds": 5}) == (
        400, {"message": "freeze: false cannot be combined with at or advanceSeconds"})
    assert admin(api, "post", "clock", {"at": "2026-02-28T23:59:59Z"}) == (
        400, {"message": "at: 2026-02-28T23:59:59+00:00 is earlier than the clock; it only moves forward"})
    assert admin(api, "post", "clock", {"at": "2026-03-01T00:00:00Z"})[0] == 200  # where it stands: not earlier
    with pytest.raises(MockError) as refused:
        api.backend.change_clock(at="the first of March")
    assert refused.value.message == "at: 'the first of March' is not an ISO-8601 date-time"
    assert api.backend.clock.now() == datetime(2026, 3, 1, tzinfo=timezone.utc)


def test_an_injected_event_must_be_an_event_type_and_keeps_its_subjects_ids(api):
    assert admin(api, "post", "events", {"orgId": ORG, "eventName": "configuration.nothing.created"}) == (
        400, {"message": "eventName: 'configuration.nothing.created' is not an event type (see GET /events/types)"})
    status, event = admin(api, "post", "events", {"orgId": ORG, "eventName": "configuration.commitment.updated",
                                                  "newDto": {"id": "c1", "accountId": "a1", "amount": 5}})
    assert status == 200
    assert [e["id"] for e in api.ok("get", "/events", resourceId="c1")["data"]] == [event["id"]]
    assert [e["id"] for e in api.ok("get", "/events", accountId="a1")["data"]] == [event["id"]]


def test_a_referenced_entity_cannot_be_deleted_and_the_409_names_the_referrer(api):
    product = api.ok("post", "/products", {"name": "P", "code": "p"})
    meter = api.ok("post", "/meters", {"name": "M", "code": "m", "productId": product["id"], "derivedFields": [],
                                       "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"}]})
    assert api.refused(409, "delete", f"/products/{product['id']}") == (
        f"Product {product['id']!r} is referenced by Meter {meter['id']!r} (productId); delete that or change its "
        f"productId first")
    api.ok("delete", f"/meters/{meter['id']}")
    api.ok("delete", f"/products/{product['id']}")


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/m3ter", "http:///m3ter", "https://hooks.example.com:99999/",
                                 "hooks.example.com/m3ter"])
def test_a_webhook_url_must_be_http_with_a_host_even_from_python(api, url):
    # The API's pattern refuses these first; the backend's own interface says why in words.
    with pytest.raises(MockError) as refused:
        api.backend.webhooks.create(Caller(ORG, CLIENT), {
            "name": "Receiver", "description": "d", "url": url,
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "pinned-misc-secret"}})
    assert (refused.value.status, refused.value.message) == (400, f"url: {url!r} is not an http(s) URL with a host")
    assert api.ok("get", "/integrationdestinations/webhooks")["data"] == []


# -- settings that reach the services ------------------------------------------------------------------

@pytest.fixture(scope="module")
def short_token_app():
    return create_app(make_settings(token_lifetime_seconds=120))


def test_a_token_lifetime_from_the_settings_is_the_one_tokens_get(short_token_app):
    backend = short_token_app.backend
    backend.reset()
    backend.change_clock(freeze=True, at="2026-03-01T00:00:00Z")
    client = short_token_app.test_client()
    basic = base64.b64encode(b"test-client:test-secret").decode()
    issued = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                         headers={"Authorization": f"Basic {basic}"}).json()
    assert issued["expires_in"] == 120
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    backend.change_clock(advance_seconds=119)
    assert client.get(f"/organizations/{ORG}/products", headers=bearer).status_code == 200
    backend.change_clock(advance_seconds=2)
    assert client.get(f"/organizations/{ORG}/products", headers=bearer).status_code == 401


def test_a_date_range_filter_takes_its_start_and_leaves_out_its_end(api):
    account = api.account("acme")
    ids = {}
    for end in ("2026-01-01", "2026-02-01", "2026-03-01"):
        ids[end] = api.ok("post", "/commitments", {"accountId": account["id"], "amount": 10, "currency": "USD",
                                                   "startDate": "2025-01-01", "endDate": end})["id"]

    def listed(**query) -> list[str]:
        return [c["id"] for c in api.ok("get", "/commitments", **query)["data"]]

    assert listed(endDateStart="2026-02-01") == [ids["2026-02-01"], ids["2026-03-01"]]
    assert listed(endDateEnd="2026-02-01") == [ids["2026-01-01"]]
    assert listed(endDateStart="2026-01-15", endDateEnd="2026-03-01") == [ids["2026-02-01"]]
