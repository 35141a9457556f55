"""The contract: every operation of ``openapi/m3ter.yaml``, through Schemathesis's examples,
coverage and fuzzing phases (``test_<target>[METHOD /path]``, one test per operation), and
its stateful phase over the spec's links (``test_stateful_<target>[group]``, one state
machine per group of linked resource families), with every check,
against each target of the run (see ``contracts/target.py``)."""

from __future__ import annotations

import pytest

from . import suite


def _operation_test(runner: suite.Runner):
    @runner.schema.parametrize()
    def test(case, contract_runners):
        runner.run_case(case)

    return test


GROUPS = {group.name: group for group in suite.stateful_groups()}


def _stateful_test(runner: suite.Runner):
    @pytest.mark.parametrize("group", list(GROUPS))
    def test(group, contract_runners):
        runner.run_stateful(GROUPS[group])

    return test


def _labels() -> list[str]:
    return [f"{method.upper()} {path}" for path, method, _ in suite.policy.operations()]


def _delegated_operation_test(name: str):
    @pytest.mark.parametrize("operation", _labels(), ids=_labels())
    def test(operation, request):
        suite.delegates()[name].report(request.node.name)

    return test


def _delegated_stateful_test(name: str):
    @pytest.mark.parametrize("group", list(GROUPS))
    def test(group, request):
        suite.delegates()[name].report(request.node.name)

    return test


_options = suite.options()
for _name in _options.targets:
    if _name in _options.delegated:
        globals()[f"test_{_name}"] = _delegated_operation_test(_name)
        globals()[f"test_stateful_{_name}"] = _delegated_stateful_test(_name)
        continue
    _runner = suite.runners()[_name]
    globals()[f"test_{_name}"] = _operation_test(_runner)
    if not _runner.read_only:
        globals()[f"test_stateful_{_name}"] = _stateful_test(_runner)
del _name, _options
