"""Runs m3ter's own generated SDK test suite (``tests/api_resources`` of the ``m3ter`` sdist)
against a running mock, and prints passed / failed / errors per resource.

Stainless generates those tests to run against a stateless Prism mock of the spec: every
operation is called with placeholder values (organization ``My Org ID``, token ``My Token``,
ids ``id``) and the answer must parse under the SDK's strict response validation. So the suite
measures how well a mock serves a generated SDK, for instance ``m3ter-mock serve --lenient``
beside ``prism mock openapi/m3ter.yaml``::

    python tools/sdk_suite.py --base-url http://127.0.0.1:4010                 # downloads m3ter 0.9.0
    python tools/sdk_suite.py --sdist m3ter-0.9.0.tar.gz --base-url URL        # or a directory
    python tools/sdk_suite.py --venv /tmp/sdk-venv --base-url URL --failures   # reuse the venv
    python tools/sdk_suite.py --base-url URL --async --json results.json

The suite runs in a virtual environment of its own (never the project's): the sdist itself, and
the test requirements pinned in its ``requirements-dev.lock`` (pytest, pytest-asyncio; respx and
dirty-equals, which its conftest imports for some files). ``--venv DIR`` keeps that environment
for the next run; without it a temporary one is made and removed. Downloading the sdist and the
requirements needs PyPI; nothing else leaves the machine, and the suite talks only to
``--base-url``. Only the synchronous tests run unless ``--async`` is given (the aiohttp variants
never: they need the SDK's ``aiohttp`` extra and test the transport, not the mock).

Exit status: 0 when every test passed, 1 when some failed, 2 when the suite could not be run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import venv
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

DEFAULT_VERSION = "0.9.0"
# What the api_resources tests import besides the SDK; versions from the sdist's lock file.
TEST_REQUIREMENTS = ("pytest", "pytest-asyncio", "respx", "dirty-equals")
OUTCOMES = ("passed", "failed", "errors", "skipped")


class SuiteError(Exception):
    """The suite could not be run (no sdist, no venv, no mock): exit status 2."""


# -- the sdist ---------------------------------------------------------------------------

def sdist_dir(source: str | None, version: str, work: Path) -> Path:
    """The extracted sdist: ``source`` (a directory or a ``.tar.gz``), else ``m3ter==version``
    fetched with ``pip download``."""
    if source is None:
        target = work / "download"
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"m3ter=={version}", "-d", str(target)], "pip download of the m3ter sdist")
        archives = sorted(target.glob("m3ter-*.tar.gz"))
        if not archives:
            raise SuiteError(f"pip download left no m3ter sdist in {target}")
        source = str(archives[0])
    path = Path(source)
    if path.is_dir():
        root = path
    elif path.is_file() and path.name.endswith(".tar.gz"):
        with tarfile.open(path) as archive:
            archive.extractall(work / "sdist", filter="data")
        tops = [p for p in (work / "sdist").iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise SuiteError(f"{path}: expected one top-level folder in the archive")
        root = tops[0]
    else:
        raise SuiteError(f"{source}: not an sdist (.tar.gz) or its extracted folder")
    if not (root / "tests" / "api_resources").is_dir():
        raise SuiteError(f"{root}: has no tests/api_resources (is it the m3ter sdist?)")
    return root


def pinned(root: Path, names: tuple[str, ...]) -> list[str]:
    """``name==version`` from the sdist's ``requirements-dev.lock`` where it pins one."""
    lock = root / "requirements-dev.lock"
    pins = {}
    if lock.is_file():
        for line in lock.read_text(encoding="utf-8").splitlines():
            match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
            if match:
                pins[match.group(1).lower()] = match.group(2)
    return [f"{name}=={pins[name]}" if name in pins else name for name in names]


# -- the environment -----------------------------------------------------------------------

def venv_python(directory: Path) -> Path:
    return directory / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def prepare_venv(directory: Path, root: Path) -> Path:
    """A venv at ``directory`` holding the sdist and its test requirements; kept as it is
    when a previous run left the marker (same sdist folder name)."""
    marker = directory / "m3ter-sdk-suite.txt"
    python = venv_python(directory)
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == root.name and python.exists():
        return python
    venv.EnvBuilder(with_pip=True, clear=directory.exists()).create(directory)
    run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(root),
         *pinned(root, TEST_REQUIREMENTS)], "pip install of the SDK and its test requirements")
    marker.write_text(root.name + "\n", encoding="utf-8")
    return python


def run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SuiteError(f"{what} failed:\n{result.stderr.strip() or result.stdout.strip()}")


