"""The backend: the store and the services that act on it, for one running mock.

This is the state half of the moto-style split (``mockserver.api`` is the HTTP half).
Nothing here imports Flask or Connexion.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from mockserver.domain import catalogue
from mockserver.domain.auth import Authenticator, Client
from mockserver.domain.errors import MockError
from mockserver.domain.clock import Clock, from_iso, utc
from mockserver.domain.delivery_policy import RetryPolicy
from mockserver.domain.pagination import Cursors, ListScope

from mockserver.settings import Settings

from .crud import DEFAULT_PAGE_SIZE, Caller, CrudService, ResourceKind, public_view
from .store import Collection, Store


class Backend:
    def __init__(self, clock: Clock | None = None, clients: list[Client] | None = None,
                 token_lifetime_seconds: int = 18000, retry_policy: RetryPolicy | None = None,
                 delivery_timeout_seconds: float | None = None, export_dir: str | None = None,
                 settings: Settings | None = None, spec: dict | None = None):
        # Limits and retention; the explicit arguments above predate it and take precedence.
        self.settings = settings or Settings()
        self.clock = clock or Clock()
        # Clock changes one at a time: each reads the clock, then moves it, so two at
        # once would lose time (or move it "backwards" and fail).
        self._clock_change = threading.RLock()
        self.store = Store()
        self._id_source: Callable[[], str] | None = None  # see new_id
        # The lenient mode's unknown ids (backend/lenient.py); None: the faithful default.
        self.lenient = None
        self._secret = secrets.token_bytes(32)
        # Deliveries carry this id (header ``X-m3ter-mock-delivery``) and the HTTP layer
        # refuses requests that carry it, so a webhook can never drive the mock itself.
        self.instance_id = secrets.token_hex(16)
        # (host, port) pairs this mock is served on, as seen by the HTTP layer and the CLI;
        # deliveries never connect to them.
        self.own_addresses: set[tuple[str, int]] = set()
        self.auth = Authenticator(self.clock, self._secret, clients, token_lifetime_seconds)
        from .journal import RequestJournal

        self.journal = RequestJournal(self.clock, self.settings.retain_journal)
        self.cursors = Cursors(self._secret)
        if self.settings.lenient:  # a nextToken the list did not issue reads as the first page
            from .lenient import LenientCursors

            self.cursors = LenientCursors(self._secret)
        self._change_listeners: list[Callable[[Caller, ResourceKind, str, dict | None, dict | None], None]] = []

        # Imported here: the resource modules need Backend's type only for hints.
        from .resources import (compound_aggregations, export_destinations, export_schedules,
                                integration_configs, notifications, webhooks)

        def keyed(kind: ResourceKind, key: str) -> ResourceKind:
            return replace(kind, key=key)

        self.compound_aggregations = CrudService(self, keyed(compound_aggregations.KIND, "compoundaggregations"))
        self.export_destinations = CrudService(self, keyed(export_destinations.KIND, "dataexports/destinations"))
        self.export_schedules = CrudService(self, keyed(export_schedules.KIND, "dataexports/schedules"))
        self.notifications = CrudService(self, keyed(notifications.KIND, "notifications/configurations"))
        self.webhooks = webhooks.WebhookService(self, keyed(webhooks.KIND, "integrationdestinations/webhooks"))
        self.integration_configs = integration_configs.IntegrationConfigService(
            self, keyed(integration_configs.KIND, "integrationconfigs"))
        self._build_resources(spec)

        from .deliveries import DeliveryWorker
        from .downloads import DownloadGrants
        from .events import EventLog
        from .exports import ExportService
        from .notifying import NotificationEngine

        self.downloads = DownloadGrants(self)
        self.events = EventLog(self)
        self.notifications_engine = NotificationEngine(self)
        self.deliveries = DeliveryWorker(self, retry_policy, delivery_timeout_seconds)
        self.exports = ExportService(self, export_dir)
        self.add_change_listener(self.events.on_entity_changed)
        self.add_change_listener(self._record_part_events)
        self.add_change_listener(self.exports.on_entity_changed)
        self.events.add_listener(self.notifications_engine.on_event)

        from .actions.billing import BillingActions
        from .actions.platform import platform

        self.billing = BillingActions(self)
        self.platform = platform(self)

        from .usage import UsageStore

        self.usage = UsageStore(self)

        from .usage_engine import UsageEngine

        self.usage_engine = UsageEngine(self)

        from .bill_runs import BillRuns

        self.bill_runs = BillRuns(self)

        from .state import StateService

        # Snapshots, the state file, one organization's reset; after the workers (it hears them).
        self.state = StateService(self)

        if self.settings.lenient:
            from .lenient import LenientEntities

            self.lenient = LenientEntities(self)

        from .seeding import Seeding

        # Fixture files and the Faker generator, through the services above.
        self.seeding = Seeding(self)

        from .faults import FaultRules

        self.faults = FaultRules(self)

    def _build_resources(self, spec: dict | None) -> None:
        """One service per resource key: the hand-made ones above, and one CrudService for
        every other resource the spec's ``x-mock`` operations name."""
        from . import shapes
        from .resources import catalog

        self.spec = spec if spec is not None else shapes.load_spec()
        self.shapes = shapes.derive_shapes(self.spec)
        self.resources: dict[str, CrudService] = {
            service.kind.key: service
            for service in (self.compound_aggregations, self.export_destinations, self.export_schedules,
                            self.notifications, self.webhooks, self.integration_configs)}
        keys = set(self.shapes) | set(self.resources)
        for key, shape in self.shapes.items():
            if key not in self.resources:
                declaration = catalog.RESOURCES.get(key)
                if self.settings.lenient and declaration is not None:
                    from .lenient import relaxed

                    declaration = relaxed(declaration)
                self.resources[key] = CrudService(self, catalog.kind_for(shape, declaration, keys))
        # resource key -> (referring service, field), to refuse deleting what is referenced.
        self._referrers: dict[str, list[tuple[CrudService, str]]] = {}
        for service in self.resources.values():
            for name, target in service.kind.references.items():
                self._referrers.setdefault(target, []).append((service, name))

    def _record_part_events(self, caller: Caller, kind: ResourceKind, action: str,
                            old: dict | None, new: dict | None) -> None:
        """The Events of the items of an entity that the catalogue lists as entities of their
        own (a Pricing's bands), matched by id between the old and the new entity."""
        for name, entity_type in kind.part_events.items():
            before, after = ({item["id"]: item for item in (side or {}).get(name, ())
                              if isinstance(item, dict) and "id" in item} for side in (old, new))
            changes = [("created", None, item) for key, item in after.items() if key not in before]
            changes += [("updated", before[key], item) for key, item in after.items()
                        if key in before and before[key] != item]
            changes += [("deleted", item, None) for key, item in before.items() if key not in after]
            for change, was, now in changes:
                self.events.record(caller.org_id, catalogue.entity_event_name(entity_type, change),
                                   new=now, old=was, resource_id=(now or was)["id"])

    def check_unreferenced(self, caller: Caller, kind: ResourceKind, entity: dict) -> None:
        """409 when a stored entity references ``entity``: the rule m3ter documents for an
        Account its AccountPlans name, a Contract its billing entities name and an Export
        Destination a schedule names, applied to every declared reference. Scans the
        referring resources only."""
        for service, name in self._referrers.get(kind.key, ()) if kind.key else ():
            for other in service.entities(caller.org_id):
                value = other.get(name)
                if value == entity["id"] or (isinstance(value, list) and entity["id"] in value):
                    raise MockError.conflict(
                        f"{kind.label} {entity['id']!r} is referenced by {service.kind.label} {other['id']!r} "
                        f"({name}); delete that or change its {name} first")

    def new_id(self) -> str:
        """The id of a new stored entity: a random UUID4, or the next of a seeded sequence
        while ``ids_from`` is in force (generated seed data gets the same ids for one seed)."""
        source = self._id_source
        return source() if source is not None else str(uuid.uuid4())

    @contextlib.contextmanager
    def ids_from(self, seed: int):
        """New entities' ids from a sequence fixed by ``seed``, for the block. Its caller holds
        the store lock, so no other request takes ids from the sequence meanwhile."""
        numbers = random.Random(f"m3ter-mock ids {seed}")
        previous, self._id_source = self._id_source, (
            lambda: str(uuid.UUID(int=numbers.getrandbits(128), version=4)))
        try:
            yield
        finally:
            self._id_source = previous

    def reset(self, keep_clock: bool = False) -> None:
        """Empty every organization and drop pending deliveries; unless ``keep_clock``, put
        the clock back on real time."""
        for worker in self.workers():
            worker.clear()
            worker.wait_idle(timeout=10)  # pragma: no mutate: the bound matters only if a worker's item hangs
        self.store.reset()
        self.faults.clear()
        self.journal.clear()
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
        return [self.deliveries.queue, self.exports.queue, self.billing.queue, self.usage.queue,
                self.bill_runs.queue]

    def download(self, token: str) -> tuple[str, bytes, str]:
        """The file behind a ``/_mock/downloads/{token}`` URL: (file name, content, media type)
        from the service that issued the grant; a 403 when the token is unknown or expired."""
        from . import exports, usage
        from .actions import billing, platform

        grant = self.downloads.open(token)
        serve = {exports.DOWNLOAD_OWNER: self.exports.download, billing.DOWNLOAD_OWNER: self.billing.download,
                 platform.DOWNLOAD_OWNER: self.platform.lookup_data.download,
                 usage.DOWNLOAD_OWNER: self.usage.download}[grant.owner]
        return serve(grant)

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
        return utc(from_iso(value))
    except ValueError:
        raise MockError.bad_request(f"at: {value!r} is not an ISO-8601 date-time") from None
