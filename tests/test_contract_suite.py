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
NOTIFICATION_CREATE = "POST /organizations/{orgId}/notifications/configurations"
NOTIFICATION_UPDATE = "PUT /organizations/{orgId}/notifications/configurations/{id}"
EVALUATE = "POST /organizations/{orgId}/notifications/evaluate"
SCHEDULE_CREATE = "POST /organizations/{orgId}/dataexports/schedules"
EVENTS_LIST = "GET /organizations/{orgId}/events"
METER_CREATE = "POST /organizations/{orgId}/meters"
PLAN_CREATE = "POST /organizations/{orgId}/plans"
AGGREGATION_CREATE = "POST /organizations/{orgId}/aggregations"

# One fixed seed, so the runs are repeatable; the stateful phase's path depends on the whole spec,
# so a spec change can move it (20261123 stopped reaching a DELETE then GET after issue 11).
SEED = "20261130"

RUNS = {
    # breakage factory: (tests kept, stateful scenarios)
    "wrong_types_and_a_crash": ([f"test_inprocess[{COMPOUND_CREATE}]", f"test_inprocess[{NOTIFICATION_LIST}]",
                                 f"test_inprocess[{EVENT_TYPES}]"], 1),
    "delete_that_keeps": (["test_stateful_inprocess[WebhookDestinations]"], 200),  # 50 scenarios in the group
    "tokens_refused": ([f"test_inprocess[{EVENT_TYPES}]"], 1),
    # False rejections worded as a real rule's 400 (contracts/policy.py); the list
    # operations next to them break their own rules (cursors, ids with filters) and pass.
    "refuses_every_notification": ([f"test_inprocess[{NOTIFICATION_CREATE}]", f"test_inprocess[{NOTIFICATION_LIST}]"], 1),
    "catalogue_forgets_a_field": ([f"test_inprocess[{NOTIFICATION_CREATE}]", f"test_inprocess[{NOTIFICATION_UPDATE}]",
                                   f"test_inprocess[{EVALUATE}]"], 1),
    "day_offsets_cut_short": ([f"test_inprocess[{SCHEDULE_CREATE}]", f"test_inprocess[{EVENTS_LIST}]"], 1),
    # A false rejection worded as a reference rule derived from the catalog; the creates
    # beside it, whose generated references dangle, are refused by the real rule and pass.
    "refuses_meters_with_a_made_up_reference": ([f"test_inprocess[{METER_CREATE}]", f"test_inprocess[{PLAN_CREATE}]",
                                                 f"test_inprocess[{AGGREGATION_CREATE}]"], 1),
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
                   "--contract-stateful-examples", str(stateful), "--contract-seed", SEED]
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
    assert f"seed {SEED}" in output  # printed, so the failure can be replayed


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


def test_refusing_every_notification_with_the_event_name_rules_message_fails(runs):
    """Issue 9: a mock refusing every create with `400 eventName: ...` passed 4/4 while the
    policy accepted any 400 whose message began with a listed field."""
    status, parity, output = runs["refuses_every_notification"]
    assert status == 1, output[-3000:]
    create = outcome(parity, NOTIFICATION_CREATE)
    assert create.outcome == "failed" and "Schema-valid request rejected" in create.message, output[-3000:]
    assert "configuration.commitment.updated" in output  # the spec's own example, refused
    assert outcome(parity, NOTIFICATION_LIST).outcome == "passed", output[-3000:]


def test_the_specs_own_example_refused_by_a_catalogue_bug_fails(runs):
    """Issue 9: `400 calculation: unknown field 'old.amountSpent'` for the spec's example
    notification passed the contract run on the three notification operations."""
    status, parity, output = runs["catalogue_forgets_a_field"]
    assert status == 1, output[-3000:]
    create = outcome(parity, NOTIFICATION_CREATE)
    assert create.outcome == "failed" and "Schema-valid request rejected" in create.message, output[-3000:]
    assert "unknown field 'old.amountSpent'" in output, output[-3000:]


def test_a_valid_example_refused_with_a_rules_message_fails(runs):
    """A false rejection of a valid example is caught whatever the rule: here the schedule
    frequency rule refuses the spec's DAY/1/2 example; the events list, whose generated
    requests break its own rules (cursors, ids with other filters), still passes."""
    status, parity, output = runs["day_offsets_cut_short"]
    assert status == 1, output[-3000:]
    create = outcome(parity, SCHEDULE_CREATE)
    assert create.outcome == "failed" and "Schema-valid request rejected" in create.message, output[-3000:]
    assert "offset must be between 0 and 23 for scheduleType DAY" in output, output[-3000:]
    assert outcome(parity, EVENTS_LIST).outcome == "passed", output[-3000:]


