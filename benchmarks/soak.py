"""Soak: memory of a served mock under steady create/update/delete, sampled over time.

    .venv/bin/python benchmarks/soak.py [--seconds 45] [--serve-args "--retain-events 2000"]

Starts ``m3ter-mock serve`` on a free 127.0.0.1 port, then for ``--seconds`` (at most 60)
creates, updates and deletes compound aggregations (each change records an Event) and
asks for an export of them now and then, in two client threads. Prints the server's RSS
every few seconds and the growth between the first and the last third of the run: with
retention in force the curve goes flat once the retained Events and files are full.
Not a test; every request stays on loopback and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import shlex
import socket
import subprocess
import sys
import threading
import time

import httpx

ORG = "soak-org"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"soak:soak").decode()}
BODY = {"name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a * 2"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def churn(base: str, stop: threading.Event, counter: itertools.count) -> None:
    with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
        token = client.post("/oauth/token", json={"grant_type": "client_credentials"}, headers=BASIC).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        path = f"/organizations/{ORG}/compoundaggregations"
        for n in itertools.count():
            if stop.is_set():
                return
            created = client.post(path, json=BODY, headers=auth).json()
            updated = client.put(f"{path}/{created['id']}", json={**BODY, "name": "Storage 2",
                                                                    "version": created["version"]},
                                 headers=auth).json()
            client.delete(f"{path}/{updated['id']}", headers=auth)
            if n % 50 == 0:
                client.post(f"/organizations/{ORG}/dataexports/adhoc", headers=auth,
                            json={"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]})
            next(counter)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--serve-args", default="", help="extra arguments for m3ter-mock serve")
    args = parser.parse_args()
    seconds = min(args.seconds, 60)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--quiet",
                                *shlex.split(args.serve_args)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(f"{base}/oauth/token", json={"grant_type": "client_credentials"}, headers=BASIC,
                           trust_env=False)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        stop, counter = threading.Event(), itertools.count()
        threads = [threading.Thread(target=churn, args=(base, stop, counter), daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        samples = []
        began = time.monotonic()
        print(f"{'seconds':>8} {'cycles':>8} {'RSS MB':>8}")
        while time.monotonic() - began < seconds:
            time.sleep(min(3.0, seconds / 10))
            cycles = next(counter)
            samples.append((time.monotonic() - began, cycles, rss_mb(process.pid)))
            print(f"{samples[-1][0]:8.1f} {cycles:8d} {samples[-1][2]:8.1f}", flush=True)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        third = max(1, len(samples) // 3)
        early = max(s[2] for s in samples[:third])
        late = max(s[2] for s in samples[-third:])
        total = samples[-1][1]
        print(f"create+update+delete cycles: {total} ({total / samples[-1][0]:.0f}/s, each 3 Events)")
        print(f"RSS: peak of first third {early:.1f} MB, peak of last third {late:.1f} MB "
              f"({late - early:+.1f} MB)")
    finally:
        process.terminate()
        process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
