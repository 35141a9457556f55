"""Snapshot, restore and state-file figures, printed as a table. Not a test: run it by hand.

    .venv/bin/python benchmarks/state.py [--quick]

One organization holds 100,000 entities (10,000 with ``--quick``), made through the services
as the API makes them: half Accounts, half Products, each with a code, the audit fields and
its ``configuration.*.created`` Event (so the store also holds the newest 10,000 Events);
then the same store plus 100,000 measurements (10 Meters' worth, 100 Accounts). For each:

* a named snapshot of the organization, and of the whole store (``StateService.take``);
* its restore (``StateService.restore``: a fresh copy put in place, the queued work resumed);
* for comparison, a deep copy of the whole store (``Store.snapshot()``, what a snapshot would
  cost done with ``copy.deepcopy``);
* the state file: a save (capture under the lock, encode, write to a temporary file, fsync,
  rename) and its size, and a load (read, checksum, unpickle with the allow-list) as at
  start-up, then putting it in place.

Each time is the best of 3 runs, in this process, on whatever disk holds the temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # Connexion imports it

from mockserver.backend.core import Backend  # noqa: E402
from mockserver.backend.crud import Caller  # noqa: E402
from mockserver.backend.state import StateFile, read_state_file  # noqa: E402

ORG = "bench-state"
RUNS = 3


def fill(backend: Backend, entities: int) -> None:
    caller = Caller(ORG, "bench")
    accounts, products = backend.resources["accounts"], backend.resources["products"]
    for n in range(entities // 2):
        accounts.create(caller, {"name": f"Account {n}", "code": f"acct_{n}", "emailAddress": f"a{n}@example.com"})
        products.create(caller, {"name": f"Product {n}", "code": f"prod_{n}"})


def add_measurements(backend: Backend, count: int) -> None:
    caller = Caller(ORG, "bench")
    meters = backend.resources["meters"]
    for m in range(10):
        meters.create(caller, {"name": f"Meter {m}", "code": f"meter_{m}", "derivedFields": [], "dataFields": [
            {"category": "MEASURE", "code": "n", "name": "N"}, {"category": "WHERE", "code": "region", "name": "R"}]})
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    for first in range(0, count, 1000):
        batch = [{"uid": f"u{i}", "meter": f"meter_{i % 10}", "account": f"acct_{i % 100}",
                  "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + i)),
                  "measure": {"n": i % 97}, "where": {"region": "eu"}} for i in range(first, first + 1000)]
        backend.usage.submit(caller, batch)


def best(action) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def figures(backend: Backend, label: str, folder: Path) -> list[tuple[str, str]]:
    state = backend.state
    rows = []
    org_snapshot = best(lambda: state.take("org", ORG))
    rows.append((f"{label}: snapshot of the organization", f"{org_snapshot * 1000:.0f} ms"))
    rows.append((f"{label}: its restore", f"{best(lambda: state.restore('org')) * 1000:.0f} ms"))
    whole = best(lambda: state.take("whole"))
    rows.append((f"{label}: snapshot of the whole store", f"{whole * 1000:.0f} ms"))
    rows.append((f"{label}: its restore", f"{best(lambda: state.restore('whole')) * 1000:.0f} ms"))
    rows.append((f"{label}: deep copy of the whole store (copy.deepcopy), for comparison",
                 f"{best(backend.store.snapshot) * 1000:.0f} ms"))
    path = folder / f"{label.split()[0]}.state"
    saver = StateFile(state, path, 3600)
    rows.append((f"{label}: state file save", f"{best(saver.save) * 1000:.0f} ms "
                                              f"({path.stat().st_size / 1e6:.1f} MB)"))
    loaded = {}

    def load():
        loaded.update(read_state_file(path))

    rows.append((f"{label}: state file load (read, check, unpickle)", f"{best(load) * 1000:.0f} ms"))

    def put_in_place():
        with backend.store.lock:
            backend.store.replace_all(read_state_file(path))
            state._resume(backend.store.org_ids())

    rows.append((f"{label}: state file load and put in place", f"{best(put_in_place) * 1000:.0f} ms"))
    state.delete("org")
    state.delete("whole")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 entities and measurements")
    args = parser.parse_args()
    entities = 10_000 if args.quick else 100_000
    backend = Backend()
    started = time.perf_counter()
    fill(backend, entities)
    print(f"made {entities:,} entities in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += figures(backend, f"{entities:,} entities", Path(folder))
        add_measurements(backend, entities)
        rows += figures(backend, f"{entities:,} entities + {entities:,} measurements", Path(folder))
    width = max(len(what) for what, _ in rows)
    print(f"{'what':<{width}}  figure")
    for what, figure in rows:
        print(f"{what:<{width}}  {figure}")


if __name__ == "__main__":
    main()
