"""m3ter-mock and Prism side by side on the same spec: req/s, p50/p99, CPU per request, RSS,
start-up time. Not a test: it prints figures.

    .venv/bin/python benchmarks/vs_prism.py [--duration 5] [--passes 2] [--connections 1,16]
        [--scenarios get,list,post,put,token,ingest] [--prism PATH] [--no-prism] [--wrk PATH]

Each target is started as its own process on a free 127.0.0.1 port with the whole of
openapi/m3ter.yaml (m3ter-mock: ``serve --quiet``, as users run it, request validation on;
Prism: ``prism mock``, static, ``--errors false``). Both get the same requests, target after
target inside each pass, so a busy machine weighs on both alike:

* get: GET one product by id; list: a page of 20 products (100 stored); post: create a product
  (a new code each time); put: replace a product (each connection's turn goes to another product
  with its next version); token: the client-credentials token call; ingest: a batch of 100
  measurements.

The load comes from wrk when it is on the PATH (or ``--wrk``): a C client takes little of the
machine's CPU. Without it, a built-in asyncio client does the same (it competes for the CPU, so
its figures are lower for both targets). Prism is found as ``prism`` on the PATH, ``--prism``,
or ``npx --no-install @stoplight/prism-cli``; without it the Prism rows are skipped with a line
saying so. CPU per request is the server's process tree's user+system time over the requests
it answered; RSS is the tree's resident memory after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "m3ter.yaml"
ORG = "bench-org"
CLIENT, SECRET = "bench", "bench-secret"
BASIC = "Basic " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
PUT_POOL = 256  # products each load thread cycles through on PUT
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SCENARIOS = ("get", "list", "post", "put", "token", "ingest")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the processes under test -----------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    """pid and every descendant (npx starts node as a child)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            with open(f"/proc/{member}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            with open(f"/proc/{member}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@dataclass
class Target:
    name: str
    command: list[str]
    probe: str  # a path any answer to which means "up"
    stateful: bool
    cwd: Path = ROOT
    process: subprocess.Popen | None = None
    url: str = ""
    startup: float = 0.0
    startups: list = field(default_factory=list)
    fixtures: dict = field(default_factory=dict)

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [part.replace("{port}", str(port)) for part in self.command]
        started = time.perf_counter()
        # Bytecode may be written (an installed wheel has it), whatever this shell says.
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        cwd=self.cwd, start_new_session=True, env=environment)
        deadline = started + 120
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} did not start: {self.process.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(self.url + self.probe, timeout=1, headers={"Authorization": "Bearer x"})
                break
            except httpx.HTTPError:
                if time.perf_counter() > deadline:
                    raise SystemExit(f"{self.name} did not answer within 120 s")
                time.sleep(0.01)
        self.startup = time.perf_counter() - started
        self.startups.append(self.startup)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def mock_target(python: str, name: str = "m3ter-mock") -> Target:
    # Started outside the source tree, so ``-m mockserver`` is the one ``python`` has installed
    # (--mock-python compares another installation, an older commit say).
    return Target(name, [python, "-m", "mockserver", "serve", "--quiet", "--port", "{port}",
                         "--client", f"{CLIENT}:{SECRET}"], "/_mock/health", stateful=True,
                  cwd=Path(tempfile.gettempdir()))


def prism_command(explicit: str | None) -> list[str] | None:
    if explicit:
        return [explicit]
    if shutil.which("prism"):
        return ["prism"]
    if shutil.which("npx"):
        probe = subprocess.run(["npx", "--no-install", "@stoplight/prism-cli", "--version"],
                               capture_output=True, text=True, timeout=120)
        if probe.returncode == 0:
            return ["npx", "--no-install", "@stoplight/prism-cli"]
    return None


def prism_target(command: list[str]) -> Target:
    return Target("prism", command + ["mock", str(SPEC), "-h", "127.0.0.1", "-p", "{port}", "--errors", "false",
                                      "-v", "warn"],
                  f"/organizations/{ORG}/products/probe", stateful=False)


# -- what each target holds before the load ---------------------------------------------------

def prepare(target: Target) -> None:
    with httpx.Client(base_url=target.url, timeout=30) as client:
        answer = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                             headers={"Authorization": BASIC})
        answer.raise_for_status()
        bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        products = []
        for number in range(100):
            answer = client.post(f"/organizations/{ORG}/products", headers=bearer,
                                 json={"name": f"Product {number}", "code": f"product_{number}"})
            answer.raise_for_status()
            products.append(answer.json()["id"])
        client.post(f"/organizations/{ORG}/meters", headers=bearer, json={
            "name": "Calls", "code": "calls",
            "dataFields": [{"category": "MEASURE", "code": "count", "name": "Count"}],
            "derivedFields": []}).raise_for_status()
        client.post(f"/organizations/{ORG}/accounts", headers=bearer, json={
            "name": "Acme", "code": "acme", "emailAddress": "billing@acme.example"}).raise_for_status()
    target.fixtures = {"bearer": bearer["Authorization"], "products": products}


