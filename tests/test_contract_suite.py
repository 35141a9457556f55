"""The contract suite tested on mocks broken on purpose (``tests/support/broken_mock.py``):
each breakage must make the suite fail, on the operation that is broken, with the check
that names the problem, while an operation left intact still passes. Each run is the real
suite (``contracts/``) in a pytest process of its own, on a few operations, with a fixed
seed; the three runs go in parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mockserver.contract import parse_junit, render

ROOT = Path(__file__).resolve().parent.parent
COMPOUND_CREATE = "POST /organizations/{orgId}/compoundaggregations"
NOTIFICATION_LIST = "GET /organizations/{orgId}/notifications/configurations"
EVENT_TYPES = "GET /organizations/{orgId}/events/types"

RUNS = {
    # breakage factory: (tests kept, stateful scenarios)
    "wrong_types_and_a_crash": ([f"test_inprocess[{COMPOUND_CREATE}]", f"test_inprocess[{NOTIFICATION_LIST}]",
                                 f"test_inprocess[{EVENT_TYPES}]"], 1),
    "delete_that_keeps": (["test_stateful_inprocess[WebhookDestinations]"], 200),  # 50 scenarios in the group
    "tokens_refused": ([f"test_inprocess[{EVENT_TYPES}]"], 1),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every run at once, then collect (exit status, results, output) of each."""
    started = {}
    for factory, (names, stateful) in RUNS.items():
        where = tmp_path_factory.mktemp(factory)
        env = {**os.environ, "M3TER_CONTRACT_APP": f"tests.support.broken_mock:{factory}",
               "M3TER_CONTRACT_ONLY": json.dumps(names), "M3TER_CONTRACT_PARALLEL": "0"}
        env.pop("M3TER_CONTRACT_STATS", None)
        command = [sys.executable, "-m", "pytest", "contracts/test_contract.py", "-q", "-p", "no:cacheprovider",
                   "-o", "addopts=", "--rootdir", str(ROOT), "--junitxml", str(where / "junit.xml"),
                   "--contract-target", "inprocess", "--contract-examples", "10",
                   "--contract-stateful-examples", str(stateful), "--contract-seed", "20261123"]
        output = open(where / "output.txt", "w+", encoding="utf-8")
        started[factory] = (subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT),
                            where, output)
    finished = {}
    for factory, (process, where, output) in started.items():
        status = process.wait(timeout=600)
        output.seek(0)
        finished[factory] = (status, parse_junit(where / "junit.xml"), output.read())
        output.close()
    return finished


def outcome(parity, label, target="inprocess"):
    return parity.rows[label][target]


def test_an_undocumented_field_type_and_a_500_fail_their_operations_only(runs):
    status, parity, output = runs["wrong_types_and_a_crash"]
    assert status == 1, output[-3000:]
    wrong_type = outcome(parity, COMPOUND_CREATE)
    assert wrong_type.outcome == "failed" and "Response violates schema" in wrong_type.message, output[-3000:]
    crash = outcome(parity, NOTIFICATION_LIST)
    assert crash.outcome == "failed" and "Server error" in crash.message, output[-3000:]
    assert outcome(parity, EVENT_TYPES).outcome == "passed", output[-3000:]
    assert "seed 20261123" in output  # printed, so the failure can be replayed


def test_a_delete_that_does_not_delete_fails_the_stateful_phase(runs):
    status, parity, output = runs["delete_that_keeps"]
    assert status == 1, output[-3000:]
    stateful = outcome(parity, "stateful phase: WebhookDestinations")
    assert stateful.outcome == "failed", output[-3000:]
    assert "Deleted resource still available" in output, output[-3000:]


def test_a_run_in_which_every_call_is_a_401_fails(runs):
    status, parity, output = runs["tokens_refused"]
    assert status == 1, output[-3000:]
    assert outcome(parity, EVENT_TYPES).outcome == "failed"
    assert "refused the suite's current bearer token" in output, output[-3000:]


def test_the_parity_report_shows_each_operations_outcome(runs):
    _, parity, _ = runs["wrong_types_and_a_crash"]
    table = render(parity).splitlines()
    rows = {line.split("  ")[0]: line for line in table}
    assert "FAIL" in rows[COMPOUND_CREATE] and "PostCompoundAggregation" in rows[COMPOUND_CREATE]
    assert "FAIL" in rows[NOTIFICATION_LIST]
    assert "PASS" in rows[EVENT_TYPES]
    assert any(line.startswith("inprocess: 1/3 passed") for line in table)
    assert any("Response violates schema" in line for line in table)


# -- the suite's own machinery ------------------------------------------------------------
from contracts import policy, suite  # noqa: E402
from contracts.auth import AuthFailed, TokenSource, basic_header  # noqa: E402
from contracts.target import TargetError, is_loopback, run_options, url_target  # noqa: E402


class FakeTokenEndpoint:
    def __init__(self, expires_in=300, status=200):
        self.calls, self.expires_in, self.status = [], expires_in, status

    def __call__(self, path, headers, body):
        self.calls.append((path, headers, body))
        return self.status, {"access_token": f"token-{len(self.calls)}", "expires_in": self.expires_in}


