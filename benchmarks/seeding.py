"""Seed data figures, printed as a table. Not a test: run it by hand.

    .venv/bin/python benchmarks/seeding.py [--quick]

The Faker generator at 100 accounts x 1,000 measurements (10 x 1,000 with ``--quick``), 3
products, in this process, without HTTP:

* generating the fixture document (``seed_faker.generate``);
* ``POST /_mock/organizations/{orgId}/seed``'s work (``Seeding.generate``: generate, check
  every entity against its request schema, create them through the services, ingest the
  measurements), into an empty organization;
* the same document written as a fixture file (YAML and JSON: time and size), then loaded
  as ``m3ter-mock serve --seed FILE`` does at start-up (read, parse, check every entity and
  every measurement against the spec, create, ingest);
* ``examples/seed.yaml`` (the README's example) loaded the same way.

Each figure is one run (a load cannot be repeated into the same organization), on a fresh
backend, on whatever disk holds the temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # Connexion imports it

from mockserver.backend.core import Backend  # noqa: E402
from mockserver.backend.seeding import dump_fixture, read_fixture_file  # noqa: E402
from mockserver.domain.seed_faker import SeedSize, generate  # noqa: E402


def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def fresh() -> Backend:
    backend = Backend()
    _ = backend.seeding.seedable  # built once per backend, on first use: not part of a load
    return backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 accounts x 1,000 measurements")
    args = parser.parse_args()
    accounts, per_account = (10, 1000) if args.quick else (100, 1000)
    size = SeedSize(seed=1, accounts=accounts, measurementsPerAccount=per_account)
    label = f"{accounts} accounts x {per_account:,} measurements"
    rows = []

    generate(SeedSize(seed=0, accounts=1, measurementsPerAccount=1))  # Faker's import, once
    content, took = timed(lambda: generate(size))
    entities = sum(len(v) for k, v in content.items() if k != "measurements")
    rows.append((f"generate the fixture, {label} ({entities} entities)", f"{took:.2f} s"))

    backend = fresh()
    body = {"seed": 1, "accounts": accounts, "measurementsPerAccount": per_account}
    result, took = timed(lambda: backend.seeding.generate("bench-generated", body))
    assert result["measurements"] == accounts * per_account
    rows.append((f"POST /_mock/organizations/{{orgId}}/seed's work: generate and load, {label}", f"{took:.2f} s"))

    document = {"organizations": {"bench-file": content}}
    with tempfile.TemporaryDirectory() as folder:
        for suffix in ("json", "yaml"):
            path = Path(folder) / f"seed.{suffix}"
            text, took = timed(lambda: dump_fixture(document, path.name))
            path.write_text(text, encoding="utf-8")
            rows.append((f"write the fixture as {suffix.upper()}", f"{took:.2f} s ({path.stat().st_size / 1e6:.1f} MB)"))
            backend = fresh()
            parsed, read_time = timed(lambda: read_fixture_file(path))
            _, load_time = timed(lambda: backend.seeding.load_files([(str(path), parsed)]))
            rows.append((f"serve --seed seed.{suffix}: read and parse / check and load",
                         f"{read_time:.2f} s / {load_time:.2f} s"))

    backend = fresh()
    example = ROOT / "examples" / "seed.yaml"
    _, took = timed(lambda: backend.seeding.load_files([(str(example), read_fixture_file(example))]))
    rows.append(("serve --seed examples/seed.yaml (25 entities, 3 measurements)", f"{took * 1000:.0f} ms"))

    width = max(len(what) for what, _ in rows)
    print(f"{'what':<{width}}  figure")
    for what, figure in rows:
        print(f"{what:<{width}}  {figure}")


if __name__ == "__main__":
    main()
