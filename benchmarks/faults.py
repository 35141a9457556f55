"""Fault injection figures for m3ter-mock, printed as a table. Not a test: run it by hand.

    .venv/bin/python benchmarks/faults.py

What the fault layer (``mockserver.api.faults.FaultInjection``) adds to one request of the
m3ter API, timed on the layer alone (over an inner app that answers at once, so nothing else
is in the figure): with no rule held (every request while nobody uses faults), with 100 rules
for other operations (the most the mock keeps; the request is routed and looked up, and no
rule fires), and with a body-field rule on the request's operation that does not match (the
body is read, parsed and handed on). The median of 7 runs of 20,000 requests each.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.api.faults import FaultInjection  # noqa: E402
from mockserver.app import ADMIN_BASE, load_spec  # noqa: E402
from mockserver.backend.core import Backend  # noqa: E402

REQUESTS = 20_000
RUNS = 7
BODY = b'{"name": "Storage", "code": "storage", "customFields": {"tier": "silver"}}'


async def _inner(scope, receive, send):
    message = await receive()
    while message.get("more_body"):
        message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message):
    return None


def _scope() -> dict:
    return {"type": "http", "method": "POST", "path": "/organizations/bench-org/products",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
            "query_string": b""}


async def _run(layer: FaultInjection) -> float:
    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    started = time.perf_counter()
    for _ in range(REQUESTS):
        await layer(_scope(), receive, _send)
    return (time.perf_counter() - started) / REQUESTS


def _median_us(layer) -> float:
    return statistics.median(asyncio.run(_run(layer)) for _ in range(RUNS)) * 1e6


def main() -> None:
    spec = load_spec()
    backend = Backend(spec=spec)
    layer = FaultInjection(_inner, backend, spec["paths"], ADMIN_BASE, 1024 * 1024)
    bare = _median_us(_inner_only())
    rows = [("no layer (the inner app alone)", bare)]
    rows.append(("no rule held", _median_us(layer)))
    for _ in range(100):
        backend.faults.create({"operationId": "ListMeters", "action": "status", "status": 503})
    rows.append(("100 rules for another operation", _median_us(layer)))
    backend.faults.clear()
    backend.faults.create({"operationId": "PostProduct", "action": "status", "status": 409,
                           "bodyField": "customFields.tier", "bodyEquals": "gold"})
    rows.append(("a body-field rule on it, not matching", _median_us(layer)))
    print(f"{'case':40} {'µs per request':>15} {'added':>8}")
    for name, micros in rows:
        print(f"{name:40} {micros:15.2f} {micros - bare:8.2f}")


def _inner_only():
    async def app(scope, receive, send):
        await _inner(scope, receive, send)
    return app


if __name__ == "__main__":
    main()
