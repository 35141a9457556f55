"""A plain ``schemathesis run`` with the repository's ``schemathesis.toml`` (README, "Plain
Schemathesis"): the CLI in a process of its own against the mock served on a loopback port.

It passes where a run without the toml fails (random cursors, unknown event types, references
to nothing, control characters in ids...: the contract suite's semantic-400 rules), it
authenticates by itself, on one organization; and the rules stay as narrow as in the suite:
a mock that refuses valid requests with a rule's own wording still fails the run.

The CLI runs in a temporary folder with ``--config-file`` naming the repository's toml: it
keeps a cache of past failures in ``.schemathesis/`` of its current folder, which must neither
land in the repository nor replay one run's failures into the next.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from contracts import policy
from contracts.target import MOCK_CLIENT_ID, MOCK_CLIENT_PASSWORD, MOCK_ORG_ID
from mockserver.app import create_app
from mockserver.domain.auth import Client
from tests.conftest import make_settings
from tests.support import broken_mock
from tests.support.server import serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
TOML = ROOT / "schemathesis.toml"
SPEC = ROOT / "openapi" / "m3ter.yaml"
SEED = "20261130"
ADMIN = "plain-schemathesis-admin-token"
# README: the client the toml's hooks use unless M3TER_API_KEY / M3TER_API_SECRET say otherwise,
# and the organization unless M3TER_ORG_ID does.
DEFAULT_CLIENT = ("schemathesis", "schemathesis-pass")
DEFAULT_ORG = "schemathesis-org"
CREDENTIALS = ("M3TER_API_KEY", "M3TER_API_SECRET", "M3TER_ORG_ID")

# Operations a plain run without the toml failed on, each with a 400 of a different rule, and
# neighbours that pass either way (the token endpoint, the event types, a notification's whole
# life, which gives the stateful phase links to follow). Operations with the largest bodies are
# left out: their coverage phase alone takes tens of seconds.
FORMERLY_FAILING = (
    "ListAccountPlans",  # a nextToken the mock never issued
    "DeleteAccountPlan",  # a control character in {id}
    "PostBalance",  # an accountId that names no account
    "PostAccountPlan",  # exactly one of planId, planGroupId
    "CreateNotification", "ListEventFields",  # an eventName that is not an event type
    "UpdateBillConfig",  # a stored singleton replaced without its version
    "ApproveBills",  # billIds: no API call creates a bill
    "ListStatementJobs",  # more than one of active, status, billId
    "SearchAccounts",  # a sortBy that is not a field of Account
    "CreateOrgUserInvitation",  # a dtExpiry in the past
    "SubmitMeasurements",  # a meter code the organization does not hold
)
NEIGHBOURS = ("GenerateToken", "ListEventTypes", "ListNotifications", "GetNotification", "UpdateNotification",
              "DeleteNotification")


def start_plain_run(url: str, operations, cwd: Path, env: dict, examples: int = 3,
                    phases: str = "examples,coverage,fuzzing,stateful") -> subprocess.Popen:
    """``schemathesis run openapi/m3ter.yaml --url URL --checks all`` with the repository's toml,
    on ``operations``, with a fixed seed; ``finish`` collects (exit status, output)."""
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(TOML), "run", str(SPEC),
               "--url", url, "--checks", "all", "--max-examples", str(examples), "--seed", SEED, "--workers", "1",
               "--generation-database", "none", "--phases", phases]
    for operation in operations:
        command += ["--include-operation-id", operation]
    environment = {key: value for key, value in os.environ.items() if key not in CREDENTIALS}
    return subprocess.Popen(command, cwd=cwd, env={**environment, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def failed_operations(output: str) -> set[str]:
    """The operations the run's FAILURES section names (``____ POST /path ____``)."""
    failures = output.split("= FAILURES =", 1)[1] if "= FAILURES =" in output else ""
    failures = failures.split("= WARNINGS =", 1)[0].split("= SUMMARY =", 1)[0]
    return set(re.findall(r"^_{3,} (.+?) _{3,}$", failures, re.MULTILINE))


def dropped(output: str) -> int:
    found = re.search(r"Filtered: (\d+) \(dropped by `filter_failure`\)", output)
    return int(found.group(1)) if found else 0


@pytest.fixture(scope="module")
def mock_url():
    """The mock as README's command serves it: strict, with the toml's default client."""
    app = create_app(make_settings(clients=[Client(*DEFAULT_CLIENT)], admin_token=ADMIN))
    app.backend.deliveries.local_answer = lambda url, headers, body: 204  # generated webhook URLs name any host
    with serve_in_thread(app) as url:
        yield url


def journal_count(url: str, **filters) -> int:
    answer = httpx.get(f"{url}/_mock/journal/count", params=filters, headers={"X-m3ter-mock-admin-token": ADMIN})
    assert answer.status_code == 200, answer.text
    return answer.json()["count"]


