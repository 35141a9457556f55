"""Data export schedules: what to export (operational entity types, or a usage query) and
when (``scheduleType``/``period``/``offset``, from which the cron expression is derived).

A schedule sent in the SDK's shape (no ``scheduleType``) is stored as ``AD_HOC``: it has no
cron expression and never runs on the clock.
"""

from mockserver.domain import cron
from mockserver.domain.errors import MockError

from ..crud import ResourceKind

COMMON = ("name", "code", "sourceType", "destinationIds", "period", "offset")
BY_SOURCE = {
    "OPERATIONAL": ("operationalDataTypes",),
    "USAGE": ("timePeriod", "meterIds", "accountIds", "dimensionFilters", "aggregations", "groups"),
}


def prepare(backend, caller, body, existing):
    fields = {k: body[k] for k in COMMON + BY_SOURCE[body["sourceType"]] if body.get(k) is not None}
    for destination_id in fields.get("destinationIds", ()):
        if not backend.export_destinations.exists(caller, destination_id):
            raise MockError.bad_request(f"destinationIds: no export destination with id {destination_id!r}")
    schedule_type = body.get("scheduleType")
    expression = cron.derive_cron(schedule_type, body.get("period"), body.get("offset"))
    fields["scheduleType"] = schedule_type or "AD_HOC"
    if expression is not None:
        fields["cronExpression"] = expression
    fields["exportFileFormat"] = body.get("exportFileFormat") or "CSV"
    return fields


KIND = ResourceKind(
    collection="dataexportschedules",
    label="ExportSchedule",
    prepare=prepare,
)
