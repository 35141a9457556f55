"""The backend: the store and the services that act on it, for one running mock.

This is the state half of the moto-style split (``mockserver.api`` is the HTTP half).
Nothing here imports Flask or Connexion.
"""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from mockserver.domain import catalogue
from mockserver.domain.auth import Authenticator, Client
from mockserver.domain.errors import MockError
from mockserver.domain.clock import Clock, utc
from mockserver.domain.delivery_policy import RetryPolicy
from mockserver.domain.pagination import Cursors, ListScope

from mockserver.settings import Settings

from .crud import DEFAULT_PAGE_SIZE, Caller, CrudService, ResourceKind, public_view
from .store import Collection, Store


class Backend:
    def __init__(self, clock: Clock | None = None, clients: list[Client] | None = None,
                 token_lifetime_seconds: int = 18000, retry_policy: RetryPolicy | None = None,
                 delivery_timeout_seconds: float | None = None, export_dir: str | None = None,
                 settings: Settings | None = None):
        # Limits and retention; the explicit arguments above predate it and take precedence.
        self.settings = settings or Settings()
        self.clock = clock or Clock()
        # Clock changes one at a time: each reads the clock, then moves it, so two at
        # once would lose time (or move it "backwards" and fail).
        self._clock_change = threading.RLock()
        self.store = Store()
        self._secret = secrets.token_bytes(32)
        # Deliveries carry this id (header ``X-m3ter-mock-delivery``) and the HTTP layer
        # refuses requests that carry it, so a webhook can never drive the mock itself.
        self.instance_id = secrets.token_hex(16)
        # (host, port) pairs this mock is served on, as seen by the HTTP layer and the CLI;
        # deliveries never connect to them.
        self.own_addresses: set[tuple[str, int]] = set()
        self.auth = Authenticator(self.clock, self._secret, clients, token_lifetime_seconds)
        self.cursors = Cursors(self._secret)
        self._change_listeners: list[Callable[[Caller, ResourceKind, str, dict | None, dict | None], None]] = []

        # Imported here: the resource modules need Backend's type only for hints.
        from .resources import (compound_aggregations, export_destinations, export_schedules,
                                integration_configs, notifications, webhooks)

        self.compound_aggregations = CrudService(self, compound_aggregations.KIND)
        self.export_destinations = CrudService(self, export_destinations.KIND)
        self.export_schedules = CrudService(self, export_schedules.KIND)
        self.notifications = CrudService(self, notifications.KIND)
        self.webhooks = webhooks.WebhookService(self, webhooks.KIND)
        self.integration_configs = integration_configs.IntegrationConfigService(self, integration_configs.KIND)

        from .deliveries import DeliveryWorker
        from .events import EventLog
        from .exports import ExportService
        from .notifying import NotificationEngine

        self.events = EventLog(self)
        self.notifications_engine = NotificationEngine(self)
        self.deliveries = DeliveryWorker(self, retry_policy, delivery_timeout_seconds)
        self.exports = ExportService(self, export_dir)
        self.add_change_listener(self.events.on_entity_changed)
        self.add_change_listener(self.exports.on_entity_changed)
        self.events.add_listener(self.notifications_engine.on_event)

    def reset(self, keep_clock: bool = False) -> None:
        """Empty every organization and drop pending deliveries; unless ``keep_clock``, put
        the clock back on real time."""
        for worker in self.workers():
            worker.clear()
            worker.wait_idle(timeout=10)
        self.store.reset()
        if not keep_clock:
            self.clock.reset()

    # -- the clock and injected events (the admin API) -----------------------------------
    def change_clock(self, freeze: bool | None = None, at: str | datetime | None = None,
                     advance_seconds: float | None = None) -> None:
        with self._clock_change:
            self._change_clock(freeze, at, advance_seconds)

    def _change_clock(self, freeze: bool | None, at: str | datetime | None, advance_seconds: float | None) -> None:
        if freeze is False and (at is not None or advance_seconds):
            raise MockError.bad_request("freeze: false cannot be combined with at or advanceSeconds")
        if freeze is False:
            self.clock.unfreeze()
            self.run_due()
            return
        target = _parse_instant(at) if at is not None else None
        if freeze:
            # A fresh freeze may start anywhere, even in the past: a test's starting point.
            self.clock.freeze(target or self.clock.now())
            target = None
        if advance_seconds:
            target = (target or self.clock.now()) + timedelta(seconds=advance_seconds)
        if target is not None:
            if target < self.clock.now():
                raise MockError.bad_request(f"at: {target.isoformat()} is earlier than the clock; it only moves forward")
            self.advance_to(target)
        self.run_due()

    def advance_to(self, target: datetime) -> None:
        """Move the (frozen) clock to ``target`` one due time at a time, so everything that
        falls due on the way runs at its own time and in order: a retry that becomes due
        on the way is itself retried before ``target`` if its back-off allows."""
        with self._clock_change:
            self._advance_to(target)

    def _advance_to(self, target: datetime) -> None:
        if not self.clock.frozen:
            self.clock.freeze()
        while True:
            self.run_due()
            upcoming = min((t for t in (w.next_due_time() for w in self.workers()) if t is not None), default=None)
            if upcoming is None or upcoming > target:
                break
            self.clock.set(max(upcoming, self.clock.now()))
        self.clock.set(target)
        self.run_due()

    def run_due(self, timeout: float = 30.0) -> None:
        """Wait until the work that is due by the clock (deliveries, exports) has run,
        including work that the due work itself made due."""
        for _ in range(100):
            for worker in self.workers():
                worker.wait_idle(timeout)
            if all(w.wait_idle(0) for w in self.workers()):
                return

    def workers(self):
        return [self.deliveries.queue, self.exports.queue]

    def inject_event(self, org_id: str, event_name: str, *, new: dict | None = None, old: dict | None = None,
                     resource_id: str | None = None, account_id: str | None = None) -> dict:
        if not catalogue.is_event_type(event_name):
            raise MockError.bad_request(f"eventName: {event_name!r} is not an event type (see GET /events/types)")
        subject = new or old or {}
        event = self.events.record(org_id, event_name, new=new, old=old,
                                   resource_id=resource_id or subject.get("id"),
                                   account_id=account_id or subject.get("accountId"))
        return public_view(event)

    # -- changes ------------------------------------------------------------------------
    def add_change_listener(self, listener) -> None:
        self._change_listeners.append(listener)

    def entity_changed(self, caller: Caller, kind: ResourceKind, action: str,
                       old: dict | None, new: dict | None) -> None:
        for listener in self._change_listeners:
            listener(caller, kind, action, old, new)

    # -- lists --------------------------------------------------------------------------
    def paginate(self, scope: ListScope, collection: Collection, matches: Callable[[dict], bool],
                 page_size: int | None, next_token: str | None, *,
                 candidate_ids: Iterable[str] | None = None,
                 newest_first: bool = False) -> tuple[list[dict], str | None]:
        """One page of the items that match, and the cursor of the next page (None on the
        last). The work done is proportional to the page, not to the collection, unless
        the filters skip most items."""
        size = page_size or DEFAULT_PAGE_SIZE
        after = self.cursors.decode(scope, next_token) if next_token else None
        if candidate_ids is not None:
            source = self._scan_ids(collection, candidate_ids, after, newest_first)
        else:
            source = collection.scan(after, newest_first)
        page: list[dict] = []
        last_seq: Any = None
        for seq, item in source:
            if not matches(item):
                continue
            if len(page) == size:
                return page, self.cursors.encode(scope, last_seq)
            page.append(item)
            last_seq = seq
        return page, None

    @staticmethod
    def _scan_ids(collection: Collection, ids: Iterable[str], after: int | None, newest_first: bool):
        seqs = sorted({collection.seq(i) for i in ids if collection.get(i) is not None}, reverse=newest_first)
        for seq in seqs:
            if after is None or (seq < after if newest_first else seq > after):
                yield seq, collection.items[collection.order[seq]]


def _parse_instant(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise MockError.bad_request(f"at: {value!r} is not an ISO-8601 date-time") from None