def test_a_plain_run_passes_with_the_toml_and_excuses_only_the_policys_400s(mock_url, tmp_path):
    rc, output = finish(start_plain_run(mock_url, FORMERLY_FAILING + NEIGHBOURS, tmp_path, {}))
    assert rc == 0, output[-6000:]
    assert "Failures:" not in output and not failed_operations(output), output[-6000:]
    # Those operations' 400s were judged and excused one by one (not a run in which nothing was refused).
    assert dropped(output) > 0, output[-3000:]
    # It authenticated by itself (the token flow, with the default client) and used one organization.
    assert "Authentication failed" not in output, output[-3000:]
    assert journal_count(mock_url, orgId=DEFAULT_ORG, status="2xx") > 0
    for operation in FORMERLY_FAILING + NEIGHBOURS[1:]:
        assert journal_count(mock_url, orgId=DEFAULT_ORG, operationId=operation) > 0, operation


# Mocks that refuse valid requests with the exact wording of a real rule (tests/support/broken_mock.py,
# as the contract suite's own self-test uses them): broken mock -> (operations run, the one that must fail,
# operations beside it that must pass).
BROKEN = {
    # Every notification create refused as "eventName: ... is not an event type", the spec's own example too;
    # the list beside it breaks its own rules (cursors) and passes.
    "refuses_every_notification": (
        ("CreateNotification", "ListNotifications"), "POST /organizations/{orgId}/notifications/configurations",
        ("GET /organizations/{orgId}/notifications/configurations",)),
    # Every meter create refused with the engine's wording for a dangling product, naming a product the
    # request never sent; the plan and aggregation creates beside it are refused by the real rule.
    "refuses_meters_with_a_made_up_reference": (
        ("PostMeter", "PostPlan", "PostAggregation"), "POST /organizations/{orgId}/meters",
        ("POST /organizations/{orgId}/plans", "POST /organizations/{orgId}/aggregations")),
}


@pytest.fixture(scope="module")
def broken_runs(tmp_path_factory):
    """Each broken mock served on a port of its own and a plain run against it; (exit status,
    output) per mock. Every schema-valid request is refused, so the examples and fuzzing
    phases show it."""
    env = {"M3TER_API_KEY": MOCK_CLIENT_ID, "M3TER_API_SECRET": MOCK_CLIENT_PASSWORD, "M3TER_ORG_ID": MOCK_ORG_ID}
    finished = {}
    for factory, (operations, _, _) in BROKEN.items():
        with serve_in_thread(getattr(broken_mock, factory)()) as url:
            finished[factory] = finish(start_plain_run(url, operations, tmp_path_factory.mktemp(factory), env,
                                                       phases="examples,fuzzing"))
    return finished


@pytest.mark.parametrize("factory", BROKEN)
def test_a_false_rejection_worded_as_a_rule_still_fails_the_plain_run(broken_runs, factory):
    _, broken, intact = BROKEN[factory]
    rc, output = broken_runs[factory]
    assert rc == 1, output[-6000:]
    assert failed_operations(output) == {broken}, output[-6000:]
    assert "Schema-valid request rejected" in output
    assert "Not exempt (contracts/policy.py)" in output, output[-6000:]
    if factory == "refuses_every_notification":
        assert "configuration.commitment.updated" in output  # the spec's own example, refused
    assert not set(intact) & failed_operations(output)


