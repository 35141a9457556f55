"""The one place that says what the contract suite does not check, or checks differently,
and why. Everything else runs: every Schemathesis check, and the examples, coverage,
fuzzing and stateful phases, on every operation of ``openapi/m3ter.yaml``.

A failure the suite finds is fixed in the mock or in the spec. An entry here is the
exception, and each one gives its reason: the real m3ter behaviour that justifies it where
it is about the API, the measurement where it is about how the suite generates requests.
(``m3ter-mock contract --policy`` prints this list.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Protocol

from mockserver.resources import spec_path

SPEC_PATH = spec_path("m3ter.yaml")

METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Exemption:
    kind: str  # "check", "operation", "phase", "status"
    subject: str  # what is disabled or relaxed
    scope: str  # where it applies
    reason: str  # why, citing m3ter's behaviour


# -- rules a JSON Schema cannot state ---------------------------------------------------
# m3ter answers 400 when a request is well formed but breaks a rule that depends on data
# (the referenced entity must exist) or on a language (the calculation grammar). No
# OpenAPI schema can express these, so Schemathesis's ``positive_data_acceptance`` sees a
# schema-valid request rejected. The suite's variant of that check (``judge_rejection``)
# accepts such a 400 only as the breach of one RULE below, and only when
#   1. against the mock: the message is that rule's message, word for word (anchored
#      patterns of the mock's wording, quoting the value the request sent);
#   2. the suite sees the breach itself, without reading the message (the rule's
#      ``witness``: an id the run never created, a cursor the target never issued, a
#      frequency outside the documented table, a name missing from the target's own
#      GET /events/types, a calculation the target's own evaluate call rejects...);
#   3. for a rule about the request alone (``state=False``), the values it judges are not
#      the values of one of the spec's own request examples: those are valid by definition,
#      so a 400 for them is a false rejection whatever it says.
# Against a real organization, whose wording is not the mock's, (1) is skipped: a 400 is
# accepted when some rule of the operation passes (2) and (3). Any other 400 fails.

CLIPPED_AT = 500  # the mock cuts a message at 500 characters, ending it with "…"


class Knowledge(Protocol):
    """What the run knows about the target, from its own requests (``contracts/suite.py``)."""

    def holds(self, create_operation: str, entity_id: str) -> bool:
        """The run created this entity (with ``create_operation``) and has not deleted it."""

    def issued_cursor(self, token: str) -> bool:
        """The target returned this ``nextToken`` to one of the run's list requests."""

    def event_types(self) -> frozenset[str] | None:
        """The target's own ``GET /events/types`` (None: it could not be read)."""

    def calculation_valid(self, calculation: str, event_name: str) -> bool | None:
        """The target's own ``POST /notifications/evaluate`` verdict (None: no verdict)."""

    def seen_downloadable(self, job_id: str) -> bool:
        """The run saw this export job SUCCEEDED, created less than 24 hours ago."""


@dataclass(frozen=True)
class Request:
    """The parts of a request a rule reads: JSON body, query and path parameters."""

    body: Any = None
    query: dict | None = None
    path: dict | None = None

    def get(self, name: str) -> Any:
        for part in (self.body, self.query, self.path):
            if isinstance(part, dict) and name in part:
                return part[name]
        return None


