"""Ingest figures for m3ter-mock's usage store, printed as a table. Not a test: run it by hand.

    .venv/bin/python benchmarks/usage_ingest.py [--quick]

* measurements per second for batches of 1,000 (SubmitMeasurements' largest): through
  ``UsageStore.submit`` directly, as ASGI calls into the app (the whole request pipeline,
  without a socket), through HTTP to the app served on a loopback port in this process
  (client and server share one interpreter), and through HTTP to
  ``m3ter-mock serve`` in its own process (the way users run it), also per second of that
  server's CPU time (what it reaches on a core of its own, whatever else the machine runs);
* the memory one million stored measurements take: traced allocations (tracemalloc) of the
  store holding 100,000 measurements, times ten, and the growth of the process's resident
  size while 1,000,000 are stored.

Each measurement has a uid, a MEASURE value and a WHERE value, for one of 100 Accounts, one
second after the previous one. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # Connexion imports it

from mockserver.app import create_app  # noqa: E402
from mockserver.backend.core import Backend  # noqa: E402
from mockserver.backend.crud import Caller  # noqa: E402
from mockserver.settings import Settings  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.server import serve_in_thread  # noqa: E402

ORG = "bench-usage"
BATCH = 1000
ACCOUNTS = 100
BASIC = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}
METER = {"name": "API calls", "code": "api_calls", "derivedFields": [],
         "dataFields": [{"category": "MEASURE", "code": "requests", "name": "Requests", "unit": "count"},
                        {"category": "WHERE", "code": "region", "name": "Region"}]}
START = 1_767_225_600  # 2026-01-01T00:00:00Z


def batch(number: int) -> list[dict]:
    """The ``number``-th batch: 1,000 measurements, one second apart, after the previous batch's."""
    first = number * BATCH
    return [{"uid": f"m-{first + i}", "meter": "api_calls", "account": f"acct-{(first + i) % ACCOUNTS:03d}",
             "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + first + i)),
             "measure": {"requests": (first + i) % 17 + 0.5}, "where": {"region": ("eu", "us", "ap")[i % 3]}}
            for i in range(BATCH)]


def direct_rate(batches: int) -> float:
    backend = Backend()
    caller = Caller(ORG, "bench")
    backend.resources["meters"].create(caller, METER)
    bodies = [batch(n) for n in range(batches)]
    began = time.perf_counter()
    for body in bodies:
        backend.usage.submit(caller, body)
    elapsed = time.perf_counter() - began
    assert backend.usage.count(ORG) == batches * BATCH
    return batches * BATCH / elapsed


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _http_rate(url: str, batches: int, server_pid: int | None = None) -> tuple[float, float | None]:
    """Measurements per second of wall time, and (with ``server_pid``) per second of the
    server's CPU time: the rate a server with a core to itself would reach."""
    bodies = [json.dumps({"measurements": batch(n)}).encode() for n in range(batches)]
    with httpx.Client(base_url=url, trust_env=False, timeout=60) as client:
        token = client.post("/oauth/token", json={"grant_type": "client_credentials"}, headers=BASIC)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Content-Type": "application/json"}
        assert client.post(f"/organizations/{ORG}/meters", json=METER, headers=headers).status_code == 200
        cpu = _cpu_seconds(server_pid) if server_pid else None
        began = time.perf_counter()
        for body in bodies:
            response = client.post(f"/organizations/{ORG}/measurements", content=body, headers=headers)
            assert response.status_code == 200, response.text
        elapsed = time.perf_counter() - began
        if server_pid:
            cpu = _cpu_seconds(server_pid) - cpu
    return batches * BATCH / elapsed, (batches * BATCH / cpu if cpu else None)


def asgi_rate(batches: int) -> float:
    """Requests handed to the app as ASGI calls in this thread: the whole request pipeline
    (authentication, validation, the handler, the answer) without a socket or a client."""
    app = create_app(Settings(quiet=True))
    client = app.test_client()
    answer = client.post("/oauth/token", json={"grant_type": "client_credentials"}, headers=BASIC)
    token = answer.json()["access_token"]
    assert client.post(f"/organizations/{ORG}/meters", json=METER,
                       headers={"Authorization": f"Bearer {token}"}).status_code == 200
    path = f"/organizations/{ORG}/measurements"
    bodies = [json.dumps({"measurements": batch(n)}).encode() for n in range(batches)]

    async def call(body: bytes) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode()),
                             (b"authorization", f"Bearer {token}".encode())],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status = []

        async def receive():
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # no disconnect while the answer is sent

        async def send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        return status[0]

    async def run() -> float:
        began = time.perf_counter()
        for body in bodies:
            assert await call(body) == 200
        return time.perf_counter() - began

    elapsed = asyncio.run(run())
    assert app.backend.usage.count(ORG) == batches * BATCH
    return batches * BATCH / elapsed


def http_in_process_rate(batches: int) -> float:
    app = create_app(Settings(quiet=True))
    with serve_in_thread(app) as url:
        rate, _ = _http_rate(url, batches)
    assert app.backend.usage.count(ORG) == batches * BATCH
    return rate


def http_served_rate(batches: int) -> tuple[float, float]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(trust_env=False) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get(f"{url}/_mock/clock").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        return _http_rate(url, batches, process.pid)
    finally:
        process.terminate()
        process.wait()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def traced_bytes_per_million(measurements: int) -> float:
    """Allocations the store holds for ``measurements`` (batches made before tracing starts)."""
    backend = Backend()
    caller = Caller(ORG, "bench")
    backend.resources["meters"].create(caller, METER)
    bodies = [batch(n) for n in range(measurements // BATCH)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for body in bodies:
        backend.usage.submit(caller, body)
    del bodies  # the request bodies are not the store's
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held * 1_000_000 / measurements


def rss_growth_for(measurements: int) -> int:
    """Growth of the resident size while ``measurements`` are stored (each batch built, sent,
    dropped, so what stays is the store's)."""
    backend = Backend()
    caller = Caller(ORG, "bench")
    backend.resources["meters"].create(caller, METER)
    gc.collect()
    before = _rss_bytes()
    for n in range(measurements // BATCH):
        backend.usage.submit(caller, batch(n))
    gc.collect()
    assert backend.usage.count(ORG) == measurements
    return _rss_bytes() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches, 200,000 measurements for RSS")
    args = parser.parse_args()
    batches = 20 if args.quick else 100
    served, served_cpu = http_served_rate(batches)
    rows = [
        ("ingest, UsageStore.submit (batches of 1,000)", f"{direct_rate(batches):,.0f} measurements/s"),
        ("ingest, ASGI calls into the app (no socket, no client)", f"{asgi_rate(batches):,.0f} measurements/s"),
        ("ingest, HTTP to the app in this process", f"{http_in_process_rate(batches):,.0f} measurements/s"),
        ("ingest, HTTP to m3ter-mock serve", f"{served:,.0f} measurements/s "
                                             f"({served_cpu:,.0f} per second of the server's CPU time)"),
        ("memory per 1,000,000 measurements (tracemalloc, 100,000 x 10)",
         f"{traced_bytes_per_million(100_000) / 2 ** 20:,.0f} MiB"),
    ]
    stored = 200_000 if args.quick else 1_000_000
    growth = rss_growth_for(stored)
    rows.append((f"resident size growth for {stored:,} measurements",
                 f"{growth / 2 ** 20:,.0f} MiB ({growth * 1_000_000 / stored / 2 ** 20:,.0f} MiB per million)"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
