"""Figures for m3ter-mock, printed as a table. Not a test: run it by hand or in CI logs.

    .venv/bin/python benchmarks/bench.py [--quick]

Measures start-up time of ``m3ter-mock serve``, the cost of a list page with 100 and
100,000 entities in the organization (first page and a deep page), token issuing, the
latency from an entity change to a signed webhook delivery arriving at a local receiver,
and the time to run an operational export of 10,000 entities. Everything runs on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.app import create_app  # noqa: E402
from mockserver.backend.crud import Caller  # noqa: E402
from mockserver.settings import Settings  # noqa: E402
from tests.support.receiver import receiving  # noqa: E402
from tests.support.server import serve_in_thread  # noqa: E402

ORG = "bench-org"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def startup_seconds() -> float:
    port = free_port()
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(trust_env=False) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/_mock/clock").status_code == 200:
                        return time.perf_counter() - began
                except httpx.TransportError:
                    time.sleep(0.01)
    finally:
        process.terminate()
        process.wait()


def token(client: httpx.Client) -> dict:
    body = client.post("/oauth/token", json={"grant_type": "client_credentials"}, headers=BASIC).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def timed(call, repeat: int) -> float:
    """Median milliseconds of ``call``."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def fill(app, count: int) -> None:
    caller = Caller(ORG, "bench")
    body = {"name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a * 2"}
    for n in range(count):
        app.backend.compound_aggregations.create(caller, {**body, "code": f"agg_{n}"})


def list_costs(sizes: list[int], repeat: int) -> list[tuple[str, float]]:
    rows = []
    for size in sizes:
        app = create_app(Settings(quiet=True))
        fill(app, size)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, trust_env=False) as client:
            auth = token(client)
            path = f"/organizations/{ORG}/compoundaggregations"
            first = client.get(path, params={"pageSize": 100}, headers=auth).json()
            rows.append((f"list page 1 (100 items), {size:,} stored",
                         timed(lambda: client.get(path, params={"pageSize": 100}, headers=auth), repeat)))
            deep, cursor = None, first.get("nextToken")
            for _ in range(min(size // 100 - 1, 400)):  # walk to a deep page
                if not cursor:
                    break
                deep = cursor
                cursor = client.get(path, params={"pageSize": 100, "nextToken": cursor}, headers=auth).json().get("nextToken")
            if deep:
                rows.append((f"list deep page (100 items), {size:,} stored",
                             timed(lambda: client.get(path, params={"pageSize": 100, "nextToken": deep}, headers=auth), repeat)))
            rows.append((f"GET one by id, {size:,} stored", timed(
                lambda: client.get(f"{path}/{first['data'][0]['id']}", headers=auth), repeat)))
        app.backend.reset()
    return rows


def generic_resource_costs(repeat: int) -> list[tuple[str, float]]:
    """A resource served by the generic engine (products), over HTTP: create, read, list,
    replace; each call is a separate request, as a client makes them."""
    app = create_app(Settings(quiet=True))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, trust_env=False) as client:
        auth = token(client)
        path = f"/organizations/{ORG}/products"
        counter = iter(range(10**9))

        def create():
            n = next(counter)
            return client.post(path, json={"name": f"Product {n}", "code": f"p_{n}"}, headers=auth).json()

        rows = [("POST a product (generic engine)", timed(create, repeat))]
        product = create()
        rows.append(("GET a product by id", timed(lambda: client.get(f"{path}/{product['id']}", headers=auth), repeat)))
        rows.append(("list products, page of 20", timed(lambda: client.get(path, params={"pageSize": 20}, headers=auth),
                                                       repeat)))
        state = {"version": product["version"]}

        def replace():
            body = client.put(f"{path}/{product['id']}", headers=auth,
                              json={"name": "Renamed", "code": product["code"], "version": state["version"]}).json()
            state["version"] = body["version"]

        rows.append(("PUT a product (version checked)", timed(replace, repeat)))
    return rows


def token_cost(repeat: int) -> float:
    app = create_app(Settings(quiet=True))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, trust_env=False) as client:
        return timed(lambda: token(client), repeat)


def delivery_latency(repeat: int) -> float:
    app = create_app(Settings(quiet=True))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, trust_env=False) as client, receiving() as receiver:
        auth = token(client)
        base = f"/organizations/{ORG}"
        note = client.post(f"{base}/notifications/configurations", headers=auth, json={
            "name": "n", "code": "n", "description": "d", "alwaysFireEvent": True,
            "eventName": "configuration.compoundaggregation.created"}).json()
        hook = client.post(f"{base}/integrationdestinations/webhooks", headers=auth, json={
            "name": "h", "description": "d", "url": receiver.url,
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "bench-secret"}}).json()
        client.post(f"{base}/integrationconfigs", headers=auth, json={
            "entityType": "Notification", "entityId": note["id"], "destination": "Webhook", "destinationId": hook["id"]})
        samples = []
        for n in range(repeat):
            began = time.perf_counter()
            client.post(f"{base}/compoundaggregations", headers=auth, json={
                "name": "s", "code": f"c{n}", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"})
            receiver.wait_for(n + 1)
            samples.append((time.perf_counter() - began) * 1000)
        return statistics.median(samples)


def export_seconds(count: int) -> tuple[float, int]:
    app = create_app(Settings(quiet=True))
    fill(app, count)
    caller = Caller(ORG, "bench")
    began = time.perf_counter()
    job_id = app.backend.exports.create_adhoc(caller, {"sourceType": "OPERATIONAL",
                                                       "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]})["jobId"]
    app.backend.run_due()
    elapsed = time.perf_counter() - began
    details = app.backend.exports.job_details(caller, job_id)
    assert details["status"] == "SUCCEEDED", details
    return elapsed, details["files"][0]["bytes"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    args = parser.parse_args()
    repeat = 20 if args.quick else 100
    big = 10_000 if args.quick else 100_000

    rows: list[tuple[str, str]] = [("start-up to first answer (m3ter-mock serve)", f"{startup_seconds():.2f} s")]
    rows += [(name, f"{ms:.2f} ms") for name, ms in list_costs([100, big], repeat)]
    rows += [(name, f"{ms:.2f} ms") for name, ms in generic_resource_costs(repeat)]
    rows.append(("POST /oauth/token", f"{token_cost(repeat):.2f} ms"))
    rows.append(("entity change -> signed webhook received (median)", f"{delivery_latency(20):.1f} ms"))
    seconds, size = export_seconds(10_000)
    rows.append(("operational export of 10,000 compound aggregations", f"{seconds:.2f} s ({size / 1e6:.1f} MB CSV)"))

    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    threading.excepthook = lambda args: None
    main()