def test_a_valid_create_refused_with_a_made_up_reference_fails_and_real_dangling_references_pass(runs):
    """Issue 10: the reference rules are derived from the mock's catalog. A meter create
    refused with the engine's wording for a dangling product, naming a product the request
    never sent, is a false rejection; plans and aggregations whose generated planTemplateId
    and meterId name nothing are refused by the real rule, which the policy accepts."""
    status, parity, output = runs["refuses_meters_with_a_made_up_reference"]
    assert status == 1, output[-3000:]
    meters = outcome(parity, METER_CREATE)
    assert meters.outcome == "failed" and "Schema-valid request rejected" in meters.message, output[-3000:]
    assert "productId: no Product with id 'made-up-product'" in output, output[-3000:]
    assert outcome(parity, PLAN_CREATE).outcome == "passed", output[-3000:]
    assert outcome(parity, AGGREGATION_CREATE).outcome == "passed", output[-3000:]


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


# -- the policy: a 400 for a schema-valid request is accepted only as a rule's breach ------
class Knows:
    """A run's knowledge, as the test states it (``policy.Knowledge``)."""

    def __init__(self, held=(), cursors=(), event_types=("configuration.commitment.updated",
                                                         "configuration.commitment.created"),
                 valid_calculations=(), downloadable=(), versions=None):
        self.held, self.cursors, self.downloadable = set(held), set(cursors), set(downloadable)
        self.versions = dict(versions or {})
        self.types = None if event_types is None else frozenset(event_types)
        self.valid_calculations = set(valid_calculations)

    def holds(self, create_operation, entity_id):
        return (create_operation, entity_id) in self.held

    def issued_cursor(self, token, list_key=None):
        return token in self.cursors

    def event_types(self):
        return self.types

    def calculation_valid(self, calculation, event_name):
        return (calculation, event_name) in self.valid_calculations

    def seen_downloadable(self, job_id):
        return job_id in self.downloadable

    def singleton_version(self, operation_id):
        return self.versions.get(operation_id)


# The mock's messages, word for word (mockserver/backend, mockserver/domain).
NO_DESTINATION = "destinationIds: no export destination with id 'dest-1'"
CURSOR = ("nextToken: not a token issued by this list (it was altered, or comes from another organization, "
          "collection or set of filters)")
EXAMPLE_CALCULATION = ("(new.amountSpent >= ((new.amount*100)/90)) AND ((old.amountSpent <= ((old.amount*100)/90)) "
                       "OR (old.amountSpent == null))")
R = policy.Request


