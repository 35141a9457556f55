"""The one place that says what the contract suite does not check, or checks differently,
and why. Everything else runs: every Schemathesis check, and the examples, coverage,
fuzzing and stateful phases, on every operation of ``openapi/m3ter.yaml``.

A failure the suite finds is fixed in the mock or in the spec. An entry here is the
exception, and each one gives its reason: the real m3ter behaviour that justifies it where
it is about the API, the measurement where it is about how the suite generates requests.
(``m3ter-mock contract --policy`` prints this list.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Protocol
from urllib.parse import unquote

from mockserver.resources import spec_path

SPEC_PATH = spec_path("m3ter.yaml")

METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Exemption:
    kind: str  # "check", "operation", "phase", "status"
    subject: str  # what is disabled or relaxed
    scope: str  # where it applies
    reason: str  # why, citing m3ter's behaviour


@lru_cache(maxsize=1)
def _spec() -> dict:
    from mockserver.validate import load

    return load(SPEC_PATH)


def operations() -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in _spec()["paths"].items()
            for method, op in item.items() if method in METHODS]


def parameters(path: str, method: str) -> dict[tuple[str, str], dict]:
    """(in, name) -> parameter of one operation: the path item's and the operation's own
    (which win), references resolved."""
    item = _spec()["paths"][path]
    shared = _spec().get("components", {}).get("parameters", {})
    found: dict[tuple[str, str], dict] = {}
    for parameter in list(item.get("parameters") or []) + list(item[method].get("parameters") or []):
        if "$ref" in parameter:
            parameter = shared.get(parameter["$ref"].rsplit("/", 1)[-1], {})
        if "name" in parameter:
            found[(parameter.get("in"), parameter["name"])] = parameter
    return found


def cursor_operations() -> tuple[str, ...]:
    """Every operation that takes a ``nextToken`` query parameter."""
    return tuple(op["operationId"] for path, method, op in operations()
                 if ("query", "nextToken") in parameters(path, method))


def path_parameter_operations() -> tuple[str, ...]:
    """Every operation with a path parameter other than the organization."""
    return tuple(op["operationId"] for path, method, op in operations()
                 if any(where == "path" and name != "orgId" for where, name in parameters(path, method)))


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

    def issued_cursor(self, token: str, list_key: tuple | None = None) -> bool:
        """The target returned this ``nextToken`` to one of the run's list requests (to a
        request of the list ``list_key`` names, when given)."""

    def event_types(self) -> frozenset[str] | None:
        """The target's own ``GET /events/types`` (None: it could not be read)."""

    def calculation_valid(self, calculation: str, event_name: str) -> bool | None:
        """The target's own ``POST /notifications/evaluate`` verdict (None: no verdict)."""

    def seen_downloadable(self, job_id: str) -> bool:
        """The run saw this export job SUCCEEDED, created less than 24 hours ago."""

    def singleton_version(self, operation_id: str) -> int | None:
        """The ``version`` the target's own GET of the singleton this operation replaces
        shows (None: it shows none, the singleton was never stored)."""

    def holds_code(self, list_path: str, code: str) -> bool | None:
        """The target's own list (``/meters``) filtered by ``codes`` shows an entity with this
        code (None: the list could not be read)."""

    def stored_meter(self, code: str) -> dict | None:
        """The Meter with this code as the target's own ``GET /meters`` shows it (None: it
        shows none, or the list could not be read)."""


@dataclass(frozen=True)
class Request:
    """The parts of a request a rule reads: JSON body, query and path parameters."""

    body: Any = None
    query: dict | None = None
    path: dict | None = None
    operation: str | None = None

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


def list_key(request: Request) -> tuple:
    """The list a cursor belongs to, as the mock binds it: the operation, its path parameters
    and its filters (the query less ``pageSize`` and ``nextToken``)."""
    query = {k: v for k, v in (request.query or {}).items() if k not in ("pageSize", "nextToken")}
    return (request.operation, json.dumps(request.path or {}, sort_keys=True, default=str),
            json.dumps(query, sort_keys=True, default=str))


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


_KINDS = "(?:HOUR|DAY|MINUTE)"

