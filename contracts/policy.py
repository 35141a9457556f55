"""The one place that says what the contract suite does not check, or checks differently,
and why. Everything else runs: every Schemathesis check, and the examples, coverage,
fuzzing and stateful phases, on every operation of ``openapi/m3ter.yaml``.

A failure the suite finds is fixed in the mock or in the spec. An entry here is the
exception, and each one gives its reason: the real m3ter behaviour that justifies it where
it is about the API, the measurement where it is about how the suite generates requests.
(``m3ter-mock contract --policy`` prints this list.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

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
# schema-valid request rejected. The suite's variant of that check accepts such a 400 only
# when its message names one of the fields below for that operation; a 400 that names any
# other field (or none) still fails. Each rule is documented in the spec's descriptions.
_NEXT_TOKEN = ("nextToken", "an opaque cursor; only the value the previous page returned is valid "
               "(m3ter: 'nextToken for multi-page retrievals', issued by the server)")
_SCHEDULE = {
    "destinationIds": "each id must name an existing export destination (m3ter rejects unknown destinations)",
    "scheduleType": "with period and offset must give a frequency between every 15 minutes and every 3 days "
                    "(m3ter SDK: 'runs no more often than every 15 minutes')",
    "period": "see scheduleType",
    "offset": "DAY: hour of day 0-23, HOUR: minute 0-59, not valid for MINUTE (m3ter SDK field doc)",
}
_NOTIFICATION = {
    "eventName": "must be one of the event types of GET /events/types (m3ter validates the event name)",
    "calculation": "must parse in m3ter's calculation language over the event's fields (GET /events/fields)",
}
_INTEGRATION = {
    "entityId": "for entityType Notification it must name an existing notification",
    "destinationId": "for destination Webhook it must name an existing webhook destination",
}
LIST_OPERATIONS = ("ListCompoundAggregations", "ListDestinations", "listSchedules", "listJobStatuses",
                   "ListEvents", "ListNotifications", "ListWebhookIntegrations", "GetIntegrationConfigs",
                   "GetIntegrationConfigForType")
SEMANTIC_RULES: dict[str, dict[str, str]] = {
    **{op: dict([_NEXT_TOKEN]) for op in LIST_OPERATIONS},
    "CreateSchedule": _SCHEDULE,
    "UpdateSchedule": _SCHEDULE,
    "CreateNotification": _NOTIFICATION,
    "UpdateNotification": _NOTIFICATION,
    "EvaluateCalculation": _NOTIFICATION,
    "ListEventFields": {"eventName": _NOTIFICATION["eventName"]},
    "PostIntegrationConfig": _INTEGRATION,
    "UpdateIntegrationConfig": _INTEGRATION,
    "ListEvents": {**dict([_NEXT_TOKEN]),
                   "ids": "cannot be combined with any other filter (m3ter SDK: 'ids cannot be combined "
                          "with other filters')"},
    "TriggerDataExport": {"destinationIds": _SCHEDULE["destinationIds"]},
    "GenerateDataExportFileDownloadUrl": {
        "jobId": "only a job that succeeded in the last 24 hours has a file to download (m3ter SDK method doc)"},
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
            "a 400 for a schema-valid request is accepted only when its message names a field with a rule "
            "no schema can state (see SEMANTIC_RULES: referenced entities must exist, calculation grammar, "
            "opaque cursors, schedule frequencies); m3ter answers these with 400 too. Any other 400 fails."
            + ("" if is_mock else " Against a real org the message format differs, so any 400 on these "
               "operations is accepted."),
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