@dataclass(frozen=True)
class Message:
    """One wording of a rule's 400 as the mock answers it: ``pattern`` matched from the
    start; then, if ``quotes`` names a field, the value the request sent there (``repr``,
    as Python's ``!r`` quotes it, or ``plain``: between single quotes) followed by
    ``tail`` (a pattern), and nothing else. Without ``quotes`` the pattern must match the
    whole message."""

    pattern: str
    quotes: str | None = None
    style: str = "repr"
    tail: str = ""

    def match(self, message: str, request: Request) -> tuple[bool, Any]:
        """(matched, the request value it quotes)."""
        if self.quotes is None:
            return re.fullmatch(self.pattern, message, re.DOTALL) is not None, None
        head = re.match(self.pattern, message)
        if head is None:
            return False, None
        rest = message[head.end():]
        clipped = len(message) == CLIPPED_AT and message.endswith("…")
        for value in _values(request.get(self.quotes)):
            shown = repr(value) if self.style == "repr" else f"'{value}'"
            if rest.startswith(shown) and re.fullmatch(self.tail, rest[len(shown):], re.DOTALL):
                return True, value
            # Clipped: the value (or its start) must still be there; the tail may be cut.
            if clipped and len(rest) > 1 and (shown.startswith(rest[:-1]) or rest.startswith(shown)):
                return True, value
        return False, None


def _values(sent: Any) -> list:
    if isinstance(sent, list):
        return [v for v in sent if isinstance(v, str)]
    return [sent] if isinstance(sent, str) else []


@dataclass(frozen=True)
class Rule:
    name: str
    operations: tuple[str, ...]
    fields: tuple[str, ...]  # the request fields the rule judges
    messages: tuple[Message, ...]
    witness: str  # the key of WITNESSES: how the suite sees the breach without the message
    state: bool  # True: about what the target stores (an example may break it: its ids exist nowhere)
    reason: str  # why m3ter answers 400 too


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    rule: Rule | None
    why: str


LIST_OPERATIONS = ("ListCompoundAggregations", "ListDestinations", "listSchedules", "listJobStatuses",
                   "ListEvents", "ListNotifications", "ListWebhookIntegrations", "GetIntegrationConfigs",
                   "GetIntegrationConfigForType")
_KINDS = "(?:HOUR|DAY|MINUTE)"