def measurements_body() -> str:
    batch = [{"meter": "calls", "account": "acme", "ts": f"2026-11-01T{n // 60:02d}:{n % 60:02d}:00Z",
              "measure": {"count": 1}} for n in range(100)]
    return json.dumps({"measurements": batch}, separators=(",", ":"))


def scenario_requests(name: str, target: Target) -> dict:
    """What wrk's Lua script and the built-in client both need to know about a scenario."""
    products = target.fixtures["products"]
    base = f"/organizations/{ORG}/products"
    if name == "get":
        return {"method": "GET", "path": f"{base}/{products[0]}"}
    if name == "list":
        return {"method": "GET", "path": f"{base}?pageSize=20"}
    if name == "post":
        return {"method": "POST", "path": base, "template": '{"name":"New %s","code":"new_%s"}'}
    if name == "put":
        return {"method": "PUT", "path": base, "pool": target.fixtures["put_pool"]}
    if name == "token":
        return {"method": "POST", "path": "/oauth/token", "body": '{"grant_type":"client_credentials"}', "basic": True}
    if name == "ingest":
        return {"method": "POST", "path": f"/organizations/{ORG}/measurements", "body": measurements_body()}
    raise ValueError(name)


# -- load: wrk ----------------------------------------------------------------------------------

LUA = r"""
local spec = %(spec)s
local counter = 0
-- thread_number is a global: setup() sets it in each thread's own Lua state.
thread_number = 0
local pool = {}
local versions = {}
local next_thread = 0
local tag = "%(tag)s"

local threads = {}

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

-- The last answer that was not a success, per thread, to show what went wrong.
-- The version a product is at is learnt from the answer: wrk calls request() once more than it
-- sends (to check the script), so counting requests would run ahead.
function response(status, headers, body)
  if spec.pool and status == 200 then
    local id, version = string.match(body, '"id":"([^"]+)".*"version":(%%d+)')
    if id then versions[id] = tonumber(version) end
  end
  if status >= 300 then
    failed_status = status
    failed_body = body
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local status = thread:get("failed_status")
    if status then
      io.write("FAILED ", status, " ", string.sub(thread:get("failed_body") or "", 1, 300), "\n")
    end
  end
end

function init(args)
  if spec.pool then
    for i = 1, %(pool_size)d do
      pool[i] = spec.pool[thread_number * %(pool_size)d + i]
    end
  end
end

function request()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = spec.auth}
  local path, body = spec.path, spec.body
  if spec.template then
    local unique = tag .. "_" .. thread_number .. "_" .. counter
    body = string.format(spec.template, unique, unique)
  elseif spec.pool then
    local slot = (counter - 1) %% %(pool_size)d + 1
    path = spec.path .. "/" .. pool[slot]
    body = string.format('{"name":"Product %%d","code":"%%s_put_%%d_%%d","version":%%d}',
                         counter, tag, thread_number, slot, versions[pool[slot]] or 1)
  end
  return wrk.format(spec.method, path, headers, body)
end
"""