def test_the_token_is_fetched_with_basic_credentials_and_kept_until_shortly_before_it_expires():
    now = [1000.0]
    endpoint = FakeTokenEndpoint(expires_in=300)
    tokens = TokenSource("client", "pass", endpoint, clock=lambda: now[0], margin_seconds=60)
    assert tokens.token() == tokens.token() == "token-1"
    assert endpoint.calls == [("/oauth/token", {"Authorization": basic_header("client", "pass")},
                               {"grant_type": "client_credentials"})]
    now[0] += 239
    assert tokens.token() == "token-1"
    now[0] += 1  # 60 s before it expires
    assert tokens.token() == "token-2" and tokens.fetches == 2
    assert tokens.issued("token-1") and tokens.current() == "token-2"


def test_a_refused_token_is_fetched_again():
    tokens = TokenSource("client", "pass", FakeTokenEndpoint())
    first = tokens.token()
    tokens.invalidate("not-the-current-one")
    assert tokens.token() == first
    tokens.invalidate(first)
    assert tokens.token() == "token-2"


def test_no_token_is_fatal():
    tokens = TokenSource("client", "wrong", FakeTokenEndpoint(status=401))
    with pytest.raises(AuthFailed, match="answered 401"):
        tokens.token()


def test_one_state_machine_per_group_of_linked_families():
    groups = {group.name: {p.rsplit("}/", 1)[1] for p in group.paths} for group in suite.stateful_groups()}
    assert groups == {
        "CompoundAggregations": {"compoundaggregations"},
        "ExportDestinations": {"dataexports/destinations", "dataexports/schedules"},
        "Notifications": {"notifications/configurations", "integrationconfigs"},
        "WebhookDestinations": {"integrationdestinations/webhooks", "integrationconfigs"},
    }


def test_clean_up_deletes_what_refers_to_something_first():
    order = [family.create for family in suite.families()]
    assert order.index("CreateSchedule") < order.index("PostDestination")
    assert order.index("PostIntegrationConfig") < order.index("CreateNotification")
    assert order.index("PostIntegrationConfig") < order.index("CreateWebhookDestination")
    assert {family.marker for family in suite.families() if family.create == "PostIntegrationConfig"} == {"name"}


@pytest.mark.parametrize(("message", "field"), [
    ("destinationIds: no export destination with id 'x'", "destinationIds"),
    ("offset must be between 0 and 59 for scheduleType HOUR", "offset"),
    ("eventName '' is not a known event type", "eventName"),
    ("", None),
])
def test_the_field_a_400_blames(message, field):
    assert suite.blamed_field(message) == field


def test_every_exemption_gives_its_reason():
    for exemption in policy.exemptions() + policy.exemptions(read_only=True):
        assert exemption.reason and exemption.subject and exemption.scope
    assert policy.not_implemented_operations() == []


def test_the_switch(monkeypatch):
    for name in ("M3TER_CONTRACT_TARGET", "M3TER_CONTRACT_EXAMPLES", "M3TER_CONTRACT_SEED", "M3TER_CONTRACT_PARALLEL"):
        monkeypatch.delenv(name, raising=False)
    options = run_options()
    assert options.targets == ("inprocess", "http") and options.delegated == ("http",)
    assert options.examples == 50 and options.stateful_examples == 200 and not options.seed_given
    monkeypatch.setenv("M3TER_CONTRACT_SEED", "7")
    monkeypatch.setenv("M3TER_CONTRACT_PARALLEL", "0")
    options = run_options(target="http", examples=80)
    assert (options.targets, options.delegated, options.examples, options.seed) == (("http",), (), 80, 7)
    with pytest.raises(TargetError):
        run_options(target="staging")
    monkeypatch.setenv("M3TER_CONTRACT_EXAMPLES", "lots")
    with pytest.raises(TargetError):
        run_options()


def test_a_url_target_needs_credentials_and_writes_only_where_allowed(monkeypatch):
    for name in ("M3TER_API_KEY", "M3TER_API_SECRET", "M3TER_ORG_ID", "M3TER_CONTRACT_ALLOW_WRITES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("M3TER_BASE_URL", "https://api.m3ter.com")
    with pytest.raises(TargetError, match="M3TER_API_KEY, M3TER_API_SECRET, M3TER_ORG_ID"):
        url_target()
    monkeypatch.setenv("M3TER_API_KEY", "k")
    monkeypatch.setenv("M3TER_API_SECRET", "s")
    monkeypatch.setenv("M3TER_ORG_ID", "org")
    assert url_target().writes is False
    monkeypatch.setenv("M3TER_CONTRACT_ALLOW_WRITES", "1")
    assert url_target().writes is True
    monkeypatch.delenv("M3TER_CONTRACT_ALLOW_WRITES")
    monkeypatch.setenv("M3TER_BASE_URL", "http://127.0.0.1:4010")
    assert url_target().writes is True
    monkeypatch.setenv("M3TER_CONTRACT_ALLOW_WRITES", "0")
    assert url_target().writes is False
    assert is_loopback("http://localhost:1") and is_loopback("http://[::1]:1") and not is_loopback("https://10.0.0.1")