RULES: tuple[Rule, ...] = (
    Rule("unknown export destination", ("CreateSchedule", "UpdateSchedule", "TriggerDataExport"),
         ("destinationIds",),
         (Message(r"destinationIds: no export destination with id ", quotes="destinationIds"),),
         "unknown_export_destination", True,
         "each id must name an existing export destination (m3ter rejects unknown destinations)"),
    Rule("unknown webhook destination", ("PostIntegrationConfig", "UpdateIntegrationConfig"), ("destinationId",),
         (Message(r"destinationId: no webhook destination with id ", quotes="destinationId"),),
         "unknown_webhook", True,
         "for destination Webhook, destinationId must name an existing webhook destination"),
    Rule("unknown notification", ("PostIntegrationConfig", "UpdateIntegrationConfig"), ("entityId",),
         (Message(r"entityId: no notification with id ", quotes="entityId"),),
         "unknown_notification", True,
         "for entityType Notification, entityId must name an existing notification"),
    Rule("cursor not issued by this list", LIST_OPERATIONS, ("nextToken",),
         (Message(r"nextToken: not a token issued by this list \(it was altered, or comes from another "
                  r"organization, collection or set of filters\)"),),
         "foreign_cursor", True,
         "an opaque cursor; only the value the previous page returned is valid "
         "(m3ter: 'nextToken for multi-page retrievals', issued by the server)"),
    Rule("ids with other event filters", ("ListEvents",), ("ids",),
         (Message(r"ids: cannot be combined with other filters \(also given: [A-Za-z]+(?:, [A-Za-z]+)*\)"),),
         "ids_with_filters", False,
         "ids cannot be combined with any other filter (m3ter SDK: 'ids cannot be combined with other filters')"),
    Rule("schedule frequency", ("CreateSchedule", "UpdateSchedule"), ("scheduleType", "period", "offset"),
         (Message(r"scheduleType is required when period or offset is given; it must be one of HOUR, DAY, MINUTE"),
          Message(rf"period is required for scheduleType {_KINDS}"),
          Message(r"offset is not valid for MINUTE; omit offset"),
          Message(r"period must be between 15 and 60 for scheduleType MINUTE: executions cannot be more "
                  r"frequent than every 15 minutes"),
          Message(r"period must be between 15 and 60 for scheduleType MINUTE; use scheduleType HOUR for "
                  r"longer intervals"),
          Message(r"period \d+ is not valid for scheduleType MINUTE: it must divide 60 \(15, 20, 30 or 60\) "
                  r"so that runs stay evenly spaced"),
          Message(r"offset must be between 0 and 59 for scheduleType HOUR \(minutes past the hour\)"),
          Message(r"period must be between 1 and 23, or 24, 48 or 72, for scheduleType HOUR: longer periods "
                  r"must be whole days and not less frequent than every 3 days"),
          Message(r"offset must be between 0 and 23 for scheduleType DAY \(hour of the day\)"),
          Message(r"period must be between 1 and 3 for scheduleType DAY: executions cannot be less frequent "
                  r"than every 3 days")),
         "schedule_frequency", False,
         "scheduleType with period and offset must give a frequency between every 15 minutes and every "
         "3 days, DAY offset an hour 0-23, HOUR offset a minute 0-59, none for MINUTE (m3ter SDK field "
         "docs: 'runs no more often than every 15 minutes')"),
    Rule("unknown event type", ("CreateNotification", "UpdateNotification", "EvaluateCalculation",
                                "ListEventFields"), ("eventName",),
         (Message(r"eventName: ", quotes="eventName", tail=r" is not an event type \(see GET /events/types\)"),
          Message(r"eventName ", quotes="eventName", style="plain", tail=" is not a known event type")),
         "unknown_event_type", False,
         "eventName must be one of the event types of GET /events/types (m3ter validates the event name)"),
    Rule("calculation", ("CreateNotification", "UpdateNotification"), ("eventName", "calculation"),
         (Message(r"calculation: syntax error at line \d+, column \d+: .+"),
          Message(r"calculation: unknown field '[^']+' at line \d+, column \d+(?: for event .+)?"),
          Message(r"calculation: must not be empty"),
          Message(r"calculation: nested more than \d+ operators deep")),
         "invalid_calculation", False,
         "the calculation must parse in m3ter's calculation language over the event's fields "
         "(GET /events/fields); m3ter checks it when the notification is saved"),
    Rule("no file to download", ("GenerateDataExportFileDownloadUrl",), ("jobId",),
         (Message(r"jobId: job ", quotes="jobId",
                  tail=r" ran more than 24 hours ago; download URLs are only given for recent jobs"),
          Message(r"jobId: job ", quotes="jobId", tail=r" is (?:PENDING|RUNNING|FAILED); it has no file to download"),
          Message(r"jobId: the files of export job ", quotes="jobId",
                  tail=r" are no longer kept: the mock keeps the files of the newest \d+ export jobs of an "
                       r"organization")),
         "job_not_downloadable", True,
         "only a job that succeeded in the last 24 hours has a file to download (m3ter SDK method doc)"),
)


# -- how the suite sees a breach without reading the message -----------------------------
@dataclass(frozen=True)
class Witness:
    what: str  # the condition, in words
    sees: Callable[[Request, Knowledge, Any], bool]  # (request, knowledge, the value the message quotes)