def test_the_toml_names_a_hooks_module_importable_outside_the_source_tree(tmp_path):
    """An installed wheel ships ``contracts/`` as ``mockserver.contracts``: the name the toml
    uses resolves from any folder, not only from the repository's root."""
    hooks = tomllib.loads(TOML.read_text())["hooks"]
    assert hooks == "mockserver.contracts.hooks"
    done = subprocess.run([sys.executable, "-c", f"import {hooks}"], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


# -- the rule a whole plain run found missing from the policy ------------------------------
UNKNOWN_INCOME = ("measurements[0].income.x: Meter 'storage' has no INCOME field 'x' (its INCOME fields: none); "
                  "nothing of this batch was stored (1 of 1 measurements failed: see the ingest.validation.failure "
                  "Events)")
DERIVED = ("measurements[0].measure.gb: 'gb' is a derived field of Meter 'storage': its value is calculated, not "
           "submitted; nothing of this batch was stored (1 of 1 measurements failed: see the "
           "ingest.validation.failure Events)")


class StoredMeter:
    def __init__(self, meter):
        self.meter = meter

    def stored_meter(self, code):
        return self.meter if self.meter is not None and self.meter["code"] == code else None


@pytest.mark.parametrize(("message", "sent", "meter", "accepted"), [
    (UNKNOWN_INCOME, {"income": {"x": 1}}, {"code": "storage", "dataFields": []}, True),
    # the mock's own meter has that INCOME field: refusing it is a false rejection
    (UNKNOWN_INCOME, {"income": {"x": 1}},
     {"code": "storage", "dataFields": [{"category": "INCOME", "code": "x"}]}, False),
    # the target holds no meter with that code: the run cannot see the breach
    (UNKNOWN_INCOME, {"income": {"x": 1}}, None, False),
    (DERIVED, {"measure": {"gb": 1}},
     {"code": "storage", "dataFields": [{"category": "MEASURE", "code": "bytes"}],
      "derivedFields": [{"category": "MEASURE", "code": "gb", "calculation": "bytes/1000"}]}, True),
])
def test_a_measurement_field_its_meter_lacks_is_excused_only_when_the_meter_shows_it(message, sent, meter, accepted):
    request = policy.Request(body={"measurements": [{"meter": "storage", "account": "a", "ts": "2026-01-01T00:00:00Z",
                                                     **sent}]}, operation="SubmitMeasurements")
    verdict = policy.judge_rejection("SubmitMeasurements", message, request, StoredMeter(meter))
    assert verdict.accepted is accepted, verdict.why


class Holds:
    def __init__(self, *held):
        self.held = set(held)

    def holds(self, create_operation, entity_id):
        return (create_operation, entity_id) in self.held


R = policy.Request
METER_GROUP = {"type": "meter", "resourceGroupId": "group-1"}


@pytest.mark.parametrize(("operation", "message", "request_", "knows", "accepted"), [
    # Reached only once the permission policy, group or table exists, which a plain run's reuse of ids does.
    ("AddPermissionPolicyToUser", "principalId: no OrgUser with id 'u-1'", R(body={"principalId": "u-1"}), Holds(),
     True),
    # the message quotes an id the request did not send
    ("AddPermissionPolicyToUser", "principalId: no OrgUser with id 'u-2'", R(body={"principalId": "u-1"}), Holds(),
     False),
    ("AddPermissionPolicyToUserGroup", "principalId: no user ResourceGroup with id 'g-9'",
     R(body={"principalId": "g-9"}), Holds(), True),
    # the run created that group: refusing it is a false rejection
    ("AddPermissionPolicyToUserGroup", "principalId: no user ResourceGroup with id 'g-9'",
     R(body={"principalId": "g-9"}), Holds(("PostResourceGroup", "g-9")), False),
    ("AddResourceToGroup", "targetId: no meter ResourceGroup with id 'g-9'",
     R(body={"targetId": "g-9", "targetType": "GROUP"}, path=METER_GROUP), Holds(), True),
    ("AddResourceToGroup", "targetId: no Meter with id 'm-1'",
     R(body={"targetId": "m-1", "targetType": "ITEM"}, path=METER_GROUP), Holds(), True),
    ("AddResourceToGroup", "targetId: no Meter with id 'm-1'",
     R(body={"targetId": "m-1", "targetType": "ITEM"}, path=METER_GROUP), Holds(("PostMeter", "m-1")), False),
    ("AddResourceToGroup",
     "targetId: ResourceGroup 'group-1' holds 'group-1' (or is it); nesting it would make a cycle",
     R(body={"targetId": "group-1", "targetType": "GROUP"}, path=METER_GROUP), Holds(), True),
    # a deeper cycle the run cannot see
    ("AddResourceToGroup", "targetId: ResourceGroup 'g-2' holds 'group-1' (or is it); nesting it would make a cycle",
     R(body={"targetId": "g-2", "targetType": "GROUP"}, path=METER_GROUP), Holds(), False),
    ("CopyLookupTableRevisionData", "revisionId: no LookupTableRevision with id 'r-2' in Lookup Table 't-1'",
     R(body={"revisionId": "r-2"}, path={"lookupTableId": "t-1", "lookupTableRevisionId": "r-1"}), Holds(), True),
    ("CopyLookupTableRevisionData", "revisionId: no LookupTableRevision with id 'r-2' in Lookup Table 't-1'",
     R(body={"revisionId": "r-2"}, path={"lookupTableId": "t-1", "lookupTableRevisionId": "r-1"}),
     Holds(("CreateLookupTableRevision", "r-2")), False),
    ("CopyLookupTableRevisionData", "revisionId: names the source revision itself",
     R(body={"revisionId": "r-1"}, path={"lookupTableId": "t-1", "lookupTableRevisionId": "r-1"}), Holds(), True),
    ("CopyLookupTableRevisionData", "revisionId: names the source revision itself",
     R(body={"revisionId": "r-2"}, path={"lookupTableId": "t-1", "lookupTableRevisionId": "r-1"}), Holds(), False),
])
def test_the_action_rules_a_plain_run_reaches_need_their_witness(operation, message, request_, knows, accepted):
    verdict = policy.judge_rejection(operation, message, request_, knows)
    assert verdict.accepted is accepted, verdict.why