@pytest.mark.parametrize(("operation", "message", "request_", "knows", "accepted"), [
    # a dangling reference: the id quoted is the one sent, and the run never created it
    ("CreateSchedule", NO_DESTINATION, R(body={"destinationIds": ["dest-1"]}), Knows(), True),
    ("CreateSchedule", NO_DESTINATION, R(body={"destinationIds": ["dest-1"]}),
     Knows(held=[("PostDestination", "dest-1")]), False),  # it exists: a false rejection
    ("CreateSchedule", NO_DESTINATION, R(body={"destinationIds": ["dest-2"]}), Knows(), False),  # not what was sent
    ("CreateSchedule", "destinationIds: must be unique", R(body={"destinationIds": ["dest-1"]}), Knows(), False),
    ("PostIntegrationConfig", "destinationId: no webhook destination with id 'w-1'",
     R(body={"entityType": "Notification", "destination": "Webhook", "destinationId": "w-1"}), Knows(), True),
    ("PostIntegrationConfig", "entityId: no notification with id 'n-1'",
     R(body={"entityType": "Notification", "entityId": "n-1", "destination": "Webhook"}),
     Knows(held=[("CreateNotification", "n-1")]), False),
    # cursors
    ("ListNotifications", CURSOR, R(query={"nextToken": "forged"}), Knows(), True),
    ("ListNotifications", CURSOR, R(query={"nextToken": "issued"}), Knows(cursors=["issued"]), False),
    ("ListNotifications", "nextToken: bad", R(query={"nextToken": "forged"}), Knows(), False),
    ("GetCompoundAggregation", CURSOR, R(query={"nextToken": "forged"}), Knows(), False),  # no such rule there
    # ids alone on the events list
    ("ListEvents", "ids: cannot be combined with other filters (also given: eventName)",
     R(query={"ids": ["e-1"], "eventName": "x"}), Knows(), True),
    ("ListEvents", "ids: cannot be combined with other filters (also given: eventName)",
     R(query={"ids": ["e-1"]}), Knows(), False),
    # event types: not in the target's own list; never the spec's example
    ("CreateNotification", "eventName: 'nope' is not an event type (see GET /events/types)",
     R(body={"eventName": "nope"}), Knows(), True),
    ("CreateNotification", "eventName: 'configuration.commitment.created' is not an event type (see GET /events/types)",
     R(body={"eventName": "configuration.commitment.created"}), Knows(), False),
    ("CreateNotification", "eventName: 'configuration.commitment.updated' is not an event type (see GET /events/types)",
     R(body={"eventName": "configuration.commitment.updated"}), Knows(event_types=()), False),  # the example
    ("ListEventFields", "eventName 'nope' is not a known event type", R(query={"eventName": "nope"}), Knows(), True),
    ("ListEventFields", "eventName 'nope' is not a known event type", R(query={"eventName": "nope"}),
     Knows(event_types=None), False),  # the target's list could not be read: no witness
    # the calculation: the target's own evaluate call must agree; never the spec's example
    ("CreateNotification", "calculation: syntax error at line 1, column 3: unexpected end of input",
     R(body={"eventName": "configuration.commitment.created", "calculation": "a ="}), Knows(), True),
    ("CreateNotification", "calculation: unknown field 'new.x' at line 1, column 1 for event configuration.commitment.created",
     R(body={"eventName": "configuration.commitment.created", "calculation": "new.x > 1"}),
     Knows(valid_calculations=[("new.x > 1", "configuration.commitment.created")]), False),
    ("CreateNotification", "calculation: unknown field 'old.amountSpent' at line 1, column 56 for event "
                           "configuration.commitment.updated",
     R(body={"eventName": "configuration.commitment.updated", "calculation": EXAMPLE_CALCULATION}), Knows(), False),
    # schedule frequencies: the documented table decides, not the mock
    ("CreateSchedule", "period must be between 1 and 3 for scheduleType DAY: executions cannot be less frequent "
                       "than every 3 days", R(body={"scheduleType": "DAY", "period": 4}), Knows(), True),
    ("CreateSchedule", "period 25 is not valid for scheduleType MINUTE: it must divide 60 (15, 20, 30 or 60) so "
                       "that runs stay evenly spaced", R(body={"scheduleType": "MINUTE", "period": 25}), Knows(), True),
    ("CreateSchedule", "offset must be between 0 and 23 for scheduleType DAY (hour of the day)",
     R(body={"scheduleType": "DAY", "period": 3, "offset": 23}), Knows(), False),  # 23 is inside
    ("UpdateSchedule", "offset must be between 0 and 59 for scheduleType HOUR (minutes past the hour)",
     R(body={"scheduleType": "HOUR", "period": 2, "offset": 60}), Knows(), True),
    # jobs
    ("GenerateDataExportFileDownloadUrl", "jobId: job 'j-1' is RUNNING; it has no file to download",
     R(path={"jobId": "j-1"}), Knows(), True),
    ("GenerateDataExportFileDownloadUrl", "jobId: job 'j-1' is RUNNING; it has no file to download",
     R(path={"jobId": "j-1"}), Knows(downloadable=["j-1"]), False),
])
def test_a_400_is_accepted_only_as_the_breach_of_a_rule(operation, message, request_, knows, accepted):
    verdict = policy.judge_rejection(operation, message, request_, knows)
    assert verdict.accepted is accepted, verdict.why


def test_a_message_clipped_by_the_mock_still_quotes_what_was_sent():
    name = "x" * 600
    message = ("eventName: '" + name)[:499] + "…"  # the mock keeps 500 characters
    verdict = policy.judge_rejection("CreateNotification", message, R(body={"eventName": name}), Knows())
    assert verdict.accepted and verdict.rule.name == "unknown event type"
    other = policy.judge_rejection("CreateNotification", message, R(body={"eventName": "y" * 600}), Knows())
    assert not other.accepted


