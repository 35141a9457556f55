"""The notification engine: decides which Events fire which notification rules, records a
Notification Event for each firing, and hands it to the delivery worker for every enabled
integration configuration that links the rule to an active webhook.

Notification Events carry the triggering Event's name and data (``eventType`` is
``Notification``); they never fire rules themselves, so a rule cannot trigger itself.
"""

from __future__ import annotations

from mockserver.domain import calculation
from mockserver.domain.errors import MockError

from .crud import Caller, public_view

NOTIFICATION = "Notification"


class NotificationEngine:
    def __init__(self, backend):
        self.backend = backend

    def on_event(self, org_id: str, event: dict) -> None:
        if event["_eventType"] == NOTIFICATION:
            return
        for rule in list(self.backend.store.peek(org_id, "notifications").values()):
            if rule["eventName"] == event["eventName"] and rule["active"] and rule_fires(rule, event):
                self._fire(org_id, rule, event)

    def _fire(self, org_id: str, rule: dict, trigger: dict) -> None:
        data = trigger["m3terEvent"]["eventData"]
        notification = {"id": rule["id"], "code": rule["code"], "name": rule["name"]}
        fired = self.backend.events.record(
            org_id, trigger["eventName"], new=data.get("newDto"), old=data.get("oldDto"),
            resource_id=trigger["_resourceId"], account_id=trigger["_accountId"], event_type=NOTIFICATION,
            notification=rule,
            extra={"notification": notification,
                   "triggeringEvent": {"id": trigger["id"], "eventName": trigger["eventName"],
                                       "eventTime": trigger["eventTime"]}})
        for config in list(self.backend.store.peek(org_id, "integrationconfigs").values()):
            if (config["entityType"].lower() == "notification" and config.get("entityId") == rule["id"]
                    and config["enabled"] and config["destination"].lower() == "webhook"
                    and config.get("destinationId")):
                webhook = self.backend.store.peek(org_id, "webhooks").get(config["destinationId"])
                if webhook is not None and webhook["active"]:
                    self.backend.deliveries.enqueue(org_id, public_view(fired), config, webhook,
                                                    after_failure=trigger["eventName"] == "integration.perform.error")


def rule_fires(rule: dict, event: dict) -> bool:
    if rule["alwaysFireEvent"] or not rule.get("calculation"):
        return True
    data = event["m3terEvent"]["eventData"]
    try:
        return calculation.parse(rule["calculation"]).fires(data.get("newDto"), data.get("oldDto"))
    except MockError:
        return False  # checked when saved; a rule that no longer parses simply never fires


def evaluate(backend, caller: Caller, text: str, event_name: str | None, event_id: str | None) -> dict:
    """``POST /notifications/evaluate``: with ``eventName`` (which wins when both are given)
    the calculation is checked against that event type; with ``eventId`` it is also run on
    that Event, and succeeds only if it is true there."""
    from mockserver.domain import catalogue

    if event_name is None and event_id is None:
        raise MockError.bad_request("eventName or eventId: give one to evaluate the calculation against")
    if event_name is not None:
        fields = catalogue.fields_for(event_name)
        return _outcome(lambda: calculation.check(text, fields, event_name) and True)
    with backend.store.lock:
        event = backend.events.find(caller, event_id)
    data = event["m3terEvent"]["eventData"]

    def run():
        checked = calculation.check(text, catalogue.fields_for(event["eventName"]), event["eventName"])
        result = checked.evaluate(data.get("newDto"), data.get("oldDto"))
        if result is not True:
            raise MockError.bad_request(f"calculation: evaluates to {_show(result)} on Event {event_id}, not true")
        return True

    return _outcome(run)


def _outcome(run) -> dict:
    try:
        run()
    except MockError as problem:
        return {"success": False, "errorMessage": problem.message}
    return {"success": True}


def _show(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