def _unknown_ids(create_operation: str, field: str, applies: Callable[[Request], bool] = lambda r: True):
    def sees(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
        if not applies(request):
            return False
        ids = [quoted] if quoted is not None else _values(request.get(field))
        return bool(ids) and any(not knowledge.holds(create_operation, entity_id) for entity_id in ids)

    return sees


def _names(field: str, value: str) -> Callable[[Request], bool]:
    return lambda request: str(request.get(field) or "").lower() == value


EVENT_FILTERS = ("accountId", "eventName", "eventType", "includeActioned", "notificationCode",
                 "notificationId", "resourceId")


def _ids_with_filters(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    # ``ids=`` with only empty items names no id; but a filter sent empty (``eventType=``)
    # is still a filter the client sent (m3ter's spec allows empty values on them).
    ids = request.get("ids")
    ids = [i for i in ids if i != ""] if isinstance(ids, list) else ids
    return (ids not in (None, "", [])
            and any(request.get(name) is not None and request.get(name) != [] for name in EVENT_FILTERS))


def schedule_breaks_frequency(request: Request) -> bool:
    """The frequency table of the README (and m3ter's SDK docs), independent of the mock's
    code: MINUTE every 15, 20, 30 or 60 minutes and no offset; HOUR every 1-23 hours or
    24/48/72, offset a minute 0-59; DAY every 1-3 days, offset an hour 0-23; no
    scheduleType: no period or offset either (an ad-hoc schedule)."""
    kind, period, offset = (request.get(name) for name in ("scheduleType", "period", "offset"))
    if kind is None:
        return period is not None or offset is not None
    if not isinstance(period, int) or (offset is not None and not isinstance(offset, int)):
        return True
    if kind == "MINUTE":
        return offset is not None or period not in (15, 20, 30, 60)
    if kind == "HOUR":
        return not (1 <= period <= 23 or period in (24, 48, 72)) or (offset is not None and not 0 <= offset <= 59)
    if kind == "DAY":
        return not 1 <= period <= 3 or (offset is not None and not 0 <= offset <= 23)
    return True


def _unknown_event_type(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    name, known = request.get("eventName"), knowledge.event_types()
    return isinstance(name, str) and known is not None and name not in known


def _invalid_calculation(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    text, event_name = request.get("calculation"), request.get("eventName")
    if not isinstance(text, str) or not isinstance(event_name, str):
        return False
    return knowledge.calculation_valid(text, event_name) is False


WITNESSES: dict[str, Witness] = {
    "unknown_export_destination": Witness(
        "the destination id is not one of the export destinations this run created and still holds",
        _unknown_ids("PostDestination", "destinationIds")),
    "unknown_webhook": Witness(
        "destination is Webhook and destinationId is not a webhook destination this run created and still holds",
        _unknown_ids("CreateWebhookDestination", "destinationId", _names("destination", "webhook"))),
    "unknown_notification": Witness(
        "entityType is Notification and entityId is not a notification this run created and still holds",
        _unknown_ids("CreateNotification", "entityId", _names("entityType", "notification"))),
    "foreign_cursor": Witness(
        "nextToken is not a value the target returned to this run",
        lambda request, knowledge, quoted: isinstance(request.get("nextToken"), str)
        and not knowledge.issued_cursor(request.get("nextToken"))),
    "ids_with_filters": Witness(
        "the request has ids and another event filter (" + ", ".join(EVENT_FILTERS) + ")", _ids_with_filters),
    "schedule_frequency": Witness(
        "scheduleType, period and offset are outside the documented table (schedule_breaks_frequency)",
        lambda request, knowledge, quoted: schedule_breaks_frequency(request)),
    "unknown_event_type": Witness(
        "eventName is not one of the target's own GET /events/types", _unknown_event_type),
    "invalid_calculation": Witness(
        "the target's own POST /notifications/evaluate, with the same calculation and eventName, answers "
        "success: false", _invalid_calculation),
    "job_not_downloadable": Witness(
        "the run never saw this job SUCCEEDED within the last 24 hours",
        lambda request, knowledge, quoted: not knowledge.seen_downloadable(str(request.get("jobId")))),
}


# -- the spec's own examples --------------------------------------------------------------
@lru_cache(maxsize=1)
def spec_examples() -> tuple[dict, ...]:
    """Every request example of the spec: request body examples (of the media type, and of
    the schema and every allOf/oneOf/anyOf branch), and each parameter's example."""
    from mockserver.validate import Spec

    spec = Spec(_spec())
    found: list[dict] = []

    def schema_examples(schema: Any, depth: int = 0) -> None:
        schema = spec.deref(schema)
        if not isinstance(schema, dict) or depth > 20:
            return
        if isinstance(schema.get("example"), dict):
            found.append(schema["example"])
        for keyword in ("allOf", "oneOf", "anyOf"):
            for branch in schema.get(keyword) or []:
                schema_examples(branch, depth + 1)

    for _, _, operation, item in spec.operations():
        body = spec.deref(operation.get("requestBody") or {})
        for media in (body.get("content") or {}).values():
            if isinstance(media.get("example"), dict):
                found.append(media["example"])
            for example in (media.get("examples") or {}).values():
                value = spec.deref(example).get("value")
                if isinstance(value, dict):
                    found.append(value)
            schema_examples(media.get("schema"))
        for parameter in spec.parameters(item, operation).values():
            if "example" in parameter:
                found.append({parameter["name"]: parameter["example"]})
    return tuple(found)


def is_spec_example(fields: tuple[str, ...], request: Request) -> bool:
    """The values the request sends for ``fields`` are those of one of the spec's examples."""
    sent = tuple(request.get(name) for name in fields)
    return any(tuple(example.get(name) for name in fields) == sent
               for example in spec_examples() if any(name in example for name in fields))


# -- the verdict --------------------------------------------------------------------------
def rules_for(operation_id: str | None) -> tuple[Rule, ...]:
    return tuple(rule for rule in RULES if operation_id in rule.operations)


def _judge(rule: Rule, request: Request, knowledge: Knowledge, quoted: Any) -> Verdict:
    if not rule.state and is_spec_example(rule.fields, request):
        shown = ", ".join(f"{name}={request.get(name)!r}" for name in rule.fields)
        return Verdict(False, rule, f"{shown} are the values of one of the spec's own examples, which are valid: "
                                    f"the {rule.name!r} rule cannot refuse them")
    witness = WITNESSES[rule.witness]
    if not witness.sees(request, knowledge, quoted):
        return Verdict(False, rule, f"a 400 for the {rule.name!r} rule, but the suite sees no breach: it is not "
                                    f"true that {witness.what}")
    return Verdict(True, rule, f"the {rule.name!r} rule: {witness.what}")


def judge_rejection(operation_id: str | None, message: str, request: Request, knowledge: Knowledge, *,
                    exact_messages: bool = True) -> Verdict:
    """Whether a 400 to a schema-valid request is the breach of a rule no schema can state.
    ``exact_messages``: the target is the mock, whose messages are known word for word."""
    rules = rules_for(operation_id)
    if not rules:
        return Verdict(False, None, f"{operation_id} has no rule a schema cannot state")
    if exact_messages:
        for rule in rules:
            for wording in rule.messages:
                matched, quoted = wording.match(message, request)
                if matched:
                    return _judge(rule, request, knowledge, quoted)
        return Verdict(False, None, f"the message is not the message of any rule of {operation_id} ("
                                    + ", ".join(repr(rule.name) for rule in rules) + ")")
    verdicts = [_judge(rule, request, knowledge, None) for rule in rules]
    return next((v for v in verdicts if v.accepted), Verdict(False, None, "; ".join(v.why for v in verdicts)))


# What `m3ter-mock contract --policy` prints: per operation, each rule and when its 400 is accepted.
SEMANTIC_RULES: dict[str, dict[str, str]] = {
    operation_id: {f"{rule.name} ({', '.join(rule.fields)})": f"{rule.reason}. Accepted when: {WITNESSES[rule.witness].what}"
                   + ("" if rule.state else "; never for the values of the spec's own examples")
                   for rule in rules_for(operation_id)}
    for operation_id in sorted({op for rule in RULES for op in rule.operations})
}


@lru_cache(maxsize=1)
def _spec() -> dict:
    from mockserver.validate import load

    return load(SPEC_PATH)


def operations() -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in _spec()["paths"].items()
            for method, op in item.items() if method in METHODS]


def not_implemented_operations() -> list[str]:
    """Operations the spec itself documents as 501 (served later)."""
    return [op["operationId"] for _, _, op in operations() if "501" in op.get("responses", {})]


def exemptions(*, read_only: bool = False, is_mock: bool = True) -> list[Exemption]:
    """Everything disabled or relaxed for a run, with the reason."""
    found = [
        Exemption(
            "check", "positive_data_acceptance (replaced by positive_data_acceptance_m3ter)",
            ", ".join(sorted(SEMANTIC_RULES)),
            "a 400 for a schema-valid request is accepted only as the breach of a rule no schema can state "
            "(RULES: referenced entities must exist, opaque cursors, ids alone on events, schedule "
            "frequencies, event types, the calculation language, downloadable jobs), when the suite sees the "
            "breach itself (the rule's witness) and, for a rule about the request alone, never for the values "
            "of the spec's own examples; m3ter answers these with 400 too. Any other 400 fails."
            + (" The message must also be the rule's own, word for word." if is_mock else
               " Against a real org the wording differs, so the message is not read: the 400 is accepted "
               "when some rule of the operation has its witness."),
        ),
    ]
    found.append(Exemption(
        "check", "Hypothesis's health checks (too_slow, filter_too_much, data_too_large, large_base_example)",
        "all", "they judge the speed and yield of data generation, not the API; on a shared 2-core CI machine "
               "their timing thresholds would fail runs at random"))
    found.append(Exemption(
        "phase", "stateful: schema-valid requests only, along the spec's own links only, one machine per "
                 "group of linked families", "stateful phase",
        "the phase exists to follow create -> retrieve -> update -> list -> delete chains; invalid requests "
        "(the fuzzing and coverage phases send thousands) and the links Schemathesis infers (mostly from "
        "empty list pages, so with random ids) broke the chains (over 60 scenarios, 11 calls reached an "
        "entity through a link with both, 118 without), and one machine over all 43 operations missed a "
        "DELETE that does not delete in 2 of 5 runs of 200 scenarios (per group: found in 5 of 5 within 40)"))
    for operation_id in not_implemented_operations():
        found.append(Exemption(
            "status", "501 from not_a_server_error", operation_id,
            "the spec documents this operation as 501 Not Implemented by the mock (yet); m3ter serves it"))
    if read_only:
        found += [
            Exemption("operation", "every operation but GET", "all",
                      "read-only run against a real organization (set M3TER_CONTRACT_ALLOW_WRITES=1 to write)"),
            Exemption("phase", "stateful", "all",
                      "its scenarios start by creating entities, which a read-only run must not do"),
            Exemption("check", "coverage phase's unexpected methods other than OPTIONS", "all",
                      "a read-only run sends no write method, not even to a path that lacks it"),
        ]
    return found


def schemathesis_config(*, org_id: str, examples: int, seed: int, read_only: bool) -> dict:
    """The Schemathesis configuration of a run (the equivalent of a ``schemathesis.toml``)."""
    config: dict = {
        "seed": seed,
        "suppress-health-check": ["all"],
        # Every call goes to the one organization the run uses (and that the token may use).
        "parameters": {"path.orgId": org_id},
        "generation": {"max-examples": examples, "mode": "all", "database": "none"},
        "phases": {
            "examples": {"enabled": True, "fill-missing": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": not read_only, "generation": {"mode": "positive"},
                         "inference": {"algorithms": []}},
        },
        "checks": {"positive_data_acceptance": {"enabled": False}},
        "operations": [],
    }
    for operation_id in not_implemented_operations():
        config["operations"].append({
            "include-operation-id": operation_id,
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "501"]}},
        })
    if read_only:
        config["operations"].append({"include-method": ["POST", "PUT", "DELETE", "PATCH"], "enabled": False})
        config["phases"]["coverage"]["unexpected-methods"] = ["OPTIONS"]
    return config
