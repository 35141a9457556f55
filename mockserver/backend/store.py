"""The one store that owns every entity the mock keeps.

State is per organization and per collection; everything sits behind one re-entrant
lock, which callers hold for a whole operation so that a check and the write it guards
can't interleave with another request. Each collection keeps its items in creation order
(a sequence number per item) so that list pages are stable and a page can be found from a
cursor without walking everything before it.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Iterator

from sortedcontainers import SortedDict


@dataclass
class Collection:
    items: dict[str, dict] = field(default_factory=dict)
    seq_of: dict[str, int] = field(default_factory=dict)
    order: SortedDict = field(default_factory=SortedDict)  # seq -> id
    codes: dict[str, str] = field(default_factory=dict)  # code -> id
    next_seq: int = 0

    def __len__(self) -> int:
        return len(self.items)

    def get(self, item_id: str) -> dict | None:
        return self.items.get(item_id)

    def put(self, item: dict) -> None:
        """Insert a new item at the end, or replace an existing one in place."""
        item_id = item["id"]
        previous = self.items.get(item_id)
        if previous is None:
            self.seq_of[item_id] = self.next_seq
            self.order[self.next_seq] = item_id
            self.next_seq += 1
        elif previous.get("code") is not None:
            self.codes.pop(previous["code"], None)
        self.items[item_id] = item
        if item.get("code") is not None:
            self.codes[item["code"]] = item_id

    def remove(self, item_id: str) -> dict:
        item = self.items.pop(item_id)
        del self.order[self.seq_of.pop(item_id)]
        if item.get("code") is not None:
            self.codes.pop(item["code"], None)
        return item

    def trim(self, keep: int) -> list[dict]:
        """Drop the oldest items until at most ``keep`` remain; returns what was dropped.
        Costs O(dropped), so calling it after every insert keeps a bounded collection flat."""
        dropped = []
        while len(self.items) > keep:
            _, oldest_id = self.order.peekitem(0)
            dropped.append(self.remove(oldest_id))
        return dropped

    def id_for_code(self, code: str) -> str | None:
        return self.codes.get(code)

    def seq(self, item_id: str) -> int:
        return self.seq_of[item_id]

    def scan(self, after: int | None = None, newest_first: bool = False) -> Iterator[tuple[int, dict]]:
        """(seq, item) in creation order (or the reverse), strictly past ``after``."""
        if newest_first:
            keys = self.order.irange(maximum=after, inclusive=(True, False), reverse=True) \
                if after is not None else reversed(self.order.keys())
        else:
            keys = self.order.irange(minimum=after, inclusive=(False, True)) \
                if after is not None else iter(self.order.keys())
        for seq in keys:
            yield seq, self.items[self.order[seq]]

    def values(self) -> Iterator[dict]:
        for _, item in self.scan():
            yield item


class Organization:
    def __init__(self, org_id: str):
        self.org_id = org_id
        self.collections: dict[str, Collection] = {}
        # State that is not a collection of entities (the usage store's measurements, by
        # name): snapshot deep-copies it with the collections, reset drops it with them.
        self.tables: dict[str, object] = {}

    def collection(self, name: str) -> Collection:
        found = self.collections.get(name)
        if found is None:
            found = self.collections[name] = Collection()
        return found


_EMPTY = Collection()


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._orgs: dict[str, Organization] = {}

    def org(self, org_id: str) -> Organization:
        """The organization, created empty on first write."""
        found = self._orgs.get(org_id)
        if found is None:
            found = self._orgs[org_id] = Organization(org_id)
        return found

    def collection(self, org_id: str, name: str) -> Collection:
        return self.org(org_id).collection(name)

    def peek(self, org_id: str, name: str) -> Collection:
        """The collection for reading; an organization never written to reads as empty
        (and is not created, so reads of random ids don't grow the store)."""
        org = self._orgs.get(org_id)
        if org is None:
            return _EMPTY
        return org.collections.get(name, _EMPTY)

    def org_ids(self) -> list[str]:
        return list(self._orgs)

    def existing(self, org_id: str) -> Organization | None:
        """The organization if it has been written to; None otherwise (and it is not created)."""
        return self._orgs.get(org_id)

    def replace_org(self, org_id: str, org: Organization | None) -> None:
        """Put ``org`` in place of the organization, as it is (no copy); None empties it."""
        with self.lock:
            if org is None:
                self._orgs.pop(org_id, None)
            else:
                self._orgs[org_id] = org

    def replace_all(self, orgs: dict[str, Organization]) -> None:
        """Every organization at once, as given (no copy): what a restore or a load puts back."""
        with self.lock:
            self._orgs = dict(orgs)

    def contents(self) -> dict[str, dict[str, dict[str, dict]]]:
        """A deep copy of everything stored, as plain dicts (organization -> collection ->
        id -> item), whatever the layout: what shows that a refused request changed nothing."""
        with self.lock:
            return copy.deepcopy({org_id: {name: dict(c.items) for name, c in org.collections.items()}
                                  for org_id, org in self._orgs.items()})

    def snapshot(self) -> dict[str, Organization]:
        with self.lock:
            return copy.deepcopy(self._orgs)

    def restore(self, snapshot: dict[str, Organization]) -> None:
        with self.lock:
            self._orgs = copy.deepcopy(snapshot)

    def reset(self) -> None:
        with self.lock:
            self._orgs = {}