def reachable(base_url: str) -> None:
    try:
        urllib.request.urlopen(base_url.rstrip("/") + "/", timeout=10).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as exc:
        raise SuiteError(f"nothing answers at {base_url}: {getattr(exc, 'reason', exc)}") from None


# -- the run -------------------------------------------------------------------------------

def run_suite(python: Path, root: Path, base_url: str, junit: Path, include_async: bool,
              select: str | None) -> int:
    keep_out = ["aiohttp"] + ([] if include_async else ["TestAsync"])
    expression = " and ".join(f"not {word}" for word in keep_out)
    if select:
        expression = f"({select}) and {expression}"
    env = {**os.environ, "TEST_API_BASE_URL": base_url}
    # The suite's own addopts ask for pytest-xdist (-n auto); one process keeps the mock's
    # log and the order of calls readable. Its warnings-as-errors policy stays.
    command = [str(python), "-m", "pytest", "tests/api_resources", "-o", "addopts=", "-p", "no:cacheprovider",
               "-q", "--tb=line", "-k", expression, f"--junitxml={junit}"]
    return subprocess.run(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True).returncode


def resource_of(classname: str) -> str:
    """``tests.api_resources.balances.test_transactions.TestTransactions`` -> ``balances/transactions``."""
    parts = classname.split(".")
    if "api_resources" in parts:
        parts = parts[parts.index("api_resources") + 1:]
    modules = [p for p in parts if not p.startswith("Test")]
    if modules:
        modules[-1] = modules[-1].removeprefix("test_")
    return "/".join(modules) or classname


def read_results(junit: Path) -> dict:
    """resource -> {passed, failed, errors, skipped, failures: [(test, first line)]}."""
    results: dict = defaultdict(lambda: {**{o: 0 for o in OUTCOMES}, "failures": []})
    for case in ET.parse(junit).getroot().iter("testcase"):
        row = results[resource_of(case.get("classname", ""))]
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            row["errors" if problem.tag == "error" else "failed"] += 1
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            row["failures"].append((case.get("name", ""), message[0][:300] if message else ""))
        elif case.find("skipped") is not None:
            row["skipped"] += 1
        else:
            row["passed"] += 1
    return dict(sorted(results.items()))


def print_report(results: dict, show_failures: bool, out=sys.stdout) -> dict:
    width = max([len(r) for r in results] + [8])
    print(f"{'resource':<{width}}  {'passed':>6}  {'failed':>6}  {'errors':>6}", file=out)
    totals = {o: 0 for o in OUTCOMES}
    for resource, row in results.items():
        for outcome in OUTCOMES:
            totals[outcome] += row[outcome]
        print(f"{resource:<{width}}  {row['passed']:>6}  {row['failed']:>6}  {row['errors']:>6}", file=out)
    print(f"{'total':<{width}}  {totals['passed']:>6}  {totals['failed']:>6}  {totals['errors']:>6}"
          + (f"  ({totals['skipped']} skipped)" if totals["skipped"] else ""), file=out)
    if show_failures:
        for resource, row in results.items():
            for test, message in row["failures"]:
                print(f"  {resource} {test}: {message}", file=out)
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:4010", help="the mock to test (default %(default)s)")
    parser.add_argument("--sdist", help="the m3ter sdist (.tar.gz) or its extracted folder; default: pip download")
    parser.add_argument("--version", default=DEFAULT_VERSION,
                        help="the m3ter version to download (default %(default)s)")
    parser.add_argument("--venv", help="keep the suite's virtual environment here, to reuse it next time")
    parser.add_argument("--async", dest="include_async", action="store_true", help="run the async tests too")
    parser.add_argument("-k", dest="select", help="only the tests matching this pytest -k expression")
    parser.add_argument("--failures", action="store_true", help="list each failing test with its first line")
    parser.add_argument("--json", metavar="FILE", help="also write the per-resource results as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="m3ter-sdk-suite-") as temp:
        work = Path(temp)
        try:
            reachable(args.base_url)
            root = sdist_dir(args.sdist, args.version, work)
            python = prepare_venv(Path(args.venv) if args.venv else work / "venv", root)
            junit = work / "junit.xml"
            status = run_suite(python, root, args.base_url, junit, args.include_async, args.select)
            if not junit.is_file():
                raise SuiteError(f"pytest wrote no results (exit status {status})")
        except SuiteError as exc:
            print(f"sdk_suite: {exc}", file=sys.stderr)
            return 2
        results = read_results(junit)
    totals = print_report(results, args.failures)
    if args.json:
        Path(args.json).write_text(json.dumps({"baseUrl": args.base_url, "totals": totals, "resources": results},
                                              indent=2) + "\n", encoding="utf-8")
    return 0 if totals["failed"] == totals["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
