"""The Events seed's worked example, end to end, with nothing injected: an account with a
commitment, a plan with pricing, a meter and an aggregation; measurements submitted through the
official SDK; a bill job; the commitment's ``amountSpent`` moves, the "under 10% remaining"
rule fires, and a signed webhook reaches a receiver on loopback, whose signature checks out.

Everything goes through the m3ter API of a served mock (the SDK, strict response validation
on); only the clock is moved, through the admin API (``POST /_mock/clock``).

Two forms of the rule watch the same Event:

* m3ter's published spec: ``new.amountSpent >= ((new.amount*90)/100)`` (90 % of the amount
  spent, i.e. under 10 % remaining);
* the Events seed: ``new.amountSpent >= ((new.amount*100)/90)``, which is 111.1 % of the
  amount: evaluated exactly as written, it fires only once the commitment is overspent.

The numbers: a commitment of 1000, usage priced at 1 per GB. March: 950 GB, so amountSpent
goes from nothing to 950 (95 %): the published form fires, the seed's does not. April: 200 GB
more, amountSpent 1150 (115 %, past 1111.11): the seed's form fires; the published one does not
fire again, since the commitment was already past 90 % before."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import m3ter
import pytest

from mockserver import verify
from tests.conftest import ORG
from tests.support.receiver import receiving

PUBLISHED_RULE = ("(new.amountSpent >= ((new.amount*90)/100)) AND ((old.amountSpent <= ((old.amount*90)/100)) "
                  "OR (old.amountSpent == null))")
SEED_RULE = ("(new.amountSpent >= ((new.amount*100)/90)) AND ((old.amountSpent <= ((old.amount*100)/90)) "
             "OR (old.amountSpent == null))")
API_KEY, SECRET = "seed-example-key", "seed-example-webhook-secret"


@pytest.fixture
def client(live_url, live_app):
    live_app.backend.reset()
    with m3ter.M3ter(base_url=live_url, api_key="sdk-client", api_secret="sdk-secret", org_id=ORG,
                     max_retries=0, _strict_response_validation=True) as sdk:
        yield sdk


def clock(live_url: str, **body) -> None:
    response = httpx.post(f"{live_url}/_mock/clock", json=body)
    assert response.status_code == 200, response.text


def delivered(live_url: str) -> list[dict]:
    """Every delivery attempt, once nothing is due or being sent."""
    response = httpx.get(f"{live_url}/_mock/deliveries", params={"orgId": ORG, "wait": "true"}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def usage(client: m3ter.M3ter, month: str, gigabytes: list[int], uid: str) -> None:
    client.usage.submit(measurements=[
        {"uid": f"{uid}-{n}", "meter": "storage", "account": "acme", "ts": f"2024-{month}-{n + 1:02d}T12:00:00Z",
         "measure": {"gb": gb}} for n, gb in enumerate(gigabytes)])


def bill_month(client: m3ter.M3ter, live_url: str, last_day: str):
    job = client.bill_jobs.create(last_date_in_billing_period=last_day, billing_frequency="MONTHLY")
    assert job.status == "PENDING"
    clock(live_url, advanceSeconds=1)
    job = client.bill_jobs.retrieve(job.id)
    assert (job.status, len(job.bill_ids)) == ("COMPLETE", 1)
    return client.bills.retrieve(job.bill_ids[0])


def test_the_seed_example_runs_from_real_calls(client, live_url):
    clock(live_url, freeze=True, at="2024-03-01T00:00:00Z")
    product = client.products.create(name="Storage", code="storage")
    meter = client.meters.create(product_id=product.id, name="Storage", code="storage", derived_fields=[],
                                 data_fields=[{"category": "MEASURE", "code": "gb", "name": "GB stored", "unit": "GB"}])
    aggregation = client.aggregations.create(meter_id=meter.id, name="GB stored", code="gb_stored",
                                             aggregation="SUM", target_field="gb", rounding="NONE",
                                             quantity_per_unit=1, unit="GB")
    template = client.plan_templates.create(product_id=product.id, name="Storage", bill_frequency="MONTHLY",
                                            currency="USD", standing_charge=0)
    plan = client.plans.create(plan_template_id=template.id, name="Storage", code="storage_plan")
    client.pricings.create(plan_id=plan.id, aggregation_id=aggregation.id, start_date="2024-01-01T00:00:00Z",
                           cumulative=True, pricing_bands=[{"lower_limit": 0, "fixed_price": 0, "unit_price": 1}])
    account = client.accounts.create(name="Acme", code="acme", email_address="billing@acme.example")
    client.account_plans.create(account_id=account.id, plan_id=plan.id, start_date="2024-01-01T00:00:00Z")
    commitment = client.commitments.create(account_id=account.id, amount=1000, currency="USD",
                                           start_date="2024-01-01", end_date="2025-01-01")

    with receiving(path="/m3ter/alerts") as receiver:
        hook = client.webhooks.create(name="Alerts", description="commitment alerts", url=receiver.url,
                                      credentials={"type": "M3TER_SIGNED_REQUEST", "api_key": API_KEY,
                                                   "secret": SECRET})
        rules = {}
        for code, calculation in (("under_10_percent", PUBLISHED_RULE), ("seed_form", SEED_RULE)):
            rules[code] = client.notification_configurations.create(
                code=code, name=f"Commitment rule {code}", description="Commitment amount fell below 10%",
                event_name="configuration.commitment.updated", calculation=calculation, active=True)
            client.integration_configurations.create(entity_type="Notification", entity_id=rules[code].id,
                                                     destination="Webhook", destination_id=hook.id)

        # March: 950 GB of a 1000 commitment.
        usage(client, "03", [300, 300, 200, 150], "march")
        clock(live_url, at="2024-04-01T06:00:00Z")
        march = bill_month(client, live_url, "2024-03-31")
        assert [(item.line_item_type, item.subtotal) for item in march.line_items] == [
            ("USAGE", 950), ("COMMITMENT_CONSUMED", -950)]
        assert client.commitments.retrieve(commitment.id).amount_spent == 950
        assert [a["outcome"] for a in delivered(live_url)] == ["delivered"]
        [first] = receiver.requests

        # April: 200 GB more; 50 left in the commitment, 150 over.
        usage(client, "04", [120, 80], "april")
        clock(live_url, at="2024-05-01T06:00:00Z")
        april = bill_month(client, live_url, "2024-04-30")
        assert [(item.line_item_type, item.subtotal) for item in april.line_items] == [
            ("USAGE", 200), ("COMMITMENT_CONSUMED", -50)]
        assert april.bill_total == 150
        assert client.commitments.retrieve(commitment.id).amount_spent == 1150
        assert [a["outcome"] for a in delivered(live_url)] == ["delivered", "delivered"]
        second = receiver.requests[1]

    fired = []
    for got in (first, second):
        # The receiver checks the signature as the README shows, and independently.
        assert got.headers["X-m3ter-apikey"] == API_KEY
        assert verify(secret=SECRET, url=receiver.url, api_key=API_KEY, timestamp=got.headers["X-m3ter-timestamp"],
                      body=got.body, signature=got.headers["X-m3ter-signature"])
        message = f"{receiver.url}||{API_KEY}|{got.headers['X-m3ter-timestamp']}|".encode() + got.body
        assert got.headers["X-m3ter-signature"] == hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
        event = json.loads(got.body)["m3terEvent"]
        data = event["eventData"]
        fired.append((event["notification"]["code"], event["eventName"], data["newDto"]["id"],
                      data.get("oldDto", {}).get("amountSpent"), data["newDto"]["amountSpent"],
                      data["newDto"]["amount"]))
    assert fired == [
        ("under_10_percent", "configuration.commitment.updated", commitment.id, None, 950, 1000),
        ("seed_form", "configuration.commitment.updated", commitment.id, 950, 1150, 1000),
    ]
