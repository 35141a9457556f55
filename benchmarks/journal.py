"""What the request journal costs, printed as a table. Not a test: run it by hand.

    .venv/bin/python benchmarks/journal.py [--quick]

* Per request, end to end: the same requests (a create with a JSON body, a retrieve, a list
  page of 20, a 404) sent straight into the ASGI app in this process (no HTTP, no client
  library, so the mock's own time is what is measured), with the journal on (the default,
  10,000 kept, filled first so that every request recorded drops the oldest) and off
  (``retain_journal=0``), as CPU time of this process. Short rounds alternate between the two
  apps and the median round is taken; the difference is within the noise of a request's few
  milliseconds, so the journal's own work is also timed alone:
* Per request, the journal's work alone: what the HTTP layer does for one request (start an
  entry, pass the body chunk through, see the response's two messages, record it), in a
  tight loop over the same ASGI messages.
* Reading: one entry shown (decoded, redacted), a page of 100, and a count over 10,000
  entries filtered by operationId (first call, which resolves each entry's operation, and
  again).
* Memory held by a full journal of 10,000 entries: of typical requests, and with both bodies
  at the 8 KiB cap.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.app import create_app  # noqa: E402
from mockserver.backend.journal import RequestJournal  # noqa: E402
from mockserver.domain.clock import Clock  # noqa: E402
from mockserver.domain.journal import BODY_LIMIT, JournalFilter  # noqa: E402
from mockserver.settings import Settings  # noqa: E402

ORG = "bench-journal"
BASIC = "Basic " + base64.b64encode(b"bench:bench-secret").decode()


async def _call(app, method: str, path: str, headers: list, body: bytes = b"", query: bytes = b""):
    sent = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query, "headers": headers, "server": ("testserver", 80),
             "client": ("127.0.0.1", 5000)}
    await app(scope, receive, send)
    status = sent[0]["status"]
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def _token(app) -> bytes:
    status, body = await _call(app, "POST", "/oauth/token",
                               [(b"authorization", BASIC.encode()), (b"content-type", b"application/json")],
                               b'{"grant_type":"client_credentials"}')
    assert status == 200
    return json.loads(body)["access_token"].encode()


async def _round(app, token: bytes, n: int, offset: int) -> float:
    """CPU seconds (of every thread of this process) per request over ``n`` groups of four
    requests: CPU time, not wall time, so that other work on the machine weighs less."""
    auth = [(b"authorization", b"Bearer " + token)]
    json_headers = auth + [(b"content-type", b"application/json")]
    base = f"/organizations/{ORG}/products"
    began = time.process_time()
    for i in range(n):
        code = f"p{offset + i}"
        status, body = await _call(app, "POST", base, json_headers,
                                   json.dumps({"name": f"Product {code}", "code": code}).encode())
        assert status == 200, body
        product_id = json.loads(body)["id"]
        assert (await _call(app, "GET", f"{base}/{product_id}", auth))[0] == 200
        assert (await _call(app, "GET", base, auth, query=b"pageSize=20"))[0] == 200
        assert (await _call(app, "GET", f"{base}/missing", auth))[0] == 404
    return (time.process_time() - began) / (4 * n)


def end_to_end(rounds: int, per_round: int) -> tuple[float, float]:
    on = create_app(Settings(quiet=True))
    off = create_app(Settings(quiet=True, retain_journal=0))
    _fill(on.backend.journal, 10_000)  # measured full: each request recorded drops the oldest

    async def run():
        tokens = {id(on): await _token(on), id(off): await _token(off)}
        times = {id(on): [], id(off): []}
        for r in range(rounds + 1):
            for app in ((on, off) if r % 2 else (off, on)):
                spent = await _round(app, tokens[id(app)], per_round, r * per_round)
                if r:  # the first round warms up (validators compile on first use)
                    times[id(app)].append(spent)
        return statistics.median(times[id(on)]), statistics.median(times[id(off)])

    result = asyncio.run(run())
    assert on.backend.journal.count(JournalFilter()) > 0 and off.backend.journal.count(JournalFilter()) == 0
    return result


def _scope(body_size: int) -> dict:
    return {"type": "http", "method": "POST", "path": f"/organizations/{ORG}/products",
            "query_string": b"", "headers": [(b"authorization", b"Bearer x"),
                                              (b"content-type", b"application/json"),
                                              (b"content-length", str(body_size).encode())]}


def journal_work(n: int) -> float:
    """Seconds per request of the journal's own work, as the HTTP layer does it."""
    journal = RequestJournal(Clock(), 10_000)
    body = json.dumps({"name": "Product", "code": "product"}).encode()
    answer = json.dumps({"id": "0" * 36, "version": 1, "name": "Product", "code": "product"}).encode()
    scope = _scope(len(body))
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]}
    end = {"type": "http.response.body", "body": answer}
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive():
        return message

    async def run():
        began = time.perf_counter()
        for _ in range(n):
            started = time.perf_counter()
            entry = journal.start(scope)
            await entry.wrap_receive(receive)()
            entry.sent(start)
            entry.sent(end)
            journal.record(entry, time.perf_counter() - started)
        return (time.perf_counter() - began) / n

    async def baseline():
        # The same loop without the journal: the awaits and clock reads the loop itself costs.
        began = time.perf_counter()
        for _ in range(n):
            started = time.perf_counter()
            await receive()
            _ = time.perf_counter() - started
        return (time.perf_counter() - began) / n

    return asyncio.run(run()) - asyncio.run(baseline())


