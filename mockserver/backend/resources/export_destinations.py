"""Data export destinations: an S3 or a Google Cloud Storage bucket.

The published API requires ``name`` and ``code``; the SDK sends neither and may omit
``destinationType``. The kind is then told by the fields given (an ``iamRoleArn`` means
S3), and the bucket name stands in for a missing name. Bucket names and prefixes follow
the rules of ``mockserver.domain.object_paths`` (the clouds' naming rules, and never a way
out of ``--export-dir``).
"""

from mockserver.domain import object_paths
from mockserver.domain.errors import MockError

from ..crud import ResourceKind

COMMON = ("name", "code", "bucketName", "prefix")
BY_TYPE = {
    "S3": ("iamRoleArn",),
    "GCS": ("projectNumber", "poolId", "providerId", "serviceAccountEmail"),
}


def prepare(backend, caller, body, existing):
    destination_type = body.get("destinationType") or ("S3" if "iamRoleArn" in body else "GCS")
    # The spec's patterns already refuse these; this is the same rule with a reason, for
    # bodies that reach the backend some other way.
    object_paths.check_destination(destination_type, body["bucketName"], body.get("prefix"))
    fields = {k: body[k] for k in COMMON + BY_TYPE[destination_type] if body.get(k) is not None}
    fields["destinationType"] = destination_type
    fields.setdefault("name", body["bucketName"])
    fields["partitionOrder"] = body.get("partitionOrder") or "TIME_FIRST"
    return fields


def check_delete(backend, caller, destination):
    for schedule in backend.store.peek(caller.org_id, "dataexportschedules").values():
        if destination["id"] in schedule.get("destinationIds", ()):
            raise MockError.conflict(
                f"ExportDestination {destination['id']!r} is used by export schedule "
                f"{schedule['id']!r}; remove it from the schedule first"
            )


KIND = ResourceKind(
    collection="dataexportdestinations",
    label="ExportDestination",
    prepare=prepare,
    check_delete=check_delete,
)