def test_against_a_real_org_the_message_is_not_read_and_a_witness_is_required():
    anything = "Destination not found"
    dangling = R(body={"sourceType": "OPERATIONAL", "destinationIds": ["dest-1"]})
    assert policy.judge_rejection("CreateSchedule", anything, dangling, Knows(), exact_messages=False).accepted
    held = Knows(held=[("PostDestination", "dest-1")])
    assert not policy.judge_rejection("CreateSchedule", anything, dangling, held, exact_messages=False).accepted
    valid = R(body={"sourceType": "OPERATIONAL", "scheduleType": "MINUTE", "period": 15})
    assert not policy.judge_rejection("CreateSchedule", anything, valid, Knows(), exact_messages=False).accepted
    assert not policy.judge_rejection("PostCompoundAggregation", anything, valid, Knows(),
                                      exact_messages=False).accepted


class KnowsEverythingIsBroken:
    """Every witness confirms a breach: only the spec's examples still stand in the way."""

    def holds(self, create_operation, entity_id):
        return False

    def issued_cursor(self, token, list_key=None):
        return False

    def event_types(self):
        return frozenset()

    def calculation_valid(self, calculation, event_name):
        return False

    def seen_downloadable(self, job_id):
        return False

    def singleton_version(self, operation_id):
        return 1


# One message of each rule about the request alone, as the mock words it.
RULE_MESSAGES = {
    "schedule frequency": "offset must be between 0 and 23 for scheduleType DAY (hour of the day)",
    "unknown event type": None,  # quotes the name sent: built per example below
    "calculation": "calculation: unknown field 'old.amountSpent' at line 1, column 56 for event "
                   "configuration.commitment.updated",
    "ids with other event filters": "ids: cannot be combined with other filters (also given: eventName)",
}
EXAMPLE_OPERATIONS = {  # operation -> the request schema whose example(s) it is sent
    "CreateSchedule": ["OperationalDataExportScheduleRequest", "UsageDataExportScheduleRequest"],
    "CreateNotification": ["NotificationRequest"], "UpdateNotification": ["NotificationUpdateRequest"],
    "EvaluateCalculation": ["EvaluateCalculationRequest"],
}


@pytest.mark.parametrize("operation", sorted(EXAMPLE_OPERATIONS))
@pytest.mark.parametrize("exact_messages", [True, False], ids=["mock", "real org"])
def test_a_false_rejection_of_the_specs_own_example_is_never_exempt(operation, exact_messages):
    from mockserver.app import load_spec

    schemas = load_spec()["components"]["schemas"]
    for schema in EXAMPLE_OPERATIONS[operation]:
        example = schemas[schema]["example"]
        for rule in policy.rules_for(operation):
            if rule.state or not any(name in example for name in rule.fields):
                continue  # about what the target stores, or about parts the example does not give
            message = RULE_MESSAGES[rule.name] or (
                f"eventName '{example['eventName']}' is not a known event type" if operation == "EvaluateCalculation"
                else f"eventName: {example['eventName']!r} is not an event type (see GET /events/types)")
            verdict = policy.judge_rejection(operation, message, R(body=example), KnowsEverythingIsBroken(),
                                             exact_messages=exact_messages)
            assert not verdict.accepted, (schema, rule.name, verdict.why)
            # refused because it is the spec's example (the message is the rule's, the witness agrees)
            assert "the spec's own examples" in verdict.why, (schema, rule.name, verdict.why)


def test_every_rule_has_a_witness_and_a_reason():
    for rule in policy.RULES:
        assert rule.reason and rule.messages and rule.fields and rule.witness in policy.WITNESSES
        assert rule.operations, rule.name


def test_every_exemption_gives_its_reason():
    for exemption in policy.exemptions() + policy.exemptions(read_only=True):
        assert exemption.reason and exemption.subject and exemption.scope


def test_only_an_operation_no_handler_serves_may_answer_501():
    """The 501 exemption follows the mock's own binding, not the spec's words: an operation
    that an action handler serves may not answer 501 even while its spec entry documents one."""
    # Every operation is served since issue 11, so nothing may answer 501.
    assert policy.not_implemented_operations() == []


# -- rules derived from the mock's declarations (mockserver/backend/resources/catalog.py) --
def names(operation):
    return {rule.name for rule in policy.rules_for(operation)}