def _filled(count: int, body_size: int | None = None) -> RequestJournal:
    journal = RequestJournal(Clock(), count)
    journal.resolve_operation = lambda method, path: "PostProduct" if path.endswith("/products") else "GetProduct"
    return _fill(journal, count, body_size)


def _fill(journal: RequestJournal, count: int, body_size: int | None = None) -> RequestJournal:
    for i in range(count):
        if body_size is None:
            body = json.dumps({"name": f"Product {i}", "code": f"p{i}"}).encode()
            answer = json.dumps({"id": f"{i:036d}", "version": 1, "name": f"Product {i}", "code": f"p{i}",
                                 "dtCreated": "2026-01-01T00:00:00.000Z", "createdBy": "bench"}).encode()
        else:
            body = answer = b"x" * body_size
        entry = journal.start({**_scope(len(body)), "path": f"/organizations/{ORG}/products"
                               + ("" if i % 2 else f"/{i}")})
        entry.request_size = len(body)
        entry.request_chunks.append(body[:BODY_LIMIT])
        entry.sent({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        entry.sent({"type": "http.response.body", "body": answer})
        journal.record(entry, 0.001)
    return journal


def reading() -> dict[str, float]:
    journal = _filled(10_000)
    everything = JournalFilter()
    timings = {}
    began = time.perf_counter()
    for _ in range(200):
        journal.page(everything, 1)
    timings["one entry"] = (time.perf_counter() - began) / 200
    began = time.perf_counter()
    for _ in range(20):
        journal.page(everything, 100)
    timings["page of 100"] = (time.perf_counter() - began) / 20
    by_operation = JournalFilter(operation_id="GetProduct")
    began = time.perf_counter()
    first = journal.count(by_operation)
    timings["count by operationId, first"] = time.perf_counter() - began
    began = time.perf_counter()
    assert journal.count(by_operation) == first == 5_000
    timings["count by operationId, again"] = time.perf_counter() - began
    return timings


def memory(count: int, body_size: int | None) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    journal = _filled(count, body_size)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del journal
    return held


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds, per_round, loop = (100, 2, 20_000) if args.quick else (600, 2, 200_000)

    on, off = end_to_end(rounds, per_round)
    alone = journal_work(loop)
    reads = reading()
    typical, capped = memory(10_000, None), memory(10_000, 20_000)

    rows = [
        ("CPU per request, journal on / off (create, get, list of 20, 404; in-process ASGI, median round)",
         f"{on * 1000:.3f} / {off * 1000:.3f} ms ({(on - off) * 1e6:+.0f} µs)"),
        ("the journal's own work per request (start, body, response, record)", f"{alone * 1e6:.1f} µs"),
        ("read: one entry shown (decoded, redacted) / a page of 100",
         f"{reads['one entry'] * 1000:.2f} / {reads['page of 100'] * 1000:.1f} ms"),
        ("count by operationId over 10,000 entries: first / again",
         f"{reads['count by operationId, first'] * 1000:.1f} / {reads['count by operationId, again'] * 1000:.1f} ms"),
        ("memory of a full journal (10,000): typical requests / both bodies at the 8 KiB cap",
         f"{typical / 2**20:.1f} / {capped / 2**20:.0f} MiB"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
