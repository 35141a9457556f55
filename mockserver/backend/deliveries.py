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

import json
import uuid
from dataclasses import dataclass

import httpx

from mockserver.domain import signing
from mockserver.domain.clock import isoformat
from mockserver.domain.delivery_policy import RetryPolicy

from .crud import Caller
from .worker import DueWorker

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


class DeliveryWorker:
    def __init__(self, backend, policy: RetryPolicy | None = None, timeout_seconds: float = 10.0):
        self.backend = backend
        self.policy = policy or RetryPolicy()
        self._http = httpx.Client(timeout=timeout_seconds, trust_env=False, follow_redirects=False)
        self.queue = DueWorker(backend.clock, "deliveries", self._attempt)

    def enqueue(self, caller: Caller, event: dict, config: dict, webhook: dict, *, after_failure: bool) -> None:
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        delivery = Delivery(id=str(uuid.uuid4()), org_id=caller.org_id, event=event, config_id=config["id"],
                            destination_id=webhook["id"], url=webhook["url"], body=body,
                            after_failure=after_failure)
        self.queue.schedule(delivery, self.backend.clock.now())

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
            self.queue.schedule(delivery, next_at)
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
