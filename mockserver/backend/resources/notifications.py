"""Notification configurations: a rule on one event type that decides, by its
``calculation``, which Events fire a notification."""

from mockserver.domain import calculation, catalogue
from mockserver.domain.errors import MockError

from ..crud import ResourceKind, equals

WRITABLE = ("name", "description", "code", "eventName", "calculation")


def prepare(backend, caller, body, existing):
    if not catalogue.is_event_type(body["eventName"]):
        raise MockError.bad_request(
            f"eventName: {body['eventName']!r} is not an event type (see GET /events/types)"
        )
    if body.get("calculation"):
        # Syntax errors and unknown fields are 400s with the position, when saved.
        calculation.check(body["calculation"], catalogue.fields_for(body["eventName"]), body["eventName"])
    fields = {k: body[k] for k in WRITABLE if body.get(k) is not None}
    fields["active"] = body.get("active", True)
    fields["alwaysFireEvent"] = body.get("alwaysFireEvent", False)
    return fields


KIND = ResourceKind(
    collection="notifications",
    label="Notification",
    prepare=prepare,
    filters={"active": equals("active"), "eventName": equals("eventName")},
)