def test_each_declared_reference_is_a_rule_of_the_resources_writes():
    assert "unknown Product in meters.productId" in names("PostMeter")
    assert "unknown Product in meters.productId" in names("PutMeter")
    assert "unknown PlanTemplate in plans.planTemplateId" in names("PostPlan")
    assert "unknown Product in commitments.productIds" in names("PostCommitment")
    # an action that runs the resource's own create has its rules too
    assert "unknown TransactionType in balances/{balanceId}/balancetransactionschedules.transactionTypeId" in names(
        "PreviewBalanceTransactionSchedule")
    # a resource without references has none, and a read has none
    assert not {name for name in names("PostProduct") if name.startswith("unknown ")}
    assert not {name for name in names("GetMeter") if name.startswith("unknown ")}


def test_groups_singletons_cursors_and_paths_give_rules_too():
    assert {"exactly one of planId, planTemplateId in pricings",
            "exactly one of aggregationId, compoundAggregationId in pricings"} <= names("PostPricing")
    assert "version of a stored BillConfig" in names("UpdateBillConfig")
    assert "cursor not issued by this list" in names("ListProducts")  # every operation with a nextToken
    assert "cursor not issued by this list" not in names("GetProduct")
    assert "control character in the path" in names("GetProduct")
    assert "control character in the path" not in names("ListProducts")


@pytest.mark.parametrize(("operation", "message", "request_", "knows", "accepted"), [
    # a real dangling reference: the id quoted is the one sent, and the run never created it
    ("PostMeter", "productId: no Product with id 'p-1'", R(body={"productId": "p-1"}), Knows(), True),
    ("PutMeter", "productId: no Product with id 'p-1'", R(body={"productId": "p-1"}), Knows(), True),
    # ... but the run holds it (created through PostProduct, not deleted): a false rejection
    ("PostMeter", "productId: no Product with id 'p-1'", R(body={"productId": "p-1"}),
     Knows(held=[("PostProduct", "p-1")]), False),
    # made-up: quotes an id the request did not send, or sends none
    ("PostMeter", "productId: no Product with id 'made-up'", R(body={"productId": "p-1"}), Knows(), False),
    ("PostMeter", "productId: no Product with id 'made-up'", R(body={"name": "m"}), Knows(), False),
    # made-up: a field that is not a declared reference, or a resource without that reference
    ("PostMeter", "name: no Product with id 'p-1'", R(body={"name": "p-1"}), Knows(), False),
    ("PostProduct", "productId: no Product with id 'p-1'", R(body={"productId": "p-1"}), Knows(), False),
    ("PostMeter", "productId: no Meter with id 'p-1'", R(body={"productId": "p-1"}), Knows(), False),
    # an array of ids: each is checked
    ("PostCommitment", "productIds: no Product with id 'p-2'", R(body={"productIds": ["p-1", "p-2"]}),
     Knows(held=[("PostProduct", "p-1")]), True),
    ("PostCommitment", "productIds: no Product with id 'p-1'", R(body={"productIds": ["p-1", "p-2"]}),
     Knows(held=[("PostProduct", "p-1")]), False),
    # bills cannot be created through the API: any id names a bill the run does not hold
    ("CreateStatementJob", "billId: no Bill with id 'b-1'", R(body={"billId": "b-1"}), Knows(), True),
    # exactly one of a group
    ("PostPricing", "planId: exactly one of planId, planTemplateId is required (given: planId, planTemplateId)",
     R(body={"planId": "p", "planTemplateId": "t", "aggregationId": "a"}), Knows(), True),
    ("PostPricing", "planId: exactly one of planId, planTemplateId is required",
     R(body={"aggregationId": "a"}), Knows(), True),
    ("PostPricing", "planId: exactly one of planId, planTemplateId is required",
     R(body={"planId": "p", "aggregationId": "a"}), Knows(), False),
    # a singleton's version, once the target shows it stored
    ("UpdateBillConfig", "version: required on update (the BillConfig is at version 2)", R(body={}),
     Knows(versions={"UpdateBillConfig": 2}), True),
    ("UpdateBillConfig", "version: required on update (the BillConfig is at version 2)", R(body={}), Knows(), False),
    # cursors on a list of the generic engine
    ("ListProducts", CURSOR, R(query={"nextToken": "forged"}), Knows(), True),
    ("ListProducts", CURSOR, R(query={"nextToken": "issued"}), Knows(cursors=["issued"]), False),
    # control characters in a path parameter (sent as is, or percent-encoded)
    ("GetProduct", "path: control characters are not allowed", R(path={"id": "a\x01b"}), Knows(), True),
    ("GetProduct", "path: control characters are not allowed", R(path={"id": "a%1Fb"}), Knows(), True),
    ("GetProduct", "path: control characters are not allowed", R(path={"id": "a\x85b"}), Knows(), False),
])
def test_a_400_is_accepted_only_as_the_breach_of_a_derived_rule(operation, message, request_, knows, accepted):
    verdict = policy.judge_rejection(operation, message, request_, knows)
    assert verdict.accepted is accepted, verdict.why


