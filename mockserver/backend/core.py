"""The backend: the store and the services that act on it, for one running mock.

This is the state half of the moto-style split (``mockserver.api`` is the HTTP half).
Nothing here imports Flask or Connexion.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Iterable

from mockserver.domain.auth import Authenticator, Client
from mockserver.domain.clock import Clock
from mockserver.domain.pagination import Cursors, ListScope

from .crud import DEFAULT_PAGE_SIZE, Caller, CrudService, ResourceKind
from .store import Collection, Store


class Backend:
    def __init__(self, clock: Clock | None = None, clients: list[Client] | None = None,
                 token_lifetime_seconds: int = 18000):
        self.clock = clock or Clock()
        self.store = Store()
        self._secret = secrets.token_bytes(32)
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

    def reset(self) -> None:
        """Empty every organization and put the clock back on real time."""
        self.store.reset()
        if self.clock.frozen:
            self.clock.unfreeze()

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
