"""A background thread that runs work items at their due time on the mock's clock.

With a running clock it sleeps until the next item is due; with a frozen clock it waits
until the clock is moved (the clock tells it), so tests drive time instead of sleeping.
``wait_idle`` lets a caller (the admin clock call, tests) wait until everything that is
due has run.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

log = logging.getLogger("m3ter_mock")


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    item: Any = field(compare=False)


class DueWorker:
    def __init__(self, clock, name: str, handle: Callable[[Any], None]):
        self._clock = clock
        self._name = name
        self._handle = handle
        self._cond = threading.Condition()
        self._queue: list[_Due] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        clock.add_listener(lambda _now: self.wake())

    def schedule(self, item: Any, at: datetime) -> None:
        with self._cond:
            heapq.heappush(self._queue, _Due(at, next(self._seq), item))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"m3ter-mock-{self._name}", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is due and nothing is running (True), or the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight == 0 and not self._has_due(), timeout)

    def next_due_time(self) -> datetime | None:
        with self._cond:
            return self._queue[0].at if self._queue else None

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _has_due(self) -> bool:
        return bool(self._queue) and self._queue[0].at <= self._clock.now()

    def _sleep_seconds(self) -> float | None:
        if not self._queue or self._clock.frozen:
            return None  # woken by schedule() or by the clock moving
        return max(0.0, (self._queue[0].at - self._clock.now()).total_seconds())

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._has_due():
                    self._cond.wait(timeout=self._sleep_seconds())
                if self._stopping:
                    return
                due = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._handle(due.item)
            except Exception:  # a bug in one item must not stop the worker
                log.exception("%s worker: an item failed", self._name)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()
