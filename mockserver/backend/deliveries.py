"""Webhook deliveries: a background worker that POSTs fired notifications to their webhook
destinations, signed with the destination's M3TER_SIGNED_REQUEST credential, and retries
with exponential back-off on the mock's clock.

API requests only enqueue; the worker does the network I/O, never holding the store lock
while it waits on a receiver. With a frozen clock a retry waits until the clock is moved
past its due time, so tests drive retries without sleeping. Every attempt is recorded
(see ``GET /_mock/deliveries``); after the last failed attempt an
``integration.perform.error`` Event is recorded, which can fire notifications in turn
(except for deliveries that were themselves caused by one, so a broken receiver cannot
start an endless loop).
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from mockserver.domain import signing
from mockserver.domain.clock import isoformat
from mockserver.domain.delivery_policy import RetryPolicy

from .crud import Caller

ATTEMPTS = "deliveryattempts"
RUNS = "integrationruns"  # latest run per integration configuration, keyed by its id


@dataclass
class Delivery:
    id: str
    org_id: str
    event: dict
    config_id: str
    destination_id: str
    url: str
    body: bytes
    after_failure: bool
    attempts: int = 0
    first_started: str | None = None


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    delivery: Delivery = field(compare=False)


class DeliveryWorker:
    def __init__(self, backend, policy: RetryPolicy | None = None, timeout_seconds: float = 10.0):
        self.backend = backend
        self.policy = policy or RetryPolicy()
        self._http = httpx.Client(timeout=timeout_seconds, trust_env=False, follow_redirects=False)
        self._cond = threading.Condition()
        self._queue: list[_Due] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        backend.clock.add_listener(lambda _now: self.wake())

    # -- producer side ------------------------------------------------------------------
    def enqueue(self, caller: Caller, event: dict, config: dict, webhook: dict, *, after_failure: bool) -> None:
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        delivery = Delivery(id=str(uuid.uuid4()), org_id=caller.org_id, event=event, config_id=config["id"],
                            destination_id=webhook["id"], url=webhook["url"], body=body,
                            after_failure=after_failure)
        self._schedule(delivery, self.backend.clock.now())

    def _schedule(self, delivery: Delivery, at: datetime) -> None:
        with self._cond:
            heapq.heappush(self._queue, _Due(at, next(self._seq), delivery))
            self._ensure_thread()
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is due and nothing is being sent (True), or the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight == 0 and self._next_due() is None, timeout)

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
        self._http.close()

    # -- worker side --------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="m3ter-mock-deliveries", daemon=True)
            self._thread.start()

    def _next_due(self) -> _Due | None:
        if self._queue and self._queue[0].at <= self.backend.clock.now():
            return self._queue[0]
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and self._next_due() is None:
                    self._cond.wait(timeout=self._sleep_seconds())
                if self._stopping:
                    return
                due = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._attempt(due.delivery)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _sleep_seconds(self) -> float | None:
        if not self._queue or self.backend.clock.frozen:
            return None  # woken by enqueue or by the clock moving
        return max(0.0, (self._queue[0].at - self.backend.clock.now()).total_seconds())

    def _attempt(self, delivery: Delivery) -> None:
        store = self.backend.store
        with store.lock:
            credentials = self.backend.webhooks.signing_credentials(Caller(delivery.org_id, ""), delivery.destination_id)
        delivery.attempts += 1
        started = self.backend.clock.now()
        delivery.first_started = delivery.first_started or isoformat(started)
        status_code, error = None, None
        if credentials is None:
            error = "the webhook destination was deleted"
        else:
            api_key, secret = credentials
            timestamp = str(int(started.timestamp() * 1000))
            headers = signing.signed_headers(secret, delivery.url, api_key, delivery.body, timestamp)
            try:
                response = self._http.post(delivery.url, content=delivery.body, headers=headers)
                status_code = response.status_code
                if not self.policy.succeeded(status_code):
                    error = f"HTTP {status_code}"
            except httpx.HTTPError as problem:
                error = f"{type(problem).__name__}: {problem}" if str(problem) else type(problem).__name__
        finished = self.backend.clock.now()

        if self.policy.succeeded(status_code):
            outcome = "delivered"
        elif credentials is not None and self.policy.should_retry(delivery.attempts, status_code):
            outcome = "retrying"
        else:
            outcome = "failed"
        next_at = finished + self.policy.delay_after(delivery.attempts) if outcome == "retrying" else None
        self._record(delivery, started, finished, status_code, error, outcome, next_at)
        if next_at is not None:
            self._schedule(delivery, next_at)
        elif outcome == "failed" and not delivery.after_failure:
            self._report_failure(delivery, status_code, error)

    def _record(self, delivery, started, finished, status_code, error, outcome, next_at) -> None:
        attempt = {
            "id": str(uuid.uuid4()),
            "deliveryId": delivery.id,
            "orgId": delivery.org_id,
            "eventId": delivery.event["id"],
            "eventName": delivery.event["eventName"],
            "notificationId": delivery.event["m3terEvent"]["notification"]["id"],
            "integrationConfigId": delivery.config_id,
            "destinationId": delivery.destination_id,
            "url": delivery.url,
            "attempt": delivery.attempts,
            "statusCode": status_code,
            "error": error,
            "outcome": outcome,
            "startedAt": isoformat(started),
            "finishedAt": isoformat(finished),
            "nextAttemptAt": isoformat(next_at) if next_at else None,
        }
        run = {"status": {"delivered": "COMPLETE", "retrying": "AWAITING_RETRY", "failed": "ERROR"}[outcome],
               "dtStarted": delivery.first_started, "url": delivery.url}
        if outcome != "retrying":
            run["dtCompleted"] = isoformat(finished)
        if error:
            run["error"] = error
        with self.backend.store.lock:
            self.backend.store.collection(delivery.org_id, ATTEMPTS).put(attempt)
            self.backend.store.collection(delivery.org_id, RUNS).put({"id": delivery.config_id, **run})

    def _report_failure(self, delivery: Delivery, status_code: int | None, error: str | None) -> None:
        notification = delivery.event["m3terEvent"]["notification"]
        self.backend.events.record(
            delivery.org_id, "integration.perform.error",
            new={"entityType": "Notification", "entityId": notification["id"], "destination": "Webhook",
                 "destinationId": delivery.destination_id, "integrationConfigId": delivery.config_id,
                 "url": delivery.url, "error": error, "attempts": delivery.attempts, "statusCode": status_code},
            resource_id=delivery.config_id)

    # -- reads --------------------------------------------------------------------------
    def attempts(self, org_id: str | None = None) -> list[dict]:
        store = self.backend.store
        with store.lock:
            orgs = [org_id] if org_id else store.org_ids()
            return [dict(a) for o in orgs for a in store.peek(o, ATTEMPTS).values()]

    def last_run(self, org_id: str, config_id: str) -> dict | None:
        run = self.backend.store.peek(org_id, RUNS).get(config_id)
        return {k: v for k, v in run.items() if k != "id"} if run else None
