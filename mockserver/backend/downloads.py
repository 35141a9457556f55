"""Download grants: the tokens behind every ``/_mock/downloads/{token}`` URL the mock hands
out (export files, bill statements and bills CSVs, Lookup Table data).

A grant records who issued it (``owner``), for which organization, what it refers to (an
opaque ``ref`` only its owner reads) and when it expires. Grants live in one collection of
the store's global space, since a URL's token is not tied to a path's organization. Memory
stays bounded: each issue first forgets expired grants from the oldest on, then the oldest
beyond ``retain_download_grants`` (in all). The token is a credential: it is never logged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from mockserver.domain.errors import MockError

GLOBAL = ""  # the store's global space
GRANTS = "downloads"
PATH = "/_mock/downloads/"
UNKNOWN = "this download URL is not valid or has expired; ask for a new one"


@dataclass(frozen=True)
class Grant:
    org_id: str
    owner: str
    ref: Any
    expires: datetime


class Issued(NamedTuple):
    url: str
    expires: datetime


def purge_expired(grants, now: datetime, keep: int) -> None:
    """Expired grants from the oldest on, then the oldest beyond ``keep``: O(1) amortized per
    grant. Grants expire roughly in the order they were made; one that outlives an older one
    (a longer lifetime, or the clock moved back) waits for that one, or goes with the cap."""
    while len(grants):
        oldest = next(grants.values())
        if now < oldest["_expires"]:
            break
        grants.remove(oldest["id"])
    grants.trim(keep)


def _spoken(lifetime: timedelta) -> str:
    minutes = int(lifetime.total_seconds()) // 60
    if minutes and minutes % 60 == 0:
        return "one hour" if minutes == 60 else f"{minutes // 60} hours"
    return "one minute" if minutes == 1 else f"{minutes} minutes"


class DownloadGrants:
    def __init__(self, backend):
        self.backend = backend

    def issue(self, org_id: str, owner: str, ref: Any, lifetime: timedelta, base_url: str) -> Issued:
        """A new URL for ``ref``, valid for ``lifetime`` on the mock's clock."""
        token = secrets.token_urlsafe(32)
        with self.backend.store.lock:
            now = self.backend.clock.now()
            expires = now + lifetime
            grants = self.backend.store.collection(GLOBAL, GRANTS)
            grants.put({"id": token, "orgId": org_id, "owner": owner, "ref": ref, "_expires": expires,
                        "_lifetime": lifetime})
            purge_expired(grants, now, self.backend.settings.retain_download_grants)
        return Issued(f"{base_url.rstrip('/')}{PATH}{token}", expires)

    def resolve(self, token: str) -> Grant | None:
        """The live grant of ``token``; None when it is unknown, forgotten or expired."""
        try:
            return self.open(token)
        except MockError:
            return None

    def open(self, token: str) -> Grant:
        """The live grant of ``token``, else a 403 saying whether it expired (while it is still
        remembered) or is not (or no longer) known."""
        with self.backend.store.lock:
            stored = self.backend.store.peek(GLOBAL, GRANTS).get(token)
            if stored is None:
                raise MockError(403, UNKNOWN)
            if self.backend.clock.now() >= stored["_expires"]:
                raise MockError(403, f"this download URL has expired (they last {_spoken(stored['_lifetime'])}); "
                                     "ask for a new one")
            return Grant(stored["orgId"], stored["owner"], stored["ref"], stored["_expires"])

    def kept(self) -> int:
        """How many grants are remembered (every organization, every owner)."""
        with self.backend.store.lock:
            return len(self.backend.store.peek(GLOBAL, GRANTS))
