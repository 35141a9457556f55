"""The event log: every state change becomes an Event, newest first in lists.

Entity changes of the types m3ter lists in its event catalogue are recorded as
``configuration.<entity>.<created|updated|deleted>`` with the entity before (``oldDto``) and
after (``newDto``) the change, as in m3ter's examples. Every recorded Event is handed to the
listeners (the notification engine) while the store lock is still held, so rules see
Events in the order they happened. Each organization keeps its newest
``settings.retain_events`` Events; older ones are dropped as new ones arrive.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from mockserver.domain import catalogue
from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import ListScope

from .crud import Caller, ResourceKind, public_view

COLLECTION = "events"

# Filter name -> the internal key of the Event it compares against.
_FILTER_KEYS = {
    "accountId": "_accountId",
    "eventName": "eventName",
    "notificationId": "_notificationId",
    "notificationCode": "_notificationCode",
    "resourceId": "_resourceId",
}


class EventLog:
    def __init__(self, backend):
        self.backend = backend
        self._listeners: list[Callable[[str, dict], None]] = []

    def add_listener(self, listener: Callable[[str, dict], None]) -> None:
        self._listeners.append(listener)

    def record(self, org_id: str, event_name: str, *, new: dict | None = None, old: dict | None = None,
               resource_id: str | None = None, account_id: str | None = None, event_type: str | None = None,
               notification: dict | None = None, extra: dict[str, Any] | None = None) -> dict:
        with self.backend.store.lock:
            when = isoformat(self.backend.clock.now())
            event_data: dict[str, Any] = {}
            if new is not None:
                event_data["newDto"] = new
            if old is not None:
                event_data["oldDto"] = old
            m3ter_event = {"eventName": event_name, "eventTime": when, "eventData": event_data, **(extra or {})}
            event = {
                "id": str(uuid.uuid4()),
                "eventName": event_name,
                "eventTime": when,
                # No `dtActioned`: nobody has actioned (followed up) a new Event, the mock has no
                # call to do so, and m3ter's schema allows no null there, so it is left out.
                "m3terEvent": m3ter_event,
                "_eventType": event_type or catalogue.event_category(event_name),
                "_resourceId": resource_id,
                "_accountId": account_id,
                "_notificationId": notification["id"] if notification else None,
                "_notificationCode": notification["code"] if notification else None,
            }
            events = self.backend.store.collection(org_id, COLLECTION)
            events.put(event)
            events.trim(self.backend.settings.retain_events)
            for listener in self._listeners:
                listener(org_id, event)
            return event

    def on_entity_changed(self, caller: Caller, kind: ResourceKind, action: str,
                          old: dict | None, new: dict | None) -> None:
        if kind.event_entity is None:
            return
        subject = new or old

        def dto(entity):
            return {**kind.view(entity), "orgId": caller.org_id} if entity is not None else None

        self.record(caller.org_id, catalogue.entity_event_name(kind.event_entity, action),
                    new=dto(new), old=dto(old), resource_id=subject["id"], account_id=subject.get("accountId"))

    # -- reads --------------------------------------------------------------------------
    def get(self, caller: Caller, event_id: str) -> dict:
        with self.backend.store.lock:
            event = self.backend.store.peek(caller.org_id, COLLECTION).get(event_id)
            if event is None:
                raise MockError.not_found(f"No Event with id {event_id!r}")
            return public_view(event)

    def find(self, caller: Caller, event_id: str) -> dict:
        event = self.backend.store.peek(caller.org_id, COLLECTION).get(event_id)
        if event is None:
            raise MockError.not_found(f"No Event with id {event_id!r}")
        return event

    def list(self, caller: Caller, filters: dict[str, Any], page_size: int | None,
             next_token: str | None) -> tuple[list[dict], str | None]:
        active = {k: v for k, v in filters.items() if v is not None and v != []}
        ids = active.get("ids")
        if ids is not None and len(active) > 1:
            others = ", ".join(sorted(k for k in active if k != "ids"))
            raise MockError.bad_request(f"ids: cannot be combined with other filters (also given: {others})")
        with self.backend.store.lock:
            collection = self.backend.store.peek(caller.org_id, COLLECTION)
            items, token = self.backend.paginate(
                ListScope(caller.org_id, COLLECTION, active), collection, _matcher(active),
                page_size, next_token, candidate_ids=ids, newest_first=True)
            return [public_view(e) for e in items], token


def _matcher(filters: dict[str, Any]) -> Callable[[dict], bool]:
    checks: list[Callable[[dict], bool]] = []
    for name, wanted in filters.items():
        if name in _FILTER_KEYS:
            key = _FILTER_KEYS[name]
            checks.append(lambda e, key=key, wanted=wanted: e.get(key) == wanted)
        elif name == "eventType":
            checks.append(lambda e, wanted=wanted.lower(): e["_eventType"].lower() == wanted)
        elif name == "includeActioned" and wanted is False:
            checks.append(lambda e: "dtActioned" not in e)
    return lambda event: all(check(event) for check in checks)
