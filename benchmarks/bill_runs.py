"""Bill run figures for m3ter-mock, printed as a table. Not a test: run it by hand.

    .venv/bin/python benchmarks/bill_runs.py [--quick]

Sets up 1,000 accounts (``--quick``: 100), each on a monthly plan whose pricing is tiered over
a SUM aggregation, each with a commitment, and 100 measurements per account in March 2026
(through ``UsageStore.submit``, batches of 1,000). Then times, with the clock frozen:

* a bill job for March over every account: ``POST /billjobs`` through HTTP to the app in this
  process, then the clock moved one second (the job runs on the worker; the clock call returns
  once it is COMPLETE) -- one bill per account, each drawing its commitment down;
* the same job again (every bill recalculated in place, commitments given back and redrawn);
* a ``PreviewBill`` of one account (median of several).
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.app import create_app  # noqa: E402
from mockserver.backend.crud import Caller  # noqa: E402
from mockserver.settings import Settings  # noqa: E402
from tests.support.server import serve_in_thread  # noqa: E402

ORG = "bench-bill-runs"
BATCH = 1000
PER_ACCOUNT = 100
BASIC = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}


def setup(backend, accounts: int) -> list[str]:
    caller = Caller(ORG, "bench")
    make = lambda key, body: backend.resources[key].create(caller, body)  # noqa: E731
    product = make("products", {"name": "Storage", "code": "storage"})
    meter = make("meters", {"productId": product["id"], "name": "Storage", "code": "storage", "derivedFields": [],
                            "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"}]})
    aggregation = make("aggregations", {"meterId": meter["id"], "name": "GB", "code": "gb", "aggregation": "SUM",
                                        "targetField": "gb", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB"})
    template = make("plantemplates", {"productId": product["id"], "name": "Storage", "billFrequency": "MONTHLY",
                                      "currency": "USD", "standingCharge": 5})
    plan = make("plans", {"planTemplateId": template["id"], "name": "Storage", "code": "storage"})
    make("pricings", {"planId": plan["id"], "aggregationId": aggregation["id"], "startDate": "2026-01-01T00:00:00Z",
                      "cumulative": True, "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 0.1},
                                                           {"lowerLimit": 500, "fixedPrice": 0, "unitPrice": 0.05}]})
    ids = []
    for n in range(accounts):
        account = make("accounts", {"name": f"A{n}", "code": f"acct-{n:04d}", "emailAddress": f"a{n}@example.com"})
        make("accountplans", {"accountId": account["id"], "planId": plan["id"], "startDate": "2026-01-01T00:00:00Z"})
        make("commitments", {"accountId": account["id"], "amount": 50, "currency": "USD", "startDate": "2026-01-01",
                             "endDate": "2027-01-01"})
        ids.append(account["id"])
    total = accounts * PER_ACCOUNT
    for first in range(0, total, BATCH):
        backend.usage.submit(caller, [
            {"meter": "storage", "account": f"acct-{i % accounts:04d}",
             "ts": f"2026-03-{i % 28 + 1:02d}T{i % 24:02d}:00:00.{i % 1000:03d}Z", "measure": {"gb": i % 17 + 0.5}}
            for i in range(first, min(first + BATCH, total))])
    return ids


def run_job(http: httpx.Client, url: str, token: dict, backend) -> tuple[float, dict]:
    began = time.perf_counter()
    created = http.post(f"{url}/organizations/{ORG}/billjobs", headers=token,
                        json={"lastDateInBillingPeriod": "2026-03-31", "billingFrequency": "MONTHLY"})
    assert created.status_code == 200, created.text
    backend.change_clock(advance_seconds=1)
    seconds = time.perf_counter() - began
    job = http.get(f"{url}/organizations/{ORG}/billjobs/{created.json()['id']}", headers=token).json()
    assert job["status"] == "COMPLETE", job
    return seconds, job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100 accounts instead of 1,000")
    accounts = 100 if parser.parse_args().quick else 1000
    app = create_app(Settings(validate_responses=False))
    backend = app.backend
    backend.change_clock(freeze=True, at="2026-04-01T06:00:00Z")
    began = time.perf_counter()
    ids = setup(backend, accounts)
    setting_up = time.perf_counter() - began
    with serve_in_thread(app) as url, httpx.Client(trust_env=False, timeout=600) as http:
        token = http.post(f"{url}/oauth/token", headers=BASIC, json={"grant_type": "client_credentials"}).json()
        token = {"Authorization": f"Bearer {token['access_token']}"}
        first, job = run_job(http, url, token, backend)
        assert len(job["billIds"]) == accounts
        again, job_again = run_job(http, url, token, backend)
        assert sorted(job_again["billIds"]) == sorted(job["billIds"])
        body = {"accountIds": [ids[0]], "billingFrequency": "MONTHLY", "billFrequencyInterval": 1,
                "lastDateInBillingPeriod": "2026-03-31"}
        previews = []
        for _ in range(7):
            start = time.perf_counter()
            assert http.post(f"{url}/organizations/{ORG}/bills/preview", headers=token, json=body).status_code == 200
            previews.append((time.perf_counter() - start) * 1000)
    bill = backend.store.peek(ORG, "bills").get(job["billIds"][0])
    rows = [
        (f"set-up: {accounts:,} accounts, plans, commitments, {accounts * PER_ACCOUNT:,} measurements",
         f"{setting_up:.1f} s"),
        (f"bill job over {accounts:,} accounts (create to COMPLETE)",
         f"{first:.2f} s ({first / accounts * 1000:.2f} ms a bill)"),
        ("the same job again (every bill recalculated in place)", f"{again:.2f} s"),
        ("PreviewBill of one account (median)", f"{statistics.median(previews):.1f} ms"),
        ("one bill's lines", ", ".join(f"{i['lineItemType']} {i['subtotal']}" for i in bill["lineItems"])),
    ]
    width = max(len(r[0]) for r in rows)
    for what, figure in rows:
        print(f"{what:<{width}}  {figure}")


if __name__ == "__main__":
    main()
