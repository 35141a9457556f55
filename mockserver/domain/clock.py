"""The one clock every time-based behaviour reads.

Real time by default. Tests (and users, through the admin API) can freeze it and move it
forward, so token expiry, webhook retry back-off and export schedules can be driven
without sleeping. Listeners are told after every advance so work that became due runs.
Time never goes backwards: released after being moved forward, the clock runs on from
where it stood (real time plus the distance it was moved).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Callable


def utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def from_iso(value: str) -> datetime:
    """``datetime.fromisoformat`` that also reads the zone letter in lower case, as RFC 3339
    (and the spec's date-time format) allow: ``2026-03-01T01:00:00z``. Naive stays naive."""
    if value.endswith("z"):
        value = value[:-1] + "Z"
    return datetime.fromisoformat(value)


def isoformat(dt: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, as m3ter writes timestamps."""
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Clock:
    def __init__(self, frozen_at: datetime | None = None):
        self._lock = threading.Lock()
        self._frozen_at = utc(frozen_at) if frozen_at else None
        self._offset = timedelta(0)  # how far ahead of real time a running clock is
        self._listeners: list[Callable[[datetime], None]] = []

    def now(self) -> datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return datetime.now(timezone.utc) + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def freeze(self, at: datetime | None = None) -> datetime:
        with self._lock:
            running_now = datetime.now(timezone.utc) + self._offset
            self._frozen_at = utc(at) if at else self._frozen_at or running_now
            return self._frozen_at

    def unfreeze(self) -> None:
        with self._lock:
            if self._frozen_at is None:
                return
            self._offset = self._frozen_at - datetime.now(timezone.utc)
            self._frozen_at = None
            now = self._frozen_at or datetime.now(timezone.utc) + self._offset
        self._notify(now)

    def advance(self, delta: timedelta) -> datetime:
        """Move a frozen clock forward (a running clock is frozen at now first)."""
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            base = self._frozen_at or datetime.now(timezone.utc) + self._offset
            self._frozen_at = base + delta
            now = self._frozen_at
        self._notify(now)
        return now

    def reset(self) -> None:
        """Back to real time (for a fresh start; this is the one way time can go back)."""
        with self._lock:
            self._frozen_at = None
            self._offset = timedelta(0)

    def set(self, at: datetime) -> datetime:
        """Freeze the clock at a later instant."""
        at = utc(at)
        current = self.now()
        if at < current:
            raise ValueError("the clock only moves forward")
        return self.advance(at - current)

    def add_listener(self, listener: Callable[[datetime], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, now: datetime) -> None:
        for listener in list(self._listeners):
            listener(now)
