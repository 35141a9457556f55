"""``m3ter-mock contract``: the parity report. Runs the contract suite (``contracts/``, shipped
as ``mockserver.contracts``; it needs the ``contract`` extra) with pytest against one target,
prints a pass/fail table per operation and writes JUnit XML.

    m3ter-mock contract                          # the mock, in-process and over HTTP
    m3ter-mock contract --base-url URL           # any m3ter-compatible API (credentials from
                                                 # M3TER_API_KEY / M3TER_API_SECRET, org from
                                                 # --org-id or M3TER_ORG_ID); read-only unless
                                                 # the URL is loopback or --allow-writes
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from . import resources

# What the suite imports beyond the mock's own dependencies (the ``contract`` extra).
SUITE_REQUIREMENTS = ("pytest", "schemathesis", "hypothesis")
INSTALL_HINT = "pip install 'm3ter-mock[contract]'"
# The run's pytest configuration, given explicitly: the suite may be installed under a
# folder whose own pytest configuration has nothing to do with it.
_PYTEST_INI = """[pytest]
filterwarnings =
    ignore::DeprecationWarning:croniter.*
    ignore::DeprecationWarning:connexion.*
    ignore:Using `httpx` with `starlette.testclient`
"""
_OPERATION_TEST = re.compile(r"^test_(?P<target>[a-z]+)\[(?P<label>[A-Z]+ /.*)\]$")
_STATEFUL_TEST = re.compile(r"^test_stateful_(?P<target>[a-z]+)(\[(?P<group>[^\]]+)\])?$")
STATEFUL = "stateful phase"


@dataclass
class Result:
    outcome: str = "passed"  # passed | failed | skipped
    message: str = ""
    seconds: float = 0.0


@dataclass
class Parity:
    targets: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, Result]] = field(default_factory=dict)  # label -> target -> result
    errors: list[str] = field(default_factory=list)  # failures attached to no operation

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(r.outcome == "failed" for row in self.rows.values() for r in row.values())


def parse_junit(path: Path) -> Parity:
    parity = Parity()
    if not path.exists():
        parity.errors.append(f"no JUnit report at {path}")
        return parity
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        match = _OPERATION_TEST.match(name) or _STATEFUL_TEST.match(name)
        problem = next((case.find(kind) for kind in ("failure", "error") if case.find(kind) is not None), None)
        if match is None:
            if problem is not None:
                parity.errors.append(f"{case.get('classname')}.{name}: {problem.get('message', '')}")
            continue
        target = match.group("target")
        groups = match.groupdict()
        label = groups.get("label") or (f"{STATEFUL}: {groups['group']}" if groups.get("group") else STATEFUL)
        if target not in parity.targets:
            parity.targets.append(target)
        result = parity.rows.setdefault(label, {}).setdefault(target, Result())
        result.seconds += float(case.get("time") or 0)
        if problem is not None:
            result.outcome = "failed"
            text = ((problem.get("message") or "") + "\n" + (problem.text or "")).strip()
            result.message = result.message or _headline(text)
        elif case.find("skipped") is not None and result.outcome == "passed":
            result.outcome = "skipped"
            result.message = (case.find("skipped").get("message") or "").strip()
    return parity


def _headline(text: str) -> str:
    """What failed, in a line: Schemathesis's failure titles (``ST202 Schema-valid request
    rejected; ST103 ...``), or else the first line of the error."""
    titles = []
    for line in text.splitlines():
        line = line.strip(" |+-")
        if re.match(r"^ST\d+ ", line) or line.startswith(("AssertionError:", "Failed:", "contract suite")):
            if line not in titles:
                titles.append(line)
    if titles:
        return "; ".join(titles)[:240]
    lines = [line.strip(" |+-") for line in text.splitlines() if line.strip(" |+-")]
    return (lines[0] if lines else "failed")[:240]


def operation_ids() -> dict[str, str]:
    from .validate import load

    return {f"{method.upper()} {path}": op.get("operationId", "")
            for path, item in load(resources.spec_path("m3ter.yaml"))["paths"].items() for method, op in item.items()
            if isinstance(op, dict) and "operationId" in op}


def render(parity: Parity, figures: dict | None = None) -> str:
    ids = operation_ids()
    figures = figures or {}
    counts: dict[tuple[str, str], int] = {}
    for target, data in (figures.get("targets") or {}).items():
        for row in data.get("statuses", []):
            counts[(target, row["operationId"])] = counts.get((target, row["operationId"]), 0) + row["count"]
    order = list(ids) + [label for label in parity.rows if label not in ids]
    labels = [label for label in order if label in parity.rows]
    header = ["operation", "operationId", *parity.targets]
    table = [header]
    marks = {"passed": "PASS", "failed": "FAIL", "skipped": "skip"}
    for label in labels:
        cells = [label, ids.get(label, "")]
        for target in parity.targets:
            result = parity.rows[label].get(target)
            if result is None:
                cells.append("-")
                continue
            count = counts.get((target, ids.get(label, "")))
            cells.append(marks[result.outcome] + (f" ({count})" if count and not label.startswith(STATEFUL) else ""))
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    totals = []
    for target in parity.targets:
        results = [row[target] for row in parity.rows.values() if target in row]
        passed = sum(r.outcome == "passed" for r in results)
        totals.append(f"{target}: {passed}/{len(results)} passed")
    lines.append("")
    lines.append("; ".join(totals) + "  (numbers: requests sent for the operation)")
    failures = [(label, target, parity.rows[label][target].message) for label in labels for target in parity.targets
                if target in parity.rows[label] and parity.rows[label][target].outcome == "failed"]
    if failures:
        lines.append("")
        lines.append("failures:")
        lines += [f"  [{target}] {label}: {message}" for label, target, message in failures]
    if parity.errors:
        lines.append("")
        lines.append("errors outside an operation:")
        lines += [f"  {error[:300]}" for error in parity.errors]
    if figures.get("seed") is not None:
        lines.append("")
        lines.append(f"seed {figures['seed']}: replay with --seed {figures['seed']}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="test this API (credentials from M3TER_API_KEY and M3TER_API_SECRET)")
    parser.add_argument("--org-id", help="the organization to test in (default: M3TER_ORG_ID)")
    parser.add_argument("--target", choices=("mock", "inprocess", "http"), default="mock",
                        help="without --base-url: the mock in-process, over HTTP, or both (default)")
    parser.add_argument("--examples", type=int, default=None, help="fuzzing examples per operation (default 50)")
    parser.add_argument("--stateful-examples", type=int, default=None, help="stateful scenarios (default 200)")
    parser.add_argument("--seed", type=int, default=None, help="replay this seed")
    parser.add_argument("--junit-xml", default="m3ter-contract.xml", metavar="PATH",
                        help="where to write the JUnit XML report (default: %(default)s)")
    parser.add_argument("--allow-writes", action="store_true",
                        help="against a non-loopback URL, also run the operations that write (everything "
                             "created carries the code prefix m3ter_contract_ and is deleted at the end)")
    parser.add_argument("--policy", action="store_true", help="print what the suite disables or relaxes, and why")


def missing_requirements() -> list[str]:
    return [name for name in SUITE_REQUIREMENTS if importlib.util.find_spec(name) is None]


def run(args: argparse.Namespace) -> int:
    if args.policy:
        return print_policy()
    missing = missing_requirements()
    if missing:
        print(f"m3ter-mock contract: the contract suite needs {', '.join(missing)}; install them with: "
              f"{INSTALL_HINT}", file=sys.stderr)
        return 2
    contracts = resources.contracts_dir()
    env = dict(os.environ)
    if args.base_url:
        env.update({"M3TER_CONTRACT_TARGET": "url", "M3TER_BASE_URL": args.base_url})
        if args.org_id:
            env["M3TER_ORG_ID"] = args.org_id
        if args.allow_writes:
            env["M3TER_CONTRACT_ALLOW_WRITES"] = "1"
        missing = [name for name in ("M3TER_API_KEY", "M3TER_API_SECRET", "M3TER_ORG_ID") if not env.get(name)]
        if missing:
            print(f"m3ter-mock contract: --base-url needs {', '.join(missing)} in the environment", file=sys.stderr)
            return 2
    else:
        env["M3TER_CONTRACT_TARGET"] = args.target
    for option, name in ((args.examples, "M3TER_CONTRACT_EXAMPLES"),
                         (args.stateful_examples, "M3TER_CONTRACT_STATEFUL_EXAMPLES"), (args.seed, "M3TER_CONTRACT_SEED")):
        if option is not None:
            env[name] = str(option)
    junit = Path(args.junit_xml).resolve()
    with tempfile.TemporaryDirectory(prefix="m3ter-contract-") as scratch:
        stats = Path(scratch) / "stats.json"
        env["M3TER_CONTRACT_STATS"] = str(stats)
        ini = Path(scratch) / "pytest.ini"
        ini.write_text(_PYTEST_INI, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", str(contracts), "-q", "-p", "no:cacheprovider", "-c", str(ini),
                   "--rootdir", str(contracts), "--confcutdir", str(contracts), "--junitxml", str(junit)]
        # pytest's own output goes to stderr; the table is the standard output.
        status = subprocess.run(command, env=env, stdout=sys.stderr, stderr=sys.stderr).returncode
        try:
            figures = json.loads(stats.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            figures = {}
    parity = parse_junit(junit)
    print(render(parity, figures))
    print(f"JUnit XML: {junit}")
    if status not in (0, 1):
        print(f"m3ter-mock contract: pytest exited with status {status}", file=sys.stderr)
        return status
    return 1 if parity.failed or status == 1 else 0


def print_policy() -> int:
    from .contracts import policy

    everything = policy.exemptions(read_only=False) + policy.exemptions(read_only=True)
    for exemption in dict.fromkeys(everything):
        print(f"- {exemption.kind}: {exemption.subject}\n    where: {exemption.scope}\n    why: {exemption.reason}")
    print("\nRules a schema cannot state (a 400 to a schema-valid request is accepted only with the rule's own "
          "message, when the suite sees the breach itself; never for the spec's own examples):")
    for operation_id, rules in sorted(policy.SEMANTIC_RULES.items()):
        for name, reason in rules.items():
            print(f"  {operation_id}.{name}: {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="m3ter-mock contract", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
