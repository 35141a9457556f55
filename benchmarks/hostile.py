"""What one hostile request costs the mock: status, server CPU time and peak memory growth
per request shape (issue 8, point 4 and 6). Not a test: run it by hand or in CI logs.

    .venv/bin/python benchmarks/hostile.py [--repeat N] [--timeout SECONDS] [--only WORD ...]
                                           [--root CHECKOUT]

The mock runs as a subprocess (uvicorn, default settings) on a free 127.0.0.1 port; every
request is written on a raw socket (so the framing is exactly as listed: no Content-Type,
50 MB declared, chunked...). Per shape it prints the status, the CPU time the server
process spent (all its threads, from /proc/<pid>/task/*/schedstat), and the growth of its
peak resident memory (VmHWM, reset before each request through /proc/<pid>/clear_refs).
Each shape is sent once to warm up (first use compiles validators), then ``--repeat`` times;
the median CPU time and the largest peak growth are printed. A shape that gets no answer
within the timeout is printed as such, and the server is restarted for the next one.
``--root`` serves another checkout (e.g. ``git archive HEAD``) for before/after figures.
Linux only (it reads /proc). Bounded: a few seconds, under a minute with stalls.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORG = "hostile-org"
BASE = f"/organizations/{ORG}"
BASIC = "Basic " + base64.b64encode(b"bench:bench-secret").decode()
MIB = 1024 * 1024
AGGREGATION = {"name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a + b"}

SERVER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from mockserver.app import create_app
from mockserver.settings import Settings
uvicorn.run(create_app(Settings(quiet=True)), host="127.0.0.1", port={port}, log_level="error", access_log=False)
"""


@dataclass
class Shape:
    name: str
    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    declared_length: int | None = None  # Content-Length to declare (default: len(body))
    chunked: bool = False


def _json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _fill(template: str, item: str, budget: int) -> bytes:
    """``template`` with ``{}`` replaced by ``item, item, ...``: as many as fit in ``budget`` bytes."""
    overhead = len(template) - 2
    count = (budget - overhead + 1) // (len(item) + 1)
    return template.replace("{}", ",".join([item] * count)).encode()


def shapes() -> list[Shape]:
    def adhoc_ops(types):
        return _json({"sourceType": "OPERATIONAL", "operationalDataTypes": types})

    huge_header = (("Content-Type", "application/json"), ("X-Padding", "x" * (40 * 1024)))
    deep = b"[" * 10_000 + b"]" * 10_000
    ids_100k = _json({"sourceType": "OPERATIONAL", "operationalDataTypes": ["BILLS"],
                      "destinationIds": [f"x{n:05d}" for n in range(100_000)]})
    ints_100k = _json({"sourceType": "OPERATIONAL", "operationalDataTypes": ["BILLS"],
                       "destinationIds": list(range(100_000))})
    schedule_ints_max = _fill('{"sourceType":"OPERATIONAL","operationalDataTypes":["BILLS"],"name":"n","code":"c",'
                              '"destinationIds":[{}]}', "1", MIB)
    usage_repeated_max = _fill('{"sourceType":"USAGE","meterIds":[{}]}', '"m"', MIB)
    usage_unique_max = _json({"sourceType": "USAGE", "meterIds": [f"m{n}" for n in range(110_000)]})
    custom_fields_max = _json({**AGGREGATION, "customFields": {f"f{n}": n for n in range(68_000)}})
    groups_max = _json({"sourceType": "USAGE", "groups": [{"fieldCode": f"f{n}"} for n in range(45_000)]})
    return [
        Shape("baseline: GET list", "GET", f"{BASE}/compoundaggregations", None, ()),
        Shape("baseline: POST aggregation", "POST", f"{BASE}/compoundaggregations", _json(AGGREGATION)),
        Shape("operationalDataTypes x3,000 (75 KB)", "POST", f"{BASE}/dataexports/adhoc",
              adhoc_ops(["COMPOUND_AGGREGATIONS"] * 3000)),
        Shape("operationalDataTypes x10,000 (244 KB)", "POST", f"{BASE}/dataexports/adhoc",
              adhoc_ops(["COMPOUND_AGGREGATIONS"] * 10_000)),
        Shape("100k unknown destinationIds (ad-hoc)", "POST", f"{BASE}/dataexports/adhoc", ids_100k),
        Shape("100k non-string destinationIds (ad-hoc, oneOf)", "POST", f"{BASE}/dataexports/adhoc", ints_100k),
        Shape("1 MiB of non-string destinationIds (schedule, oneOf)", "POST", f"{BASE}/dataexports/schedules",
              schedule_ints_max),
        Shape("1 MiB of repeated meterIds (ad-hoc usage)", "POST", f"{BASE}/dataexports/adhoc", usage_repeated_max),
        Shape("1 MiB of distinct meterIds (ad-hoc usage, valid)", "POST", f"{BASE}/dataexports/adhoc",
              usage_unique_max),
        Shape("1 MiB of customFields (aggregation, valid)", "POST", f"{BASE}/compoundaggregations",
              custom_fields_max),
        Shape("1 MiB of distinct groups (ad-hoc usage, valid)", "POST", f"{BASE}/dataexports/adhoc", groups_max),
        Shape("10,000-deep JSON", "POST", f"{BASE}/compoundaggregations", deep),
        Shape("4,301-digit integer", "POST", f"{BASE}/compoundaggregations",
              _json(AGGREGATION).replace(b'"quantityPerUnit":1', b'"quantityPerUnit":' + b"9" * 4301)),
        Shape("NaN", "POST", f"{BASE}/compoundaggregations",
              _json(AGGREGATION).replace(b'"quantityPerUnit":1', b'"quantityPerUnit":NaN')),
        Shape("lone surrogate", "POST", f"{BASE}/compoundaggregations",
              _json(AGGREGATION).replace(b'"Storage"', b'"\\ud800"')),
        Shape("900 KB name (maxLength 200)", "POST", f"{BASE}/compoundaggregations",
              _json({**AGGREGATION, "name": "n" * 900_000})),
        Shape("over-long webhook secret", "POST", f"{BASE}/integrationdestinations/webhooks",
              _json({"name": "h", "description": "d", "url": "http://127.0.0.1:9/h",
                     "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k",
                                     "secret": "secret-" + "s" * 5000}})),
        Shape("50 MB body (declared)", "POST", f"{BASE}/compoundaggregations", None,
              declared_length=50 * MIB),
        Shape("2 MiB chunked body (no Content-Length)", "POST", f"{BASE}/compoundaggregations",
              b'{"name":"' + b"n" * (2 * MIB) + b'"}', chunked=True),
        Shape("valid JSON without Content-Type", "POST", f"{BASE}/compoundaggregations", _json(AGGREGATION), ()),
        Shape("40 KB of headers", "GET", f"{BASE}/compoundaggregations", None, huge_header),
        Shape("10 KB query string", "GET", f"{BASE}/compoundaggregations?ids=" + ",".join(["a" * 9] * 1000), None, ()),
    ]


