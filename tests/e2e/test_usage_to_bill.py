"""Usage in, bills out, through the official m3ter SDK with strict response validation (every
response checked against the models generated from m3ter's published spec, and searched for
nulls): measurements ingested, the usage queried, a bill job run, bills with line items read.

The numbers, by hand: a plan template with a standing charge of 5 a month; usage priced in
tiers, 1 per GB up to 100 GB and 0.5 per GB above. March: acme stores 150 GB, beta 40 GB.
acme: 5 + 100 x 1 + 50 x 0.5 = 130. beta: 5 + 40 x 1 = 45."""

from __future__ import annotations

import httpx
import m3ter
import pytest

from tests.conftest import ORG
from tests.support.nulls import strict_sdk


@pytest.fixture
def client(live_url, live_app):
    live_app.backend.reset()
    with strict_sdk(live_url, ORG) as sdk:
        yield sdk


def clock(live_url: str, **body) -> None:
    response = httpx.post(f"{live_url}/_mock/clock", json=body)
    assert response.status_code == 200, response.text


def test_measurements_are_queried_then_billed(client, live_url):
    clock(live_url, freeze=True, at="2024-03-01T00:00:00Z")
    product = client.products.create(name="Storage", code="storage")
    meter = client.meters.create(product_id=product.id, name="Storage", code="storage", derived_fields=[],
                                 data_fields=[{"category": "MEASURE", "code": "gb", "name": "GB stored", "unit": "GB"},
                                              {"category": "WHERE", "code": "region", "name": "Region"}])
    aggregation = client.aggregations.create(meter_id=meter.id, name="GB stored", code="gb_stored",
                                             aggregation="SUM", target_field="gb", rounding="UP",
                                             quantity_per_unit=1, unit="GB")
    template = client.plan_templates.create(product_id=product.id, name="Storage", bill_frequency="MONTHLY",
                                            currency="USD", standing_charge=5)
    plan = client.plans.create(plan_template_id=template.id, name="Storage", code="storage_plan")
    pricing = client.pricings.create(
        plan_id=plan.id, aggregation_id=aggregation.id, start_date="2024-01-01T00:00:00Z", cumulative=True,
        pricing_bands=[{"lower_limit": 0, "fixed_price": 0, "unit_price": 1},
                       {"lower_limit": 100, "fixed_price": 0, "unit_price": 0.5}])
    accounts = {}
    for code in ("acme", "beta"):
        accounts[code] = client.accounts.create(name=code.title(), code=code, email_address=f"{code}@example.com")
        client.account_plans.create(account_id=accounts[code].id, plan_id=plan.id, start_date="2024-01-01T00:00:00Z")

    accepted = client.usage.submit(measurements=[
        {"uid": "a1", "meter": "storage", "account": "acme", "ts": "2024-03-02T10:00:00Z",
         "measure": {"gb": 50}, "where": {"region": "eu"}},
        {"uid": "a2", "meter": "storage", "account": "acme", "ts": "2024-03-15T10:00:00Z",
         "measure": {"gb": 60}, "where": {"region": "eu"}},
        {"uid": "a3", "meter": "storage", "account": "acme", "ts": "2024-03-31T23:59:59Z",
         "measure": {"gb": 40}, "where": {"region": "us"}},
        {"uid": "b1", "meter": "storage", "account": "beta", "ts": "2024-03-05T10:00:00Z",
         "measure": {"gb": 40}, "where": {"region": "us"}},
        {"uid": "late", "meter": "storage", "account": "beta", "ts": "2024-04-01T00:00:00Z",
         "measure": {"gb": 1000}, "where": {"region": "us"}},
    ])
    assert accepted.result == "accepted"

    used = client.usage.query(start_date="2024-03-01T00:00:00Z", end_date="2024-04-01T00:00:00Z",
                              meter_ids=[meter.id],
                              aggregations=[{"meter_id": meter.id, "field_code": "gb", "field_type": "MEASURE",
                                             "function": "SUM"}],
                              groups=[{"group_type": "ACCOUNT"}])
    assert used.has_more_data is False
    assert sorted(row["gb_sum"] for row in used.data) == [40, 150]

    clock(live_url, at="2024-04-01T06:00:00Z")
    job = client.bill_jobs.create(last_date_in_billing_period="2024-03-31", billing_frequency="MONTHLY")
    assert (job.status, job.type) == ("PENDING", "CREATE")
    clock(live_url, advanceSeconds=1)
    job = client.bill_jobs.retrieve(job.id)
    assert (job.status, job.total, job.pending, len(job.bill_ids)) == ("COMPLETE", 2, 0, 2)
    assert [j.id for j in client.bill_jobs.list(status="COMPLETE")] == [job.id]

    bills = {bill.account_code: bill for bill in (client.bills.retrieve(bill_id) for bill_id in job.bill_ids)}
    assert {code: bill.bill_total for code, bill in bills.items()} == {"acme": 130, "beta": 45}
    acme = bills["acme"]
    assert (acme.start_date.isoformat(), acme.end_date.isoformat(), acme.bill_date.isoformat(), acme.status,
            acme.currency, acme.billing_frequency, acme.bill_job_id) == (
        "2024-03-01", "2024-04-01", "2024-04-01", "PENDING", "USD", "MONTHLY", job.id)

    items = list(client.bills.line_items.list(acme.id))
    assert [(i.line_item_type, i.quantity, i.subtotal) for i in items] == [("STANDING_CHARGE", 1, 5),
                                                                          ("USAGE", 150, 125)]
    usage = items[1]
    assert (usage.pricing_id, usage.aggregation_id, usage.meter_id, usage.plan_id, usage.product_id) == (
        pricing.id, aggregation.id, meter.id, plan.id, product.id)
    assert [(b.lower_limit, b.unit_price, b.band_units, b.band_subtotal) for b in usage.band_usage] == [
        (0, 1, 100, 100), (100, 0.5, 50, 25)]
    assert client.bills.line_items.retrieve(usage.id, bill_id=acme.id).subtotal == 125
    assert [b.id for b in client.bills.list(account_id=accounts["beta"].id)] == [bills["beta"].id]

    # Approved and locked, a bill is final: a recalculation is refused.
    client.bills.approve(bill_ids=[acme.id])
    client.bills.lock(acme.id)
    with pytest.raises(m3ter.ConflictError):
        client.bill_jobs.recalculate(bill_ids=[acme.id])
