"""Running the mock targets concurrently, on both cores.

When a run covers both mock targets (the default), each target's tests are run by a pytest
process of its own, started as soon as collection ends, while this process runs everything
else (the unit tests). Each ``test_<target>[...]`` and ``test_stateful_<target>`` here has the
node id of the test the child runs and reports that test's outcome, with its failure text,
once the child is done; so the results, the JUnit XML and the replay hint read the same as in
a run of one target. (With the in-process target in this process, as before issue 10, this
process ran 9 minutes while the other core idled for 4 of them.)
``M3TER_CONTRACT_PARALLEL=0`` runs both targets in this process instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .target import RunOptions

TIMEOUT_SECONDS = 1800
ONLY_ENV = "M3TER_CONTRACT_ONLY"  # JSON list of the test names a delegated run keeps


class Delegate:
    def __init__(self, target: str, options: RunOptions):
        self.target = target
        self.options = options
        self.process: subprocess.Popen | None = None
        self._dir = tempfile.TemporaryDirectory(prefix=f"m3ter-contract-{target}-")
        self.junit = Path(self._dir.name) / "junit.xml"
        self.stats = Path(self._dir.name) / "stats.json"
        self.log_path = Path(self._dir.name) / "output.txt"
        self._results: dict[str, list[tuple[str, str]]] | None = None
        self._problem: str | None = None

    @property
    def started(self) -> bool:
        return self.process is not None

    def start(self, nodeids: list[str], config: pytest.Config) -> None:
        # Schemathesis's tests cannot be picked by node id on the command line: the child
        # collects the module and keeps only these names (see ``conftest.py``).
        names = [nodeid.rsplit("::", 1)[-1] for nodeid in nodeids]
        env = {**os.environ, "M3TER_CONTRACT_STATS": str(self.stats), "M3TER_CONTRACT_PARALLEL": "0",
               ONLY_ENV: json.dumps(names)}
        # The child runs where this run does (a source checkout or an installed package),
        # with the same root, configuration and working directory, so its node ids match.
        module = str(config.rootpath / nodeids[0].split("::", 1)[0])
        settings = ["-c", str(config.inipath)] if config.inipath else []
        command = [sys.executable, "-m", "pytest", module, "-q", "-p", "no:cacheprovider", *settings,
                   "-o", "addopts=", "--rootdir", str(config.rootpath), "--junitxml", str(self.junit),
                   "--contract-target", self.target,
                   "--contract-examples", str(self.options.examples),
                   "--contract-stateful-examples", str(self.options.stateful_examples),
                   "--contract-seed", str(self.options.seed)]
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(command, cwd=config.invocation_params.dir, env=env,
                                        stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def wait(self) -> None:
        if self._results is not None or self._problem is not None:
            return
        if self.process is None:
            self._problem = "the delegated run was never started (was its test deselected in the child?)"
            return
        try:
            self.process.wait(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._problem = f"the delegated {self.target} run took more than {TIMEOUT_SECONDS}s"
            return
        finally:
            self._log.close()
        self._results = self._parse()

    def _parse(self) -> dict[str, list[tuple[str, str]]]:
        results: dict[str, list[tuple[str, str]]] = {}
        if not self.junit.exists():
            return results
        for case in ET.parse(self.junit).getroot().iter("testcase"):
            outcome, text = "passed", ""
            for kind in ("failure", "error", "skipped"):
                element = case.find(kind)
                if element is not None:
                    outcome = kind
                    text = (element.get("message") or "") + "\n" + (element.text or "")
                    break
            results.setdefault(case.get("name", ""), []).append((outcome, text))
        return results

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-size:]
        except OSError:
            return ""

    def report(self, name: str) -> None:
        """Pass, fail or skip as the child's test of this name did."""
        __tracebackhide__ = True
        self.wait()
        if self._problem:
            pytest.fail(f"{self._problem}\n{self.log_tail()}", pytrace=False)
        entries = (self._results or {}).get(name)
        if not entries:
            pytest.fail(f"the delegated {self.target} run has no result for {name} "
                        f"(exit status {self.process.returncode}):\n{self.log_tail()}", pytrace=False)
        for outcome, text in entries:
            if outcome in ("failure", "error"):
                pytest.fail(f"[run by a second pytest process, for target {self.target}]\n{text}", pytrace=False)
        if all(outcome == "skipped" for outcome, _ in entries):
            pytest.skip(entries[0][1].strip() or "skipped in the delegated run")

    def figures(self) -> dict:
        try:
            return json.loads(self.stats.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._dir.cleanup()