def _lua_value(value) -> str:
    if isinstance(value, list):
        return "{" + ",".join(_lua_value(item) for item in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # a JSON string is a valid Lua string here (no \u escapes needed)


def put_pool(target: Target, tag: str, threads: int) -> None:
    """Fresh products for a PUT run, all at version 1: the run moves each one's version on by
    the requests it got, which only the load thread that sent them knows."""
    pool = []
    with httpx.Client(base_url=target.url, timeout=30,
                      headers={"Authorization": target.fixtures["bearer"]}) as client:
        for number in range(PUT_POOL * threads):
            answer = client.post(f"/organizations/{ORG}/products",
                                 json={"name": f"Put {tag} {number}", "code": f"put_{tag}_{number}"})
            answer.raise_for_status()
            pool.append(answer.json()["id"])
    target.fixtures["put_pool"] = pool


def run_wrk(wrk: str, target: Target, scenario: str, connections: int, duration: float, tag: str) -> dict:
    spec = scenario_requests(scenario, target)
    spec["auth"] = BASIC if spec.pop("basic", False) else target.fixtures["bearer"]
    lua_spec = "{" + ",".join(f"{key}={_lua_value(value)}" for key, value in spec.items()) + "}"
    script = LUA % {"spec": lua_spec, "tag": tag, "pool_size": PUT_POOL}
    threads = min(2, connections)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        before = cpu_seconds(target.process.pid)
        # wrk takes whole seconds.
        run = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
                              "-s", handle.name, target.url], capture_output=True, text=True)
        if run.returncode:
            raise SystemExit(f"wrk failed: {run.stderr or run.stdout}")
        output = run.stdout
        used = cpu_seconds(target.process.pid) - before
    finally:
        os.unlink(handle.name)
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    for failure in re.findall(r"^FAILED (.*)$", output, re.M):
        print(f"  {target.name} {scenario} c{connections}: a failed answer: {failure}")
    errors = re.search(r"Socket errors: (.*)", output)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": _wrk_ms(output, "50%"), "p99": _wrk_ms(output, "99%"),
            "cpu_ms": 1000 * used / max(requests, 1), "requests": requests,
            "bad": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else ""}


def _wrk_ms(output: str, label: str) -> float:
    value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


# -- load: the built-in asyncio client ----------------------------------------------------------

async def _connection(host: str, port: int, make, stop_at: float, latencies: list, counts: dict) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            payload = make()
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            counts["bad"] += not 200 <= status < 400
    finally:
        writer.close()


def run_python(target: Target, scenario: str, connections: int, duration: float, tag: str) -> dict:
    spec = scenario_requests(scenario, target)
    auth = BASIC if spec.get("basic") else target.fixtures["bearer"]
    host, port = target.url.removeprefix("http://").split(":")
    counter = iter(range(10**9))

    def make_for(slot_base: int):
        versions = {}

        def make() -> bytes:
            number = next(counter)
            path, body = spec["path"], spec.get("body")
            if "template" in spec:
                body = spec["template"] % (f"{tag}_{number}", f"{tag}_{number}")
            elif "pool" in spec:
                slot = slot_base + number % PUT_POOL
                versions[slot] = versions.get(slot, 0) + 1
                path = f"{path}/{spec['pool'][slot]}"
                body = json.dumps({"name": f"Product {number}", "code": f"{tag}_put_{slot}",
                                   "version": versions[slot]})
            data = (body or "").encode()
            head = (f"{spec['method']} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
            return head.encode() + data

        return make

    latencies: list[float] = []
    counts = {"bad": 0}

    async def drive():
        stop_at = time.perf_counter() + duration
        # One PUT pool for all connections, as wrk's one thread per pool.
        make = make_for(0)
        await asyncio.gather(*(_connection(host, int(port), make, stop_at, latencies, counts)
                               for _ in range(connections)))

    before = cpu_seconds(target.process.pid)
    started = time.perf_counter()
    asyncio.run(drive())
    elapsed = time.perf_counter() - started
    used = cpu_seconds(target.process.pid) - before
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50": 1000 * statistics.median(latencies),
            "p99": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "cpu_ms": 1000 * used / max(len(latencies), 1),
            "requests": len(latencies), "bad": counts["bad"], "socket_errors": ""}