@pytest.mark.parametrize(("operation", "message", "request_", "accepted"), [
    ("SearchAccounts", "sortBy: 'nope' is not a field of Account", R(query={"sortBy": "nope"}), True),
    ("SearchAccounts", "sortBy: 'name' is not a field of Account", R(query={"sortBy": "name"}), False),
    ("SearchAccounts", "sortBy: Account cannot be sorted on 'address' (not a single value)",
     R(query={"sortBy": "address"}), True),
    ("SearchBills", "searchQuery: 'x' is not a term <field><comparator><value> (comparators: >= <= > < : ~; terms "
                    "are joined by '$')", R(query={"searchQuery": "x"}), True),
    ("SearchBills", "searchQuery: 'nope' is not a searchable field of Bill (searchable: accountId, id)",
     R(query={"searchQuery": "nope:1"}), True),
    ("SearchBills", "searchQuery: 'accountId' is not a searchable field of Bill (searchable: accountId, id)",
     R(query={"searchQuery": "accountId:1"}), False),
    ("DownloadBillsCsvUrl", "endDate: must be later than startDate",
     R(body={"startDate": "2024-01-02T00:00:00Z", "endDate": "2024-01-01T00:00:00Z"}), True),
    ("DownloadBillsCsvUrl", "endDate: must be later than startDate",
     R(body={"startDate": "2024-01-01T00:00:00Z", "endDate": "2024-01-02T00:00:00Z"}), False),
    ("DownloadBillsCsvUrl", "endDate: a download covers at most 31 days",
     R(body={"startDate": "2024-01-01T00:00:00Z", "endDate": "2024-02-02T00:00:00Z"}), True),
    ("DownloadBillsCsvUrl", "endDate: a download covers at most 31 days",
     R(body={"startDate": "2024-01-01T00:00:00Z", "endDate": "2024-02-01T00:00:00Z"}), False),
    ("ListStatementJobs", "billId: use only one of active, status and billId (given: active, billId)",
     R(query={"active": "true", "billId": "b"}), True),
    ("ListStatementJobs", "billId: use only one of active, status and billId (given: active, billId)",
     R(query={"billId": "b"}), False),
    ("CreateOrgUserInvitation", "dtExpiry: must be a date-time after now (2030-01-01T00:00:00.000Z)",
     R(body={"dtExpiry": "2000-01-01T00:00:00Z"}), True),
    ("CreateOrgUserInvitation", "dtExpiry: must be a date-time after now (2030-01-01T00:00:00.000Z)",
     R(body={"dtExpiry": "2999-01-01T00:00:00Z"}), False),
    ("PreviewScheduledCharge", "amount: leave it out when units and unitPrice are given",
     R(body={"amount": 1, "units": 2, "unitPrice": 3}), True),
    ("PreviewScheduledCharge", "amount: required (or units and unitPrice)", R(body={"amount": 1}), False),
])
def test_the_action_modules_rules_need_their_witness(operation, message, request_, accepted):
    verdict = policy.judge_rejection(operation, message, request_, Knows())
    assert verdict.accepted is accepted, verdict.why


def test_the_switch(monkeypatch):
    for name in ("M3TER_CONTRACT_TARGET", "M3TER_CONTRACT_EXAMPLES", "M3TER_CONTRACT_SEED", "M3TER_CONTRACT_PARALLEL"):
        monkeypatch.delenv(name, raising=False)
    options = run_options()
    assert options.targets == ("inprocess", "http") and options.delegated == ("inprocess", "http")
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


def test_the_readme_lists_every_written_out_rule():
    """contracts/README.md's table of written-out rules names each of ``policy.EXPLICIT_RULES``
    (the derived ones are described there per kind)."""
    text = (ROOT / "contracts" / "README.md").read_text()
    listed = {line.split("|")[1].strip() for line in text.splitlines() if line.lstrip().startswith("| ")}
    assert sorted({rule.name for rule in policy.EXPLICIT_RULES} - listed) == []
