"""Usage query figures for m3ter-mock, printed as a table. Not a test: run it by hand.

    .venv/bin/python benchmarks/usage_query.py [--quick]

Stores 1,000,000 measurements (``--quick``: 100,000) through ``UsageStore.submit`` in
batches of 1,000 -- one Meter, 1,000 Accounts, one measurement every 2.592 seconds over the
30 days of September 2026 -- then times usage queries (``UsageEngine.query``, the code
behind ``POST /usage/query``, and once through HTTP to the app in this process) and the
quantity a bill run reads per account (``UsageEngine.quantities``). Aggregated queries keep
the columns they read until the usage changes, so a query is timed on its first call and
again (the median of seven), and once more after a submission.
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
from mockserver.domain.usage_query import parse_instant  # noqa: E402
from mockserver.settings import Settings  # noqa: E402
from tests.support.server import serve_in_thread  # noqa: E402

ORG = "bench-usage-query"
BATCH = 1000
ACCOUNTS = 1000
BASIC = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}
METER = {"name": "Storage", "code": "storage", "derivedFields": [],
         "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"},
                        {"category": "WHERE", "code": "region", "name": "Region"}]}
START = parse_instant("2026-09-01T00:00:00Z", "start") // 1000
MONTH = 30 * 24 * 3600


def load(backend, total: int) -> tuple[str, float]:
    caller = Caller(ORG, "bench")
    meter = backend.resources["meters"].create(caller, METER)
    for n in range(ACCOUNTS):
        backend.resources["accounts"].create(caller, {"name": f"A{n}", "code": f"acct-{n:04d}",
                                                      "emailAddress": f"a{n}@example.com"})
    step = MONTH / total
    began = time.perf_counter()
    for first in range(0, total, BATCH):
        backend.usage.submit(caller, [
            {"meter": "storage", "account": f"acct-{i % ACCOUNTS:04d}",
             "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(START + int(i * step))) + f".{i % 1000:03d}Z",
             "measure": {"gb": i % 17 + 0.5}, "where": {"region": ("eu", "us", "ap")[i % 3]}}
            for i in range(first, min(first + BATCH, total))])
    assert backend.usage.count(ORG) == total
    return meter["id"], time.perf_counter() - began


def timed(call, runs: int = 7) -> tuple[float, float]:
    """Milliseconds of the first call of ``call``, and the median of ``runs`` more."""
    times = []
    for _ in range(runs + 1):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100,000 measurements instead of 1,000,000")
    total = 100_000 if parser.parse_args().quick else 1_000_000
    app = create_app(Settings(validate_responses=False))
    backend = app.backend
    meter_id, loading = load(backend, total)
    caller = Caller(ORG, "bench")
    engine = backend.usage_engine
    month = {"startDate": "2026-09-01T00:00:00Z", "endDate": "2026-10-01T00:00:00Z"}
    day = {"startDate": "2026-09-15T00:00:00Z", "endDate": "2026-09-16T00:00:00Z"}
    sum_gb = [{"meterId": meter_id, "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"}]
    queries = [
        ("raw, the latest 100 of the month", {**month, "limit": 100}),
        ("raw, one account's month (limit 20,000)", {**month, "accountIds": [
            backend.store.peek(ORG, backend.resources["accounts"].kind.collection).id_for_code("acct-0007")]}),
        ("SUM by account, one day", {**day, "aggregations": sum_gb, "groups": [{"groupType": "ACCOUNT"}]}),
        ("SUM by region and hour, one day", {**day, "aggregations": sum_gb, "groups": [
            {"groupType": "DIMENSION", "meterId": meter_id, "fieldCode": "region"},
            {"groupType": "TIME", "frequency": "HOUR"}]}),
        ("SUM, the whole month", {**month, "aggregations": sum_gb}),
        ("SUM by account and day, the whole month", {**month, "aggregations": sum_gb,
                                                     "groups": [{"groupType": "ACCOUNT"},
                                                                {"groupType": "TIME", "frequency": "DAY"}]}),
    ]
    rows = [("stored measurements", f"{total:,} (loaded in {loading:.1f} s through UsageStore.submit)")]
    rows.append(("query (first call / again, median)", ""))
    for name, body in queries:
        first, again = timed(lambda: engine.query(caller, body))
        answer = engine.query(caller, body)
        rows.append((f"  {name}", f"{first:.1f} / {again:.1f} ms ({len(answer['data']):,} rows)"))
    # A submission changes the usage: the next aggregated query reads the meter's columns again.
    backend.usage.submit(caller, [{"meter": "storage", "account": "acct-0001", "ts": "2026-09-30T12:00:00Z",
                                   "measure": {"gb": 1}}])
    began = time.perf_counter()
    engine.query(caller, queries[4][1])
    rows.append(("  SUM, the whole month, first after a submission", f"{(time.perf_counter() - began) * 1000:.1f} ms"))
    aggregation = backend.resources["aggregations"].create(caller, {
        "name": "GB", "code": "gb", "meterId": meter_id, "targetField": "gb", "aggregation": "SUM",
        "quantityPerUnit": 1, "rounding": "UP", "unit": "GB"})
    start_ms, end_ms = parse_instant(month["startDate"], "s"), parse_instant(month["endDate"], "e")
    _, line = timed(lambda: engine.quantities(ORG, aggregation["id"], "acct-0007", start_ms, end_ms))
    rows.append(("quantities: one account's month (a bill line)", f"{line:.2f} ms"))

    body = {**day, "aggregations": sum_gb, "groups": [{"groupType": "ACCOUNT"}]}
    with serve_in_thread(app) as url, httpx.Client(base_url=url, trust_env=False, timeout=60) as client:
        token = client.post("/oauth/token", json={"grant_type": "client_credentials"}, headers=BASIC).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}

        def over_http():
            response = client.post(f"/organizations/{ORG}/usage/query", json=body, headers=headers)
            assert response.status_code == 200, response.text
        rows.append(("POST /usage/query over loopback: SUM by account, one day", f"{timed(over_http)[1]:.1f} ms"))

    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