class Server:
    def __init__(self, root: Path = ROOT):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(root), port=self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the mock did not start")
                time.sleep(0.05)
        status, body = request(self.port, "POST", "/oauth/token", _json({"grant_type": "client_credentials"}),
                               (("Content-Type", "application/json"), ("Authorization", BASIC)), timeout=30)
        self.bearer = "Bearer " + json.loads(body)["access_token"]

    def cpu_ns(self) -> int:
        total = 0
        for task in os.listdir(f"/proc/{self.process.pid}/task"):
            try:
                with open(f"/proc/{self.process.pid}/task/{task}/schedstat") as handle:
                    total += int(handle.read().split()[0])
            except OSError:  # the thread ended meanwhile
                pass
        return total

    def memory_kib(self, field: str) -> int:
        with open(f"/proc/{self.process.pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError(field)

    def reset_peak(self) -> None:
        with open(f"/proc/{self.process.pid}/clear_refs", "w") as handle:
            handle.write("5")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def request(port, method, path, body, headers, *, declared_length=None, chunked=False, timeout=10.0):
    """One HTTP/1.1 request on its own connection; returns (status or a note, response body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        elif declared_length is not None or body is not None:
            head.append(f"Content-Length: {declared_length if declared_length is not None else len(body)}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sender = threading.Thread(target=_send_body, args=(sock, body, declared_length, chunked), daemon=True)
        sender.start()
        received = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
        except socket.timeout:
            return f"no answer in {timeout:.0f}s", b""
        except ConnectionResetError:
            if not received:
                return "connection reset", b""
        if not received:
            return "closed without answer", b""
        status_line, _, rest = received.partition(b"\r\n")
        _, _, payload = rest.partition(b"\r\n\r\n")
        return int(status_line.split()[1]), payload
    finally:
        sock.close()


def _send_body(sock, body, declared_length, chunked):
    try:
        if chunked:
            for start in range(0, len(body), 64 * 1024):
                piece = body[start:start + 64 * 1024]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        elif declared_length is not None and body is None:
            block = b" " * MIB
            for _ in range(declared_length // MIB):
                sock.sendall(block)
        elif body:
            sock.sendall(body)
    except OSError:  # the server answered early and closed: expected for refused bodies
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured sends per shape (default 3)")
    parser.add_argument("--timeout", type=float, default=8.0, help="seconds to wait for each answer (default 8)")
    parser.add_argument("--only", nargs="*", default=None, help="run only shapes whose name contains one of these")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    args = parser.parse_args()
    selected = [s for s in shapes() if not args.only or any(word.lower() in s.name.lower() for word in args.only)]
    began = time.perf_counter()
    server = Server(args.root)
    print(f"{'shape':<54} {'bytes':>9} {'status':>7} {'CPU ms':>8} {'peak +MB':>9}  message")
    try:
        for shape in selected:
            headers = (("Authorization", server.bearer),) + shape.headers
            size = shape.declared_length or (len(shape.body) if shape.body else 0)
            cpu, peak = [], []
            for attempt in range(args.repeat + 1):
                before_cpu = server.cpu_ns()
                server.reset_peak()
                before_rss = server.memory_kib("VmRSS")
                status, payload = request(server.port, shape.method, shape.path, shape.body, headers,
                                          declared_length=shape.declared_length, chunked=shape.chunked,
                                          timeout=args.timeout)
                if attempt or not isinstance(status, int):
                    cpu.append((server.cpu_ns() - before_cpu) / 1e6)
                    peak.append((server.memory_kib("VmHWM") - before_rss) / 1024)
                if not isinstance(status, int):
                    server.stop()
                    server = Server(args.root)
                    break
            print(f"{shape.name:<54} {size:>9} {status!s:>7} {statistics.median(cpu):>8.1f} {max(peak):>9.1f}  "
                  f"{_message(payload)}", flush=True)
    finally:
        server.stop()
    print(f"({time.perf_counter() - began:.1f}s in all)")
    return 0


def _message(payload: bytes) -> str:
    try:
        text = json.loads(payload)["message"]
        note = f" [{len(payload)} B]"
    except (ValueError, KeyError, TypeError):
        text, note = payload[:60].decode("utf-8", "replace"), f" [{len(payload)} B]" if payload else ""
    text = " ".join(str(text).split())
    return (text if len(text) <= 70 else text[:69] + "…") + note


if __name__ == "__main__":
    sys.exit(main())
