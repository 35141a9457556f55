"""pytest wiring of the contract suite: the target switch and sizes (options or environment,
see ``contracts/target.py``), the HTTP server the suite runs for the ``http`` target, the
clean-up at the end (also after failures), and the closing figures: the seed, the cases
generated per phase and the time per target."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter, defaultdict

import pytest

from . import policy, suite
from .target import (ENV_EXAMPLES, ENV_SEED, ENV_STATEFUL_EXAMPLES, ENV_TARGET, TARGET_CHOICES, TargetError,
                     run_options)

ENV_STATS = "M3TER_CONTRACT_STATS"  # write the closing figures as JSON to this path
_DURATIONS: dict[str, float] = defaultdict(float)
_OUTCOMES: dict[str, Counter] = defaultdict(Counter)


def pytest_addoption(parser):
    group = parser.getgroup("contract", "m3ter contract suite")
    group.addoption("--contract-target", choices=TARGET_CHOICES, default=None,
                    help=f"what to test (default: ${ENV_TARGET} or 'mock' = in-process and over HTTP)")
    group.addoption("--contract-examples", type=int, default=None,
                    help=f"fuzzing examples per hand-written operation, a fifth of it for the others "
                         f"(default: ${ENV_EXAMPLES} or 50)")
    group.addoption("--contract-stateful-examples", type=int, default=None,
                    help=f"stateful scenarios per target (default: ${ENV_STATEFUL_EXAMPLES} or 200)")
    group.addoption("--contract-seed", type=int, default=None,
                    help=f"the seed to replay (default: ${ENV_SEED} or a random one, printed)")


def pytest_configure(config):
    try:
        options = run_options(
            target=_option(config, "--contract-target"),
            examples=_option(config, "--contract-examples"),
            stateful_examples=_option(config, "--contract-stateful-examples"),
            seed=_option(config, "--contract-seed"),
        )
    except TargetError as problem:
        raise pytest.UsageError(f"contract suite: {problem}") from None
    suite.configure(options)


def _option(config, name):
    try:
        return config.getoption(name)
    except ValueError:  # this conftest was not loaded at start-up; only the environment counts
        return None


def pytest_report_header(config):
    options = suite.options()
    return [f"contract suite: targets {', '.join(options.targets)}; {options.examples} fuzzing examples per "
            f"operation, {options.stateful_examples} stateful scenarios; seed {options.seed} "
            f"(replay with {options.replay_hint})"]


@pytest.fixture(scope="session")
def contract_runners():
    """Every target of the run (the HTTP server for ``http`` is already up: see
    ``suite.runners``). At the end everything the run created is deleted, even after a
    failure, and what could not be is an error, as is a run in which no authenticated
    call ever succeeded; then the server stops."""
    runners = suite.runners()
    try:
        yield runners
    finally:
        problems = []
        for runner in runners.values():
            left = runner.cleanup_problems + runner.cleanup()
            problems += [f"[{runner.target.name}] {line}" for line in left]
            problems += [f"[{runner.target.name}] nothing was tested: {line}" for line in runner.stats.vacuous()]
        suite.stop_servers()
        if problems:
            pytest.fail("contract suite clean-up:\n  " + "\n  ".join(problems), pytrace=False)


def _target_of(nodeid: str) -> str | None:
    for name in ("inprocess", "http", "url"):
        if f"::test_{name}[" in nodeid or re.search(rf"::test_stateful_{name}(\[|$)", nodeid):
            return name
    return None


def pytest_collection_modifyitems(config, items):
    """In a delegated run, keep only the tests the parent selected."""
    from .delegate import ONLY_ENV

    only = os.environ.get(ONLY_ENV)
    if not only:
        return
    wanted = set(json.loads(only))
    kept = [item for item in items if _target_of(item.nodeid) is None or item.name in wanted]
    dropped = [item for item in items if item not in kept]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session):
    """Start the delegated targets' run on the tests selected here, at once: it then runs
    while this process works through everything else."""
    if session.config.option.collectonly:
        return
    for name, delegate in suite.delegates().items():
        nodeids = [item.nodeid for item in session.items if _target_of(item.nodeid) == name]
        if nodeids and not delegate.started:
            delegate.start(nodeids, session.config)


def pytest_unconfigure(config):
    for delegate in (suite._RUN.get("delegates") or {}).values():
        delegate.stop()


def pytest_runtest_logreport(report):
    target = _target_of(report.nodeid)
    if target is None:
        return
    _DURATIONS[target] += report.duration
    if report.when == "call" or report.outcome != "passed":
        _OUTCOMES[target][report.outcome] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    runners = suite._RUN.get("runners") or {}
    delegates = {name: d for name, d in (suite._RUN.get("delegates") or {}).items() if d.started}
    if not runners and not delegates:
        return
    options = suite.options()
    write = terminalreporter.write_line
    terminalreporter.section("m3ter contract suite")
    write(f"seed {options.seed} (replay: {options.replay_hint} pytest contracts)")
    figures = {"seed": options.seed, "examples": options.examples,
               "stateful_examples": options.stateful_examples, "targets": {}}
    for name, runner in runners.items():
        figures["targets"][name] = {
            "seconds": round(_DURATIONS.get(name, 0.0), 1), "phases": dict(sorted(runner.stats.phases.items())),
            "token_fetches": runner.tokens.fetches, "cleaned_up": runner.cleaned,
            "statuses": [{"operationId": op, "status": status, "count": count}
                         for (op, status), count in sorted(runner.stats.statuses.items(), key=str)],
            "outcomes": dict(_OUTCOMES.get(name, {})),
        }
    for name, delegate in delegates.items():
        delegate.wait()
        figures["targets"].update(delegate.figures().get("targets", {}))
    for name, target in figures["targets"].items():
        phases = target["phases"]
        where = " (a process of its own)" if name in delegates else ""
        write(f"{name:>9}: {sum(phases.values())} cases in {target['seconds']}s{where} — "
              + ", ".join(f"{phase} {count}" for phase, count in phases.items())
              + f"; token fetches {target['token_fetches']}"
              + (f"; clean-up deleted {target['cleaned_up']}" if target.get("cleaned_up") else ""))
    exemptions = policy.exemptions(read_only=any(r.read_only for r in runners.values()),
                                   is_mock=all(r.target.is_mock for r in runners.values()))
    write(f"{len(exemptions)} exemption(s), listed with their reasons in contracts/policy.py")
    path = os.environ.get(ENV_STATS)
    if path:
        figures["exemptions"] = [e.__dict__ for e in exemptions]
        figures["finished"] = time.time()
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
