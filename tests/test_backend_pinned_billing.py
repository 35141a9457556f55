"""Billing behaviour that mutation testing found unpinned: the bills CSV chosen by external
invoice dates alone, the bills of a billing period page by page, batch statement jobs that
run to the end, and what a new bill job holds before it runs.

Bills are stored through the billing service's ``store_bill`` (as tests/test_actions_billing.py
does); everything else goes through the API."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from mockserver.backend.actions import billing
from mockserver.backend.crud import Caller
from mockserver.domain.errors import MockError
from tests.conftest import bearer_for
from tests.support.org_calls import OrgCalls

ORG = "org-pinned-billing"
CLIENT = "test-client"
FROZEN_AT = datetime(2024, 11, 5, 9, 30, tzinfo=timezone.utc)


class Api(OrgCalls):
    org = ORG

    def __init__(self, app):
        self.backend = app.backend
        self.client = app.test_client()
        self.auth = bearer_for(self.client)
        self.caller = Caller(ORG, CLIENT)

    @property
    def service(self) -> billing.BillingActions:
        return billing.service(self.backend)


    def account(self, code: str) -> dict:
        return self.ok("post", "/accounts", {"name": code.title(), "code": code, "emailAddress": f"{code}@example.com"})

    def bill(self, account: dict, start: str, end: str, **fields) -> dict:
        items = [{"lineItemType": "STANDING_CHARGE", "subtotal": "5"}]
        return self.service.store_bill(self.caller, account["id"], start, end, items, **fields)

    def advance(self, seconds: float) -> None:
        self.backend.advance_to(self.backend.clock.now() + timedelta(seconds=seconds))
        self.backend.run_due()
        self.service.queue.wait_idle()


@pytest.fixture
def api(app):
    app.backend.clock.freeze(FROZEN_AT)
    return Api(app)


def test_the_bills_csv_can_choose_bills_by_external_invoice_dates_alone(api):
    acme = api.account("acme")
    inside = api.bill(acme, "2024-09-01", "2024-10-01", externalInvoiceDate="2024-10-01")
    api.bill(acme, "2024-10-01", "2024-11-01", externalInvoiceDate="2024-11-01")
    url = api.ok("post", "/bills/download/csv/url", {"externalInvoiceDateStart": "2024-10-01T00:00:00Z",
                                                     "externalInvoiceDateEnd": "2024-10-15T00:00:00Z"})["downloadUrl"]
    rows = list(csv.DictReader(io.StringIO(api.client.get(urlsplit(url).path).text)))
    assert [(r["billId"], r["lineItemType"]) for r in rows] == [(inside["id"], "STANDING_CHARGE")]


def test_the_bills_of_a_billing_period_come_page_by_page(api):
    acme, other = api.account("acme"), api.account("other")
    first = api.bill(acme, "2024-09-01", "2024-10-01")
    api.bill(acme, "2024-10-01", "2024-11-01")  # another period
    second = api.bill(other, "2024-09-01", "2024-10-01")
    page = api.ok("get", "/bills/billingperiod/2024-09-30/monthly", pageSize=1)
    assert [b["id"] for b in page["data"]] == [first["id"]]
    rest = api.ok("get", "/bills/billingperiod/2024-09-30/monthly", pageSize=1, nextToken=page["nextToken"])
    assert [b["id"] for b in rest["data"]] == [second["id"]] and "nextToken" not in rest


def test_a_billing_period_that_is_not_a_date_is_a_400_naming_it(api):
    # The API's validation answers first over HTTP; the service names the field all the same.
    with pytest.raises(MockError) as refused:
        api.service.bills_in_period(api.caller, "2024-09-31", "MONTHLY", None, None)
    assert refused.value.status == 400
    assert refused.value.message.startswith("lastDateInBillingPeriod: '2024-09-31'")


def test_statement_jobs_made_in_a_batch_run_and_hand_out_download_urls(api):
    bill, other = api.bill(api.account("acme"), "2024-09-01", "2024-10-01"), \
        api.bill(api.account("other"), "2024-09-01", "2024-10-01")
    jobs = api.ok("post", "/statementjobs/batch", {"billIds": [bill["id"], other["id"]]})
    api.advance(1)
    for job, expected in zip(jobs, (bill, other)):
        done = api.ok("get", f"/statementjobs/{job['id']}")
        assert done["statementJobStatus"] == "COMPLETE"
        url = done["presignedJsonStatementUrl"]
        assert url.startswith("http://")
        statement = api.client.get(urlsplit(url).path)
        assert statement.status_code == 200 and statement.json()["bill"]["id"] == expected["id"]


def test_a_new_bill_job_is_a_pending_create_job_in_utc_stamped_by_its_caller(api):
    job = api.ok("post", "/billjobs", {"lastDateInBillingPeriod": "2024-10-31", "billingFrequency": "MONTHLY"})
    expected = {"status": "PENDING", "type": "CREATE", "timezone": "UTC", "billIds": [], "total": 0, "pending": 0,
                "version": 1, "dtCreated": "2024-11-05T09:30:00.000Z", "dtLastModified": "2024-11-05T09:30:00.000Z",
                "createdBy": CLIENT, "lastModifiedBy": CLIENT}
    assert {k: job.get(k) for k in expected} == expected
    assert {k: v for k, v in api.ok("get", f"/billjobs/{job['id']}").items() if k in expected} == expected


def test_a_next_token_of_one_account_or_period_is_refused_for_another(api):
    acme, other = api.account("acme"), api.account("other")
    for account in (acme, other):
        for start, end in (("2024-09-01", "2024-10-01"), ("2024-10-01", "2024-11-01")):
            api.bill(account, start, end)
    acme_token = api.ok("get", f"/bills/accountid/{acme['id']}", pageSize=1)["nextToken"]
    refused = api.call("get", f"/bills/accountid/{other['id']}", pageSize=1, nextToken=acme_token)
    assert refused.status_code == 400 and refused.json()["message"].startswith("nextToken: not a token issued by")
    september_token = api.ok("get", "/bills/billingperiod/2024-09-30/monthly", pageSize=1)["nextToken"]
    refused = api.call("get", "/bills/billingperiod/2024-10-31/monthly", pageSize=1, nextToken=september_token)
    assert refused.status_code == 400 and refused.json()["message"].startswith("nextToken: not a token issued by")