# Written out: rules of the hand-written resources and of the action modules, each with its
# own wording. The rules the mock declares for every resource of the generic engine (its
# references, its "exactly one of" groups, its singletons) are derived below instead
# (``derived_rules``); RULES holds both.
EXPLICIT_RULES: tuple[Rule, ...] = (
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
    Rule("cursor not issued by this list", cursor_operations(), ("nextToken",),
         (Message(r"nextToken: not a token issued by this list \(it was altered, or comes from another "
                  r"organization, collection or set of filters\)"),
          Message(r"nextToken: a preview answers in one page; no token was issued for it")),
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


def _unknown_ids(creates: str | tuple[str, ...], field: str, applies: Callable[[Request], bool] = lambda r: True):
    """An id the request sends in ``field`` (the one the message quotes, if any) is not one
    the run created with one of the ``creates`` operations and still holds (no create
    operation: the run can hold none, so every id names nothing it knows)."""
    creates = (creates,) if isinstance(creates, str) else creates

    def sees(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
        if not applies(request):
            return False
        ids = [quoted] if quoted is not None else _values(request.get(field))
        return bool(ids) and any(not any(knowledge.holds(create, entity_id) for create in creates)
                                 for entity_id in ids)

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
        "nextToken is not a value the target returned to this run for this list (operation, path and filters)",
        lambda request, knowledge, quoted: isinstance(request.get("nextToken"), str)
        and not knowledge.issued_cursor(request.get("nextToken"), list_key(request))),
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


# -- rules derived from the mock's own declarations ----------------------------------------
# The generic engine serves every resource from the spec and a one-line declaration
# (``mockserver/backend/resources/catalog.py``): which fields name another resource, which
# fields come in "exactly one of" groups, which resources are singletons. Each of those
# is a rule no schema states, so each gives a Rule here, written with the engine's own
# message (``mockserver/backend/crud.py``, ``catalog._checked_prepare``) and the label
# the engine shows, rather than typed out once per resource. A resource added to the
# catalog gets its rules with it; one removed loses them.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@lru_cache(maxsize=1)
def mock_resources() -> tuple[dict, dict]:
    """(resource key -> its service, resource key -> its Shape) as the mock builds them
    from the spec (a Backend holds no thread and serves nothing: this only reads it)."""
    from mockserver.backend.core import Backend

    backend = Backend(spec=_spec())
    return dict(backend.resources), dict(backend.shapes)


def collection_path(key: str) -> str:
    return "/organizations/{orgId}/" + key


def create_operations(key: str) -> tuple[str, ...]:
    """The operations that create an entity of a resource: the POST on its collection path
    (none for a resource only the billing engine fills, such as bills)."""
    return tuple(op["operationId"] for path, method, op in operations()
                 if method == "post" and path == collection_path(key))


def write_operations(key: str) -> tuple[str, ...]:
    """The operations whose body the engine turns into an entity of the resource (and the
    actions that run its create: ``ACTION_WRITES``)."""
    shape = mock_resources()[1].get(key)
    if shape is None:
        return ()
    return tuple(shape.operations[action].operation_id for action in ("create", "update", "replace")
                 if action in shape.operations) + tuple(op for op, target in ACTION_WRITES.items() if target == key)


def _exactly_one(group: tuple[str, ...]) -> Callable[[Request, Knowledge, Any], bool]:
    def sees(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
        body = request.body if isinstance(request.body, dict) else {}
        return sum(1 for name in group if body.get(name) is not None) != 1

    return sees


def _control_character_in_path(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    # A generated value may already be percent-encoded (the coverage phase sends some as is).
    return any(isinstance(value, str) and CONTROL_CHARACTERS.search(value + unquote(value)) is not None
               for value in (request.path or {}).values())


WITNESSES["control_character_in_path"] = Witness(
    "a path parameter holds a control character (U+0000-U+001F or U+007F)", _control_character_in_path)

# Rules of the HTTP layer and of the action modules (``mockserver/api/actions``,
# ``mockserver/backend/actions``), which a schema cannot state either.
EXPLICIT_RULES += (
    Rule("control character in the path", path_parameter_operations(),
         tuple(sorted({name for path, method, _ in operations() for where, name in parameters(path, method)
                       if where == "path" and name != "orgId"})),
         (Message(r"path: control characters are not allowed"),),
         "control_character_in_path", False,
         "a URL path cannot name an entity with a control character: no m3ter id, code or name holds one, and "
         "routers refuse such a path (the mock's router cannot match it)"),
)


# -- rules of the action modules -------------------------------------------------------------
# Operations the action modules serve by running a resource's own create (a preview, a
# replacement): the resource's derived rules (references, "exactly one of") apply to them too.
ACTION_WRITES = {
    "ReplaceAccountPlan": "accountplans",
    "PreviewScheduledCharge": "balances/{balanceId}/balancechargeschedules",
    "PreviewBalanceTransactionSchedule": "balances/{balanceId}/balancetransactionschedules",
}
# m3ter's searchable names per searched entity (m3ter SDK: the search methods' docstrings),
# written out again here so that the witness does not read the mock's own table.
SEARCHABLE = {
    "SearchAccounts": ("name", "code", "currency", "purchaseOrderNumber", "parentAccountId", "codes", "id",
                       "createdBy", "dtCreated", "lastModifiedBy", "ids"),
    "SearchCommitments": ("startDate", "endDate", "contractId", "accountId", "productId", "productIds", "id",
                          "createdBy", "dtCreated", "lastModifiedBy", "ids"),
    "SearchBills": ("accountId", "locked", "billDate", "startDate", "endDate", "dueDate", "billingFrequency", "id",
                    "createdBy", "dtCreated", "lastModifiedBy", "ids"),
}
_SEARCH_TERM = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(>=|<=|>|<|:|~)(.*)", re.DOTALL)
_QUOTED = r"(?:'.*'|\".*\")"  # a value as Python's repr shows it
# (start, end) fields of a period whose end is exclusive, as the action modules read them.
PERIODS = (("startDate", "endDate"), ("externalInvoiceDateStart", "externalInvoiceDateEnd"),
           ("servicePeriodStartDate", "servicePeriodEndDate"))
DOWNLOAD_DAYS = 31  # a bills CSV covers at most 31 days per range (m3ter SDK: download_url)


def _instant(value: Any) -> datetime | None:
    """A date (midnight UTC) or an ISO-8601 date-time (UTC without an offset)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _periods(request: Request) -> list[tuple[datetime | None, datetime | None, bool, bool]]:
    body = request.body if isinstance(request.body, dict) else {}
    return [(_instant(body.get(start)), _instant(body.get(end)), body.get(start) is not None,
             body.get(end) is not None) for start, end in PERIODS]


def _end_not_after_start(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    return any(start is not None and end is not None and end <= start for start, end, _, _ in _periods(request))


def _download_range(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    ranges = _periods(request)[:2]
    if not any(has_start or has_end for _, _, has_start, has_end in ranges):
        return True  # neither range
    return any(has_start != has_end or (start is not None and end is not None
                                        and end - start > timedelta(days=DOWNLOAD_DAYS))
               for start, end, has_start, has_end in ranges)


def _search_query_breaks(operation_id: str) -> Callable[[Request, Knowledge, Any], bool]:
    def sees(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
        query = request.get("searchQuery")
        for part in (query.split("$") if isinstance(query, str) else ()):
            if not part.strip():
                continue
            term = _SEARCH_TERM.fullmatch(part)
            if term is None or not term.group(3).strip() or term.group(1) not in SEARCHABLE[operation_id]:
                return True
        return False

    return sees


def _not_a_sort_field(operation_id: str) -> Callable[[Request, Knowledge, Any], bool]:
    def sees(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
        sort_by = request.get("sortBy")
        if not isinstance(sort_by, str):
            return False
        fields = listed_fields(operation_id)
        return sort_by not in fields or fields[sort_by] in ("array", "object")

    return sees


def listed_fields(operation_id: str) -> dict[str, str | None]:
    """field -> its JSON type, of the items the operation's 200 answer lists in ``data``."""
    from mockserver.backend.shapes import Schemas

    schemas = Schemas(_spec())
    op = next(op for _, _, op in operations() if op.get("operationId") == operation_id)
    answer = schemas.deref(op["responses"]["200"]).get("content", {}).get("application/json", {}).get("schema")
    properties, _ = schemas.flatten(answer)
    items, _ = schemas.flatten(schemas.deref(properties.get("data", {})).get("items"))
    return {name: schemas.type_of(prop) for name, prop in items.items()}


def _several_statement_job_filters(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    return sum(1 for name in ("active", "status", "billId") if (request.query or {}).get(name) is not None) > 1


def _expired(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    expiry = _instant(request.get("dtExpiry"))
    return expiry is not None and expiry <= datetime.now(timezone.utc)


def _charge_amount_breaks(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    body = request.body if isinstance(request.body, dict) else {}
    units, price, amount = (body.get(name) for name in ("units", "unitPrice", "amount"))
    if units is not None or price is not None:
        return amount is not None or units is None or price is None
    return amount is None


for _operation in SEARCHABLE:
    WITNESSES[f"search_query:{_operation}"] = Witness(
        "a non-blank term of searchQuery (terms are joined by $) is not <field><comparator><value> with a "
        "value, or names a field outside m3ter's searchable list for the entity (policy.SEARCHABLE)",
        _search_query_breaks(_operation))
    WITNESSES[f"sort_field:{_operation}"] = Witness(
        "sortBy is not a field of the listed items (their schema in the spec), or a list or object field",
        _not_a_sort_field(_operation))
WITNESSES.update({
    "end_not_after_start": Witness(
        "a period's end (endDate, externalInvoiceDateEnd, servicePeriodEndDate) is not after its start",
        _end_not_after_start),
    "download_range": Witness(
        f"neither period is given, only one end of one is, or one spans more than {DOWNLOAD_DAYS} days",
        _download_range),
    "several_statement_job_filters": Witness(
        "more than one of active, status and billId is given", _several_statement_job_filters),
    "expired": Witness("dtExpiry is not after now (the suite's clock, read when the answer came)", _expired),
    "charge_amount": Witness(
        "the body gives amount with units or unitPrice, only one of units and unitPrice, or none of the three",
        _charge_amount_breaks),
})


def _search_rules() -> tuple[Rule, ...]:
    found = []
    for operation_id in SEARCHABLE:
        label = r"[A-Z][A-Za-z]*"
        found.append(Rule(
            "search query", (operation_id,), ("searchQuery",),
            (Message(rf"searchQuery: {_QUOTED} is not a term <field><comparator><value> \(comparators: "
                     r">= <= > < : ~; terms are joined by '\$'\)"),
             Message(rf"searchQuery: the term {_QUOTED} has no value"),
             Message(rf"searchQuery: {_QUOTED} is not a searchable field of {label} \(searchable: "
                     r"[A-Za-z]+(?:, [A-Za-z]+)*\)")),
            f"search_query:{operation_id}", False,
            "searchQuery is m3ter's search language: terms <field><comparator><value> joined by $, on the "
            "entity's searchable fields (m3ter SDK: the search methods' docs)"))
        found.append(Rule(
            "sort field", (operation_id,), ("sortBy",),
            (Message(r"sortBy: ", quotes="sortBy", tail=rf" is not a field of {label}"),
             Message(rf"sortBy: {label} cannot be sorted on ", quotes="sortBy", tail=r" \(not a single value\)")),
            f"sort_field:{operation_id}", False,
            "sortBy names a field of the entity to sort on (m3ter SDK: 'any field available on the entity')"))
    return tuple(found)


EXPLICIT_RULES += _search_rules() + (
    Rule("period end after its start", ("DownloadBillsCsvUrl", "PostQueryBillData", "PreviewScheduledCharge",
                                        "PreviewBalanceTransactionSchedule", "PostUsageDataQuery",
                                        "TriggerDataExport"),
         tuple(name for pair in PERIODS for name in pair),
         (Message(r"(?:endDate|externalInvoiceDateEnd): must be later than (?:startDate|externalInvoiceDateStart)"),
          Message(r"(?:endDate|servicePeriodEndDate): must be after (?:startDate|servicePeriodStartDate) "
                  r"\(the end is exclusive\)")),
         "end_not_after_start", False,
         "a period runs from its start to its exclusive end, which must come later (m3ter: start 'inclusive', "
         "end 'exclusive')"),
    Rule("bills CSV range", ("DownloadBillsCsvUrl",),
         ("startDate", "endDate", "externalInvoiceDateStart", "externalInvoiceDateEnd"),
         (Message(r"(?:startDate|endDate|externalInvoiceDateStart|externalInvoiceDateEnd): required with "
                  r"(?:startDate|endDate|externalInvoiceDateStart|externalInvoiceDateEnd)"),
          Message(r"startDate: required \(with endDate\), unless externalInvoiceDateStart and "
                  r"externalInvoiceDateEnd are given"),
          Message(rf"(?:endDate|externalInvoiceDateEnd): a download covers at most {DOWNLOAD_DAYS} days")),
         "download_range", False,
         "a bills CSV is for a billDate range, an external invoice date range or both, each given whole and "
         f"at most {DOWNLOAD_DAYS} days long (m3ter SDK: bills download_url)"),
    Rule("unknown Bill in billIds", ("ApproveBills", "CreateStatementJobBatch", "RecalculateBillJob"), ("billIds",),
         (Message(r"billIds: no Bill with id ", quotes="billIds"),),
         "unknown:bills:billIds", True,
         "each id must name a bill of the organization (all or none are approved or get a statement)"),
    Rule("one statement job filter", ("ListStatementJobs",), ("active", "status", "billId"),
         (Message(r"(?:status|billId): use only one of active, status and billId \(given: "
                  r"(?:active|status|billId)(?:, (?:active|status|billId))+\)"),),
         "several_statement_job_filters", False,
         "active, status and billId cannot be combined (m3ter SDK: statement_jobs.list)"),
    Rule("invitation expiry", ("CreateOrgUserInvitation",), ("dtExpiry",),
         (Message(r"dtExpiry: must be a date-time after now \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\)"),),
         "expired", True,
         "an invitation that expires before it is sent could never be accepted (m3ter: dtExpiry, 'the "
         "date when the invite expires')"),
    Rule("charge amount", ("PreviewScheduledCharge",), ("amount", "units", "unitPrice"),
         (Message(r"amount: leave it out when units and unitPrice are given"),
          Message(r"units: required with unitPrice"), Message(r"unitPrice: required with units"),
          Message(r"amount: required \(or units and unitPrice\)")),
         "charge_amount", False,
         "a charge is an amount, or units at a unit price, never both (m3ter SDK: balance charge schedules)"),
)
WITNESSES.setdefault("unknown:bills:billIds", Witness(
    "an id in billIds is not a Bill this run holds (the API has no create operation for bills)",
    _unknown_ids((), "billIds")))


# Rules of the action modules that only a request naming an entity the run created reaches (the
# suite's own generated ids are a 404 first; a plain Schemathesis run reuses the ids its creates
# returned, contracts/hooks.py): what the action then names in its body must exist too.
def _group_target_unknown(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    body = request.body if isinstance(request.body, dict) else {}
    target, kind = body.get("targetId"), body.get("targetType")
    if not isinstance(target, str):
        return False
    if kind == "GROUP":
        return not knowledge.holds("PostResourceGroup", target)
    if kind == "ITEM":  # an entity of the resource the group's type names (meter: the meters)
        creates = create_operations(f"{str((request.path or {}).get('type') or '').lower()}s")
        return not any(knowledge.holds(create, target) for create in creates)
    return False


def _same_ids(body_field: str, path_parameter: str, **also: str) -> Callable[[Request, Knowledge, Any], bool]:
    """The body's ``body_field`` is the id in the path's ``path_parameter`` (and the body has ``also``)."""
    def sees(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
        body = request.body if isinstance(request.body, dict) else {}
        return (isinstance(body.get(body_field), str) and body[body_field] == (request.path or {}).get(path_parameter)
                and all(body.get(name) == value for name, value in also.items()))

    return sees


WITNESSES.update({
    "unknown:users:principalId": Witness(
        "principalId is not an OrgUser this run holds (no API call creates one: users come from accepted "
        "invitations)", _unknown_ids((), "principalId")),
    "unknown:resourcegroups:principalId": Witness(
        "principalId is not a ResourceGroup this run created (PostResourceGroup) and still holds",
        _unknown_ids("PostResourceGroup", "principalId")),
    "group_target_unknown": Witness(
        "targetType GROUP and targetId is not a ResourceGroup this run created and still holds, or targetType "
        "ITEM and targetId is not an entity this run created of the resource the group's type names",
        _group_target_unknown),
    "group_holds_itself": Witness("targetType GROUP and targetId is the group itself (resourceGroupId)",
                                  _same_ids("targetId", "resourceGroupId", targetType="GROUP")),
    "unknown:lookuprevisions:revisionId": Witness(
        "revisionId is not a Lookup Table revision this run created (CreateLookupTableRevision) and still holds",
        _unknown_ids("CreateLookupTableRevision", "revisionId")),
    "copy_onto_itself": Witness("revisionId is the source revision itself (lookupTableRevisionId)",
                                _same_ids("revisionId", "lookupTableRevisionId")),
})
EXPLICIT_RULES += (
    Rule("unknown OrgUser in principalId", ("AddPermissionPolicyToUser",), ("principalId",),
         (Message(r"principalId: no OrgUser with id ", quotes="principalId"),),
         "unknown:users:principalId", True, "principalId must name a user of the organization (the spec, in prose)"),
    Rule("unknown user ResourceGroup in principalId", ("AddPermissionPolicyToUserGroup",), ("principalId",),
         (Message(r"principalId: no user ResourceGroup with id ", quotes="principalId"),),
         "unknown:resourcegroups:principalId", True,
         "principalId must name a user resource group of the organization (the spec, in prose)"),
    Rule("unknown resource group target", ("AddResourceToGroup",), ("targetId", "targetType"),
         (Message(r"targetId: no .+ ResourceGroup with id ", quotes="targetId"),
          Message(r"targetId: no [A-Z][A-Za-z ]* with id ", quotes="targetId")),
         "group_target_unknown", True,
         "an ITEM must be a stored entity of the type the group holds, a GROUP a stored group of the same type "
         "(the spec, in prose)"),
    Rule("resource group holding itself", ("AddResourceToGroup",), ("targetId", "targetType"),
         (Message(rf"targetId: ResourceGroup {_QUOTED} holds {_QUOTED} \(or is it\); nesting it would make a cycle"),),
         "group_holds_itself", False, "a group cannot be nested in itself (the spec: 'whose addition makes no cycle')"),
    Rule("unknown revision to copy onto", ("CopyLookupTableRevisionData",), ("revisionId",),
         (Message(r"revisionId: no LookupTableRevision with id ", quotes="revisionId",
                  tail=rf" in Lookup Table {_QUOTED}"),),
         "unknown:lookuprevisions:revisionId", True,
         "revisionId must name a revision of the same Lookup Table (the spec, in prose)"),
    Rule("revision copied onto itself", ("CopyLookupTableRevisionData",), ("revisionId",),
         (Message(r"revisionId: names the source revision itself"),),
         "copy_onto_itself", False, "a revision's data cannot be copied onto itself"),
)
# -- usage in, bills out (issue 11): ingest, the usage query, usage exports, bill runs --------

def _measurements(request: Request) -> list[dict]:
    sent = request.get("measurements")
    return [m for m in sent if isinstance(m, dict)] if isinstance(sent, list) else []


def _unknown_meter_code(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    codes = {m.get("meter") for m in _measurements(request) if isinstance(m.get("meter"), str)}
    return any(knowledge.holds_code("/meters", code) is False for code in codes)


def _ets_before_ts(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    for measurement in _measurements(request):
        ts, ets = _instant(measurement.get("ts")), _instant(measurement.get("ets"))
        if ts is not None and ets is not None and ets < ts:
            return True
    return False


def _groups_without_aggregations(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    return bool(request.get("groups")) and not request.get("aggregations")


def _usage_period_missing(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    return request.get("startDate") is None or request.get("endDate") is None


def _interval_out_of_range(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    interval = request.get("billFrequencyInterval")
    return isinstance(interval, int) and not 1 <= interval <= 365


def _not_a_date_time_query(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    return any(isinstance(request.get(name), str) and _instant(request.get(name)) is None
               for name in ("dateCreatedStart", "dateCreatedEnd"))


def _bill_run_dates_out_of_range(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    for name in ("lastDateInBillingPeriod", "billDate", "dueDate", "externalInvoiceDate",
                 "yearEpoch", "monthEpoch", "weekEpoch", "dayEpoch"):
        value = request.get(name)
        if isinstance(value, str) and value[:4].isdigit() and not 1000 <= int(value[:4]) <= 8999:
            return True
    return False


MEASUREMENT_KEYS = frozenset({"uid", "meter", "account", "ts", "ets", "who", "where", "what", "other", "metadata",
                              "measure", "cost", "income"})
DIMENSION_FUNCTIONS = frozenset({"COUNT", "UNIQUE"})  # a text field can only be counted


def _undocumented_measurement_key(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    return any(set(m) - MEASUREMENT_KEYS for m in _measurements(request))


def _function_for_field_type(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    return any((a.get("fieldType") == "DIMENSION" and a.get("function") not in DIMENSION_FUNCTIONS)
               or (a.get("fieldType") == "MEASURE" and a.get("function") == "UNIQUE")
               for a in _items(request, "aggregations"))


def _items(request: Request, name: str) -> list[dict]:
    sent = request.get(name)
    return [item for item in sent if isinstance(item, dict)] if isinstance(sent, list) else []


def _unknown_query_meter(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    ids = _values(request.get("meterIds")) + [item["meterId"] for name in ("dimensionFilters", "aggregations", "groups")
                                              for item in _items(request, name) if isinstance(item.get("meterId"), str)]
    return any(not knowledge.holds("PostMeter", meter_id) for meter_id in ids)


def _bad_query_group(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    groups = _items(request, "groups")
    times = {g.get("frequency") for g in groups if g.get("groupType") == "TIME"}
    return (any(g.get("groupType") is None for g in groups) or None in times or len(times) > 1
            or any(g.get("groupType") == "DIMENSION" and not (g.get("meterId") and g.get("fieldCode")) for g in groups))


def _preview_shape(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    return (len(_values(request.get("accountIds"))) != 1 or request.get("billingFrequency") is None
            or request.get("billFrequencyInterval") is None)


# A measurement's data sits under the key of its category (m3ter: MeasurementRequest), and
# each name must be a data field of that category of the measurement's Meter.
MEASUREMENT_CATEGORIES = {"who": "WHO", "where": "WHERE", "what": "WHAT", "other": "OTHER", "metadata": "METADATA",
                          "measure": "MEASURE", "cost": "COST", "income": "INCOME"}


def _field_not_of_meter(request: Request, knowledge: Knowledge, quoted: Any) -> bool:
    for measurement in _measurements(request):
        code = measurement.get("meter")
        sent = [(category, name) for key, category in MEASUREMENT_CATEGORIES.items()
                if isinstance(measurement.get(key), dict) for name in measurement[key]]
        if not isinstance(code, str) or not sent:
            continue
        meter = knowledge.stored_meter(code)
        if meter is None:
            continue
        fields = {(field.get("category"), field.get("code")) for field in meter.get("dataFields") or ()
                  if isinstance(field, dict)}
        if any(pair not in fields for pair in sent):
            return True
    return False


WITNESSES.update({
    "field_not_of_meter": Witness(
        "a measurement sends a name under a category (measure.requests) that is not a data field of that "
        "category of its Meter, as the target's own GET /meters shows the Meter", _field_not_of_meter),
    "undocumented_measurement_key": Witness(
        "a measurement has a key other than the documented uid, meter, account, ts, ets and categories",
        _undocumented_measurement_key),
    "function_for_field_type": Witness("an aggregation applies a number function to a DIMENSION field, or "
                                       "UNIQUE to a MEASURE field", _function_for_field_type),
    "unknown_query_meter": Witness("a meter id of the query is not a Meter this run created (PostMeter) and still "
                                   "holds", _unknown_query_meter),
    "bad_query_group": Witness("a group has no type, a TIME group no frequency or another frequency than the "
                               "others, or a DIMENSION group lacks meterId or fieldCode", _bad_query_group),
    "preview_shape": Witness("accountIds does not hold exactly one id, or billingFrequency or "
                             "billFrequencyInterval is missing", _preview_shape),
    "unknown_meter_code": Witness(
        "a measurement's meter is a code the target's own GET /meters?codes= does not show", _unknown_meter_code),
    "ets_before_ts": Witness("a measurement's ets is earlier than its ts", _ets_before_ts),
    "groups_without_aggregations": Witness("groups are given and aggregations are not",
                                           _groups_without_aggregations),
    "usage_period_missing": Witness("startDate or endDate is not given", _usage_period_missing),
    "interval_out_of_range": Witness("billFrequencyInterval is below 1 or above 365", _interval_out_of_range),
    "not_a_date_time_query": Witness("dateCreatedStart or dateCreatedEnd is not an ISO-8601 date-time",
                                     _not_a_date_time_query),
    "bill_run_dates_out_of_range": Witness("a date of the bill run is before year 1000 or after 8999",
                                           _bill_run_dates_out_of_range),
})
WITNESSES.setdefault("unknown:accounts:accountIds", Witness(
    "an id in accountIds is not an Account this run created (PostAccount) and still holds",
    _unknown_ids("PostAccount", "accountIds")))
_NOTHING_STORED = r"; nothing of this batch was stored \(\d+ of \d+ measurements failed: see the ingest\.validation\.failure Events\)"

EXPLICIT_RULES += (
    Rule("measurement of an unknown meter", ("SubmitMeasurements",), ("measurements",),
         (Message(r"measurements\[\d+\]\.meter: no Meter with code '.*'" + _NOTHING_STORED),),
         "unknown_meter_code", True,
         "a measurement names its meter by code, and m3ter ingests only for a meter the organization holds"),
    Rule("measurement ends before it starts", ("SubmitMeasurements",), ("measurements",),
         (Message(r"measurements\[\d+\]\.ets: .+ is earlier than ts \(.+\)" + _NOTHING_STORED),),
         "ets_before_ts", False,
         "ets is the end of the measured interval, ts its start (m3ter: 'ets ... end timestamp')"),
    Rule("undocumented measurement field", ("SubmitMeasurements",), ("measurements",),
         (Message(r"measurements\[\d+\](?:\..*)?: not a field of a measurement \(it has uid, meter, account, ts, ets and "
                  r"the categories who, where, what, other, metadata, measure, cost, income\)" + _NOTHING_STORED),),
         "undocumented_measurement_key", False,
         "a measurement holds the documented keys and its data in the categories (m3ter: MeasurementRequest); "
         "the published schema does not close the object, the mock refuses a key it would drop"),
    Rule("measurement field not of its meter", ("SubmitMeasurements",), ("measurements",),
         tuple(Message(rf"measurements\[\d+\]\.(?:{'|'.join(MEASUREMENT_CATEGORIES)})\..*: {wording}" + _NOTHING_STORED)
               for wording in (rf"Meter {_QUOTED} has no [A-Z]+ field {_QUOTED} \(its [A-Z]+ fields: .*\)",
                               rf"{_QUOTED} is a derived field of Meter {_QUOTED}: its value is calculated, "
                               r"not submitted",
                               rf"{_QUOTED} is a [A-Z]+ field of Meter {_QUOTED}, not a [A-Z]+ field \(send it in "
                               r"[a-z]+\)")),
         "field_not_of_meter", True,
         "each value of a measurement names a data field of its Meter under that field's category; an unknown "
         "name, a name of another category or a derived field's is refused (the spec says so in prose; its "
         "schema lets the categories hold any name)"),
    Rule("aggregation function for the field type", ("PostUsageDataQuery", "TriggerDataExport"), ("aggregations",),
         (Message(r"aggregations\[\d+\]\.function: [A-Z]+ does not apply to a (?:DIMENSION|MEASURE) field "
                  r"\(use [A-Z]+(?:, [A-Z]+)*\)"),),
         "function_for_field_type", False,
         "a DIMENSION field holds text, which can be counted (COUNT, UNIQUE) but not summed or averaged"),
    Rule("usage period", ("PostUsageDataQuery",), ("startDate", "endDate"),
         (Message(r"(?:startDate|endDate): required, a date-time like 2026-01-01T00:00:00Z"),),
         "usage_period_missing", False,
         "a usage query covers a period: startDate inclusive and endDate exclusive (m3ter SDK: usage.query)"),
    Rule("unknown Account in accountIds", ("PostUsageDataQuery", "CreateBillJob", "PreviewBill"), ("accountIds",),
         (Message(r"accountIds(?:\[\d+\])?: no Account with id ", quotes="accountIds"),),
         "unknown:accounts:accountIds", True,
         "each id must name an account of the organization"),
    Rule("unknown Meter in a usage query", ("PostUsageDataQuery", "TriggerDataExport"),
         ("meterIds", "dimensionFilters", "aggregations", "groups"),
         (Message(r"(?:meterIds\[\d+\]|(?:dimensionFilters|aggregations|groups)\[\d+\]\.meterId): "
                  r"no Meter with id '.*'"),),
         "unknown_query_meter", True,
         "each meter id of a usage query (meterIds, and the meterId of its filters, aggregations and groups) "
         "must name a meter of the organization"),
    Rule("usage query groups", ("PostUsageDataQuery", "TriggerDataExport"), ("groups",),
         (Message(r"groups\[\d+\]\.frequency: required for a TIME group, one of .+"),
          Message(r"groups\[\d+\]: usage can be grouped by one time frequency only"),
          Message(r"groups\[\d+\]: a DIMENSION group needs meterId and fieldCode"),
          Message(r"groups\[\d+\]\.groupType: required, one of ACCOUNT, DIMENSION, TIME")),
         "bad_query_group", False,
         "a TIME group names one frequency (one per query), a DIMENSION group its meter and field, every "
         "group its type (m3ter SDK: usage.query groups)"),
    Rule("one account per preview", ("PreviewBill",), ("accountIds", "billingFrequency", "billFrequencyInterval"),
         (Message(r"accountIds: a preview is for exactly one account \(given \d+\)"),
          Message(r"(?:billingFrequency|billFrequencyInterval): required for a preview")),
         "preview_shape", False,
         "a preview prices one account's bill for one billing frequency and interval"),
    Rule("groups need aggregations", ("PostUsageDataQuery", "TriggerDataExport"), ("groups", "aggregations"),
         (Message(r"groups\[\d+\]: groups apply to aggregated usage; add aggregations"),),
         "groups_without_aggregations", False,
         "grouping applies to aggregated usage; raw measurements are not grouped (m3ter SDK: usage.query groups)"),
    Rule("bill frequency interval", ("CreateBillJob", "PreviewBill"), ("billFrequencyInterval",),
         (Message(r"billFrequencyInterval: -?\d+ is not between 1 and 365 \(the range of a plan template's\)"),),
         "interval_out_of_range", False,
         "a bill job's interval counts billing periods, within the range plan templates allow (1 to 365)"),
    Rule("bill run dates", ("CreateBillJob", "PreviewBill"),
         ("lastDateInBillingPeriod", "billDate", "dueDate", "externalInvoiceDate"),
         (Message(r"[A-Za-z]+: \S+ is outside the dates the mock bills .*"),),
         "bill_run_dates_out_of_range", False,
         "bill periods are computed by calendar arithmetic; dates before year 1000 or after 8999 have no "
         "periods to bill (the mock's documented bound)"),
    Rule("upload job date filter", ("ListJobs",), ("dateCreatedStart", "dateCreatedEnd"),
         (Message(r"(?:dateCreatedStart|dateCreatedEnd): .* is not an ISO-8601 date-time \(yyyy-MM-ddTHH:mm:ssZ\)"),),
         "not_a_date_time_query", False,
         "dateCreatedStart and dateCreatedEnd are ISO-8601 date-times (m3ter SDK: file_uploads.measurements_jobs)"),
)

del _operation


def derived_rules() -> tuple[Rule, ...]:
    services, shapes = mock_resources()
    found: list[Rule] = []
    for key, service in sorted(services.items()):
        kind = service.kind
        writes = write_operations(key)
        if not writes:
            continue
        for field_name, target in kind.references.items():
            target_service = services.get(target)
            if target_service is None:  # the engine checks only references to resources it serves
                continue
            label = target_service.kind.label
            witness = f"unknown:{target}:{field_name}"
            if witness not in WITNESSES:
                creates = create_operations(target)
                WITNESSES[witness] = Witness(
                    f"an id in {field_name} is not a {label} this run created "
                    f"({', '.join(creates) or 'the API has no create operation for it'}) and still holds",
                    _unknown_ids(creates, field_name))
            found.append(Rule(
                f"unknown {label} in {key}.{field_name}", writes, (field_name,),
                (Message(rf"{re.escape(field_name)}: no {re.escape(label)} with id ", quotes=field_name),),
                witness, True,
                f"{field_name} must name an existing {label} (declared reference of {key}; m3ter refuses a "
                f"reference to an entity the organization does not hold)"))
        from mockserver.backend.resources.catalog import RESOURCES

        for group in (RESOURCES.get(key).exclusive if RESOURCES.get(key) else ()):
            names = "|".join(re.escape(name) for name in group)
            witness = "exactly_one:" + ",".join(group)
            WITNESSES.setdefault(witness, Witness(
                f"the body does not give exactly one of {', '.join(group)}", _exactly_one(group)))
            found.append(Rule(
                f"exactly one of {', '.join(group)} in {key}", writes, group,
                (Message(rf"{re.escape(group[0])}: exactly one of {re.escape(', '.join(group))} is required"
                         rf"(?: \(given: (?:{names})(?:, (?:{names}))*\))?"),),
                witness, False,
                f"{' and '.join(group)} are exclusive and one is required (m3ter: 'either ... or', "
                f"'exclusive of'), which the published schema leaves to prose"))
        if kind.singleton and "replace" in shapes[key].operations:
            operation_id = shapes[key].operations["replace"].operation_id
            witness = f"version_required:{operation_id}"

            def stored(request: Request, knowledge: Knowledge, quoted: Any, operation_id: str = operation_id) -> bool:
                body = request.body if isinstance(request.body, dict) else {}
                return body.get("version") is None and knowledge.singleton_version(operation_id) is not None

            WITNESSES[witness] = Witness(
                f"the request sends no version while the target's own GET shows the {kind.label} stored", stored)
            found.append(Rule(
                f"version of a stored {kind.label}", (operation_id,), ("version",),
                (Message(rf"version: required on update \(the {re.escape(kind.label)} is at version \d+\)"),),
                witness, True,
                f"the first replace of the {kind.label} may leave version out (m3ter SDK: 'not valid for initial "
                f"insertion'); once stored, every update must send it ('required and must match'), and the "
                f"published schema cannot tell the two apart"))
    return tuple(found)


RULES: tuple[Rule, ...] = EXPLICIT_RULES + derived_rules()
_BY_OPERATION: dict[str, tuple[Rule, ...]] = {}
for _rule in RULES:
    for _operation in _rule.operations:
        _BY_OPERATION[_operation] = _BY_OPERATION.get(_operation, ()) + (_rule,)
del _rule, _operation


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
    return _BY_OPERATION.get(operation_id or "", ())


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


def not_implemented_operations() -> list[str]:
    """Operations the spec itself documents as 501 (served later) and whose ``x-mock``
    says ``unimplemented``, with no handler written for them: an operation a handler
    serves may not answer 501, whatever its description still says."""
    return [op["operationId"] for _, _, op in operations()
            if "501" in op.get("responses", {}) and (op.get("x-mock") or {}).get("action") == "unimplemented"
            and operation_origins().get(op["operationId"]) == "engine"]


def exemptions(*, read_only: bool = False, is_mock: bool = True) -> list[Exemption]:
    """Everything disabled or relaxed for a run, with the reason."""
    found = [
        Exemption(
            "check", "positive_data_acceptance (replaced by positive_data_acceptance_m3ter)",
            ", ".join(sorted(SEMANTIC_RULES)),
            "a 400 for a schema-valid request is accepted only as the breach of a rule no schema can state "
            "(RULES: referenced entities must exist, one per reference the mock's catalog declares; exactly one "
            "of a group; a stored singleton's version; opaque cursors on every list; control characters in a "
            "path; ids alone on events, schedule frequencies, event types, the calculation language, "
            "downloadable jobs; the action modules' search language, sort fields, periods, statement job "
            "filters, invitation expiry and charge amounts; the principals, resource group targets and lookup "
            "revisions the access and lookup-table actions name; a measurement's fields on its Meter), when the "
            "suite sees the "
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
            "the spec documents this operation as 501 Not Implemented by the mock (yet) and no handler serves "
            "it (x-mock action unimplemented); m3ter serves it"))
    for origin, size in SIZES.items():
        if size.fuzzing_divisor != 1 or size.coverage != "all":
            coverage = {"all": "", "positive": ", the coverage phase's valid cases only",
                        "none": ", no coverage phase"}[size.coverage]
            found.append(Exemption(
                "phase", f"fewer cases: fuzzing examples // {size.fuzzing_divisor}{coverage}",
                f"{origin} operations", size.why + "; the CI run must stay under 10 minutes on 2 cores"))
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


# -- how much the suite sends per operation ------------------------------------------------
# The CI run (``.ci/run``) must stay under 10 minutes on 2 cores, with both mock targets.
# The coverage phase sends every boundary case a schema defines (68 per operation on
# average, 400 for the largest bodies; 21,900 for the whole API) and cannot be capped per
# operation, only narrowed to its positive or negative cases; fuzzing sends ``examples``
# per operation (valid and invalid). So the size depends on who serves the operation
# (``operation_origins``); contracts/README.md gives the measurements behind the choice.
@dataclass(frozen=True)
class Size:
    fuzzing_divisor: int  # fuzzing examples: ``examples // fuzzing_divisor`` (at least 1)
    coverage: str  # the coverage phase's cases: "all", "positive" (the valid ones) or "none"
    why: str


SIZES: dict[str, Size] = {
    "written": Size(1, "all", "a hand-written handler each (mockserver/api/registry.py HANDLERS): every case, "
                              "as before the whole API was served"),
    "action": Size(5, "positive", "the action modules' handlers (mockserver/api/actions), written per operation: "
                                  "every valid boundary value and optional-field subset of the coverage phase, so "
                                  "each false rejection and response shape shows, and a fifth of the fuzzing "
                                  "examples, valid and invalid"),
    "engine": Size(5, "none", "one code path, the generic engine, for about 200 operations: a fifth of the "
                              "fuzzing examples, valid and invalid, and no coverage phase (its valid cases alone, "
                              "3,300, cost about 40 s a target and found nothing the fuzzing did not; its invalid "
                              "ones, 11,200, mostly one wrong type per field, test Connexion's validation of the "
                              "same schema keywords again; the 405s of their paths are tests/test_routing.py's)"),
}


def examples_for(origin: str, examples: int) -> int:
    return max(1, examples // SIZES[origin].fuzzing_divisor)


@lru_cache(maxsize=1)
def operation_origins() -> dict[str, str]:
    """operationId -> "written", "action" or "engine": who serves it in the mock."""
    from mockserver.api.actions import HANDLERS as ACTIONS
    from mockserver.api.registry import HANDLERS

    origins = {}
    for _, _, op in operations():
        operation_id = op.get("operationId")
        origins[operation_id] = ("written" if operation_id in HANDLERS else "action" if operation_id in ACTIONS
                                 else "engine")
    return origins


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
    # Sizes per kind of operation (SIZES).
    origins = operation_origins()
    for origin, size in SIZES.items():
        chosen = sorted(operation_id for operation_id, where in origins.items() if where == origin)
        if not chosen or (size.fuzzing_divisor == 1 and size.coverage == "all"):
            continue
        entry: dict = {"include-operation-id": chosen,
                       "generation": {"max-examples": examples_for(origin, examples)}}
        if size.coverage == "positive":
            entry["phases"] = {"coverage": {"generation": {"mode": "positive"}}}
        elif size.coverage == "none":
            entry["phases"] = {"coverage": {"enabled": False}}
        config["operations"].append(entry)
    if read_only:
        config["operations"].append({"include-method": ["POST", "PUT", "DELETE", "PATCH"], "enabled": False})
        config["phases"]["coverage"]["unexpected-methods"] = ["OPTIONS"]
    return config
