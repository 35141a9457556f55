"""Background threads that run work items at their due time on the mock's clock.

With a running clock they sleep until the next item is due; with a frozen clock they wait
until the clock is moved (the clock tells them), so tests drive time instead of sleeping.
``wait_idle`` lets a caller (the admin clock call, tests) wait until everything that is
due has run.

``DueWorker`` runs every item on one thread, in due order. ``LaneWorker`` gives each lane
(e.g. one webhook destination) its own ordered queue and runs different lanes at the same
time on a bounded number of threads, so one slow lane never delays the others.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Hashable

log = logging.getLogger("m3ter_mock")


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    item: Any = field(compare=False)


class _ClockQueue:
    """What both workers share: a heap of items by due time on the mock's clock, and the
    condition their threads wait on (woken when work is scheduled or the clock moves)."""

    def __init__(self, clock, name: str, handle: Callable[[Any], None]):
        self._clock = clock
        self._name = name
        self._handle = handle
        self._cond = threading.Condition()
        self._queue: list[_Due] = []  # not yet taken, by due time
        self._seq = itertools.count()
        self._stopping = False
        self._done_listeners: list[Callable[[], None]] = []
        clock.add_listener(lambda _now: self.wake())

    def add_done_listener(self, listener: Callable[[], None]) -> None:
        """Called (on the worker's thread) after each item has run, before the worker counts
        it finished: work done off any request changes state too (the state file saves it)."""
        self._done_listeners.append(listener)

    def _done(self) -> None:
        # Before the item counts as finished, so whoever waits for idle sees its effects heard.
        for listener in self._done_listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not stop the worker
                log.exception("%s worker: a done listener failed", self._name)

    def _discard_queued(self, drop: Callable[[Any], bool]) -> list:
        """With the condition held: remove the items not yet due-and-taken that ``drop``
        selects; returns them."""
        gone = [due.item for due in self._queue if drop(due.item)]
        if gone:
            self._queue = [due for due in self._queue if not drop(due.item)]
            heapq.heapify(self._queue)
        return gone

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def next_due_time(self) -> datetime | None:
        with self._cond:
            return self._queue[0].at if self._queue else None

    def _push(self, item: Any, at: datetime) -> None:
        heapq.heappush(self._queue, _Due(at, next(self._seq), item))

    def _has_due(self) -> bool:
        return bool(self._queue) and self._queue[0].at <= self._clock.now()

    def _sleep_seconds(self) -> float | None:
        if not self._queue or self._clock.frozen:
            return None  # woken by schedule() or by the clock moving
        return max(0.0, (self._queue[0].at - self._clock.now()).total_seconds())

    def _wait_until_due(self) -> bool:
        """With the condition held: wait until an item is due (True) or the worker stops."""
        while not self._stopping and not self._has_due():
            self._cond.wait(timeout=self._sleep_seconds())
        return not self._stopping


class DueWorker(_ClockQueue):
    """Every item on one thread, in due order."""

    def __init__(self, clock, name: str, handle: Callable[[Any], None]):
        super().__init__(clock, name, handle)
        self._in_flight = 0
        self._thread: threading.Thread | None = None

    def schedule(self, item: Any, at: datetime) -> None:
        with self._cond:
            self._push(item, at)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"m3ter-mock-{self._name}", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is due and nothing is running (True), or the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight == 0 and not self._has_due(), timeout)

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()

    def discard(self, drop: Callable[[Any], bool]) -> list:
        """Remove the items not yet started that ``drop`` selects (one organization's, say);
        returns them. What is running finishes."""
        with self._cond:
            gone = self._discard_queued(drop)
            self._cond.notify_all()
            return gone

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._wait_until_due():
                    return
                due = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._handle(due.item)
            except Exception:  # a bug in one item must not stop the worker
                log.exception("%s worker: an item failed", self._name)
            finally:
                self._done()
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()


class LaneWorker(_ClockQueue):
    """Items due on the clock, each in a lane: a lane runs its items one at a time in due
    order; up to ``max_lanes`` lanes run at once, and lanes beyond that wait their turn
    (a lane goes to the back of the line after each item, so none is starved).

    One dispatcher thread moves items that fall due into their lane; runner threads are
    started when lanes become runnable and end when none is left.
    """

    def __init__(self, clock, name: str, handle: Callable[[Any], None],
                 lane_of: Callable[[Any], Hashable], max_lanes: int):
        if max_lanes < 1:
            raise ValueError("max_lanes must be at least 1")
        super().__init__(clock, name, handle)
        self._lane_of = lane_of
        self._max_lanes = max_lanes
        self._ready: dict[Hashable, deque] = {}  # due, by lane, in due order
        self._runnable: deque = deque()  # lanes with ready items that no runner holds
        self._running: set = set()  # lanes a runner is working on
        self._runners = 0
        self._dispatcher: threading.Thread | None = None
        # Bumped by clear(): work that was in flight then can tell it belongs to the past.
        self.epoch = 0

    def schedule(self, item: Any, at: datetime, epoch: int | None = None) -> None:
        """Run ``item`` when the clock reaches ``at``; with ``epoch`` (read from
        ``self.epoch`` when the work began), only if clear() has not been called since."""
        with self._cond:
            if epoch is not None and epoch != self.epoch:
                return
            self._push(item, at)
            if self._dispatcher is None or not self._dispatcher.is_alive():
                self._dispatcher = threading.Thread(target=self._dispatch, daemon=True,
                                                    name=f"m3ter-mock-{self._name}")
                self._dispatcher.start()
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is due and nothing is running (True), or the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._running and not self._ready and not self._has_due(),
                                       timeout)

    def clear(self) -> None:
        """Drop everything not yet started; what is running finishes."""
        with self._cond:
            self._queue.clear()
            self._ready.clear()
            self._runnable.clear()
            self.epoch += 1
            self._cond.notify_all()

    def discard(self, drop: Callable[[Any], bool]) -> list:
        """Remove the items not yet started that ``drop`` selects, whether due or not; returns
        them. What is running finishes."""
        with self._cond:
            gone = self._discard_queued(drop)
            for lane in list(self._ready):
                waiting = self._ready[lane]
                gone += [item for item in waiting if drop(item)]
                kept = deque(item for item in waiting if not drop(item))
                if kept:
                    self._ready[lane] = kept
                else:
                    del self._ready[lane]
                    if lane in self._runnable:
                        self._runnable.remove(lane)
            self._cond.notify_all()
            return gone

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                if not self._wait_until_due():
                    return
                while self._has_due():
                    due = heapq.heappop(self._queue)
                    lane = self._lane_of(due.item)
                    waiting = self._ready.get(lane)
                    if waiting is None:
                        waiting = self._ready[lane] = deque()
                        if lane not in self._running:
                            self._runnable.append(lane)
                    waiting.append(due.item)
                idle = self._runners - len(self._running)
                for _ in range(min(self._max_lanes - self._runners, len(self._runnable) - idle)):
                    self._runners += 1
                    threading.Thread(target=self._run_lanes, daemon=True,
                                     name=f"m3ter-mock-{self._name}-lane").start()
                self._cond.notify_all()

    def _run_lanes(self) -> None:
        while True:
            with self._cond:
                if self._stopping or not self._runnable:
                    self._runners -= 1
                    self._cond.notify_all()
                    return
                lane = self._runnable.popleft()
                waiting = self._ready[lane]
                item = waiting.popleft()
                if not waiting:
                    del self._ready[lane]
                self._running.add(lane)
            try:
                self._handle(item)
            except Exception:  # a bug in one item must not stop its lane
                log.exception("%s worker: an item failed", self._name)
            finally:
                self._done()
                with self._cond:
                    self._running.discard(lane)
                    if lane in self._ready:
                        self._runnable.append(lane)
                    self._cond.notify_all()