# -- the report -----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    parser.add_argument("--passes", type=int, default=2, help="interleaved passes (default 2)")
    parser.add_argument("--connections", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--prism", help="the prism executable (default: on the PATH, or npx)")
    parser.add_argument("--no-prism", action="store_true")
    parser.add_argument("--wrk", default=shutil.which("wrk"), help="the wrk executable (default: on the PATH)")
    parser.add_argument("--startups", type=int, default=3,
                        help="starts of each target timed (default 3; the first may compile bytecode)")
    parser.add_argument("--mock-python", default=sys.executable,
                        help="the Python whose m3ter-mock is measured (default: this one)")
    parser.add_argument("--also-mock-python", metavar="PYTHON",
                        help="a second m3ter-mock installation to measure beside the first (before/after)")
    options = parser.parse_args()
    scenarios = [name for name in options.scenarios.split(",") if name]
    connection_counts = [int(value) for value in options.connections.split(",")]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")

    targets = [mock_target(options.mock_python)]
    if options.also_mock_python:
        targets.append(mock_target(options.also_mock_python, "mock-other"))
    prism = None if options.no_prism else prism_command(options.prism)
    if prism:
        targets.append(prism_target(prism))
    else:
        print("Prism: not installed (npm install -g @stoplight/prism-cli), or --no-prism: its rows are skipped")
    load = "wrk" if options.wrk else "the built-in asyncio client (install wrk for figures that cost the server less)"
    print(f"load: {load}; {options.passes} interleaved passes of {options.duration:g} s; spec {SPEC.name}")

    results: dict[tuple, list[dict]] = {}
    try:
        for target in targets:
            for _ in range(options.startups - 1):
                target.start()
                target.stop()
            target.start()
            prepare(target)
            print(f"{target.name}: up in {target.startup:.2f} s, RSS {rss_mb(target.process.pid):.0f} MB "
                  f"(the whole spec, before any request)")
        for number in range(options.passes):
            for scenario in scenarios:
                for connections in connection_counts:
                    for target in targets:
                        tag = f"p{number}c{connections}"
                        if scenario == "put":
                            put_pool(target, tag, threads=2)
                        if options.wrk:
                            figures = run_wrk(options.wrk, target, scenario, connections, options.duration, tag)
                        else:
                            figures = run_python(target, scenario, connections, options.duration, tag)
                        figures["rss"] = rss_mb(target.process.pid)
                        results.setdefault((scenario, connections, target.name), []).append(figures)
    finally:
        for target in targets:
            target.stop()
    report(results, targets, scenarios, connection_counts)


def _span(values: list[float], digits: int = 0) -> str:
    low, high = min(values), max(values)
    fmt = f"{{:,.{digits}f}}"
    return fmt.format(low) if fmt.format(low) == fmt.format(high) else f"{fmt.format(low)}–{fmt.format(high)}"


def report(results: dict, targets: list[Target], scenarios: list[str], connection_counts: list[int]) -> None:
    print()
    print(f"{'scenario':<8} {'conns':>5} {'target':<11} {'req/s':>15} {'p50 ms':>12} {'p99 ms':>13} "
          f"{'CPU ms/req':>11} {'RSS MB':>7} {'not 2xx':>8}")
    for scenario in scenarios:
        for connections in connection_counts:
            for target in targets:
                runs = results.get((scenario, connections, target.name))
                if not runs:
                    continue
                print(f"{scenario:<8} {connections:>5} {target.name:<11} {_span([r['rps'] for r in runs]):>15} "
                      f"{_span([r['p50'] for r in runs], 1):>12} {_span([r['p99'] for r in runs], 1):>13} "
                      f"{_span([r['cpu_ms'] for r in runs], 2):>11} {max(r['rss'] for r in runs):>7.0f} "
                      f"{sum(r['bad'] for r in runs):>8}")
            mine = results.get((scenario, connections, targets[0].name))
            for other in targets[1:]:
                theirs = results.get((scenario, connections, other.name))
                if mine and theirs:
                    ratio = statistics.mean(r["rps"] for r in mine) / statistics.mean(r["rps"] for r in theirs)
                    print(f"{'':<8} {'':>5} {'÷ ' + other.name:<11} {ratio:>14.2f}×")
    print()
    for target in targets:
        times = ", ".join(f"{value:.2f}" for value in target.startups)
        print(f"start-up with the whole spec, to the first answer: {target.name} best "
              f"{min(target.startups):.2f} s (each start: {times})")


if __name__ == "__main__":
    main()
