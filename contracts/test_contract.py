"""The contract: every operation of ``openapi/m3ter.yaml``, through Schemathesis's examples,
coverage and fuzzing phases (``test_<target>[METHOD /path]``, one test per operation), and
its stateful phase over the spec's links (``test_stateful_<target>[group]``, one state
machine per group of linked resource families), with every check,
against each target of the run (see ``contracts/target.py``)."""

from __future__ import annotations

import pytest

from . import suite


def _operation_test(runner: suite.Runner, only: set[str] | None):
    schema = runner.schema
    if only is not None:
        # A run of a few tests (the suite's self-test, a delegated run) builds only theirs:
        # the coverage phase's cases are generated while pytest collects, for every test.
        # (``exclude``: Schemathesis 4 ORs an ``include`` with the configuration's own
        # per-operation entries, which select every operation they name.)
        schema = schema.exclude(lambda ctx: ctx.operation.label not in only)

    @schema.parametrize()
    def test(case, contract_runners):
        runner.run_case(case)

    return test


def _selected_operations(target: str) -> set[str] | None:
    """The operations ``M3TER_CONTRACT_ONLY`` keeps for this target (None: every one)."""
    import json
    import os

    from .delegate import ONLY_ENV

    only = os.environ.get(ONLY_ENV)
    if not only:
        return None
    prefix = f"test_{target}["
    return {name[len(prefix):-1] for name in json.loads(only) if name.startswith(prefix) and name.endswith("]")}


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
_only: set[str] | None = None
for _name in _options.targets:
    if _name in _options.delegated:
        globals()[f"test_{_name}"] = _delegated_operation_test(_name)
        globals()[f"test_stateful_{_name}"] = _delegated_stateful_test(_name)
        continue
    _runner = suite.runners()[_name]
    _only = _selected_operations(_name)
    if _only is None or _only:
        globals()[f"test_{_name}"] = _operation_test(_runner, _only)
    if not _runner.read_only:
        globals()[f"test_stateful_{_name}"] = _stateful_test(_runner)
del _name, _options, _only
