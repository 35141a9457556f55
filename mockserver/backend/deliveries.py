"""Webhook deliveries: background workers that POST fired notifications to their webhook
destinations, signed with the destination's M3TER_SIGNED_REQUEST credential, and retry
with exponential back-off on the mock's clock.

API requests only enqueue; the workers do the network I/O, never holding the store lock
while they wait on a receiver. Each destination (organization + destination id) is its
own lane: its attempts run in order, while other destinations' run at the same time, so
one slow receiver never delays another organization's deliveries. With a frozen clock a
retry waits until the clock is moved past its due time, so tests drive retries without
sleeping. Every attempt is recorded (see ``GET /_mock/deliveries``); after the last
failed attempt an ``integration.perform.error`` Event is recorded, which can fire
notifications in turn (except for deliveries that were themselves caused by one, so a
broken receiver cannot start an endless loop).

Every attempt is checked against the webhook policy (``mockserver.domain.webhook_policy``)
on the addresses its host resolves to *now*, and connects only to an address it checked,
so a name that is re-pointed after the destination was saved cannot reach a refused one.
It never connects to the mock's own listening addresses, and it carries the header
``X-m3ter-mock-delivery`` so the mock refuses it should it arrive there by another way.
An attempt has one deadline for all of it (connect, TLS, send and every read) and reads
at most ``delivery_max_response_bytes`` of the reply. A destination with ``max_waiting``
deliveries queued or in flight gets no more until it catches up (the extra ones are
recorded as failed), so a hung receiver cannot make the queue grow without bound.
"""

from __future__ import annotations

import base64
import errno
import json
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import httpcore
import httpx

from mockserver.domain import signing
from mockserver.domain.clock import isoformat
from mockserver.domain.delivery_policy import RetryPolicy
from mockserver.domain.webhook_policy import IPAddress, WebhookPolicy, is_own_address, parse_ip

from .worker import LaneWorker

ATTEMPTS = "deliveryattempts"
RUNS = "integrationruns"  # latest run per integration configuration, keyed by its id
DELIVERY_HEADER = "X-m3ter-mock-delivery"
MAX_LANES = 32
MAX_WAITING = 1000  # per destination

# What tenants see (the run status, the integration.perform.error Event) for any failure
# below HTTP: one message, so a delivery cannot tell a closed port from a silent one. The
# admin list of attempts keeps the detail.
NO_RESPONSE = "could not connect to the receiver, or it did not answer in time"
REFUSED = "refused by the webhook policy: "


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
    epoch: int
    attempts: int = 0
    first_started: str | None = None


class Refused(Exception):
    """The webhook policy refuses this destination; nothing was sent."""


class _TooLarge(Exception):
    """The reply reached the byte limit; the rest is left unread."""


@dataclass
class _Result:
    status_code: int | None = None
    error: str | None = None  # for the admin list of attempts
    public_error: str | None = None  # for the run status and the failure Event
    refused: bool = False


class DeliveryWorker:
    def __init__(self, backend, policy: RetryPolicy | None = None, timeout_seconds: float | None = None):
        self.backend = backend
        self.policy = policy or RetryPolicy()
        # None: follow backend.settings.delivery_timeout_seconds.
        self._timeout_seconds = timeout_seconds
        self._ssl_context: ssl.SSLContext | None = None
        self._webhook_policy: tuple[tuple[str, ...], WebhookPolicy] | None = None
        self.webhook_policy()  # a bad allow-list entry is a ValueError now, not at the first delivery
        # For harnesses that must not send anything (the contract suite): when set, it
        # answers every delivery (url, headers, body) -> status code, after the checks on
        # the URL's host and without resolving or connecting.
        self.local_answer: Callable[[str, dict[str, str], bytes], int] | None = None
        # Deliveries queued or in flight per destination, and the cap beyond which new ones
        # are dropped (recorded as failed) rather than queued.
        self.max_waiting = MAX_WAITING
        self._waiting: dict[tuple[str, str], int] = {}
        self._waiting_epoch = 0  # the queue's epoch the counts belong to
        self.queue = LaneWorker(backend.clock, "deliveries", self._attempt,
                                lane_of=lambda d: (d.org_id, d.destination_id), max_lanes=MAX_LANES)

    # -- configuration, read when used so the settings can change while serving ----------
    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The trust for https receivers (the certificate must match the URL's host name);
        made at the first https delivery, as loading the CA bundle is a start-up cost."""
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    @ssl_context.setter
    def ssl_context(self, context: ssl.SSLContext) -> None:
        self._ssl_context = context

    @property
    def timeout_seconds(self) -> float:
        if self._timeout_seconds is not None:
            return self._timeout_seconds
        return self.backend.settings.delivery_timeout_seconds

    def webhook_policy(self) -> WebhookPolicy:
        allow = tuple(self.backend.settings.webhook_allow)
        cached = self._webhook_policy
        if cached is None or cached[0] != allow:
            cached = self._webhook_policy = (allow, WebhookPolicy.from_allow_list(allow))
        return cached[1]

    @staticmethod
    def resolve(host: str, port: int) -> list[tuple[int, tuple]]:
        """(family, sockaddr) for each address of ``host``; replaceable in tests."""
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        return [(family, sockaddr) for family, _, _, _, sockaddr in found]

    # -- the queue ----------------------------------------------------------------------
    def enqueue(self, org_id: str, event: dict, config: dict, webhook: dict, *, after_failure: bool) -> None:
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        delivery = Delivery(id=str(uuid.uuid4()), org_id=org_id, event=event, config_id=config["id"],
                            destination_id=webhook["id"], url=webhook["url"], body=body,
                            after_failure=after_failure, epoch=self.queue.epoch)
        lane = (delivery.org_id, delivery.destination_id)
        with self.backend.store.lock:
            if self._waiting_epoch != delivery.epoch:  # reset since: the old counts are void
                self._waiting, self._waiting_epoch = {}, delivery.epoch
            waiting = self._waiting.get(lane, 0)
            if waiting >= self.max_waiting:
                self._drop(delivery, waiting)
                return
            self._waiting[lane] = waiting + 1
        self.queue.schedule(delivery, self.backend.clock.now(), epoch=delivery.epoch)

    def _drop(self, delivery: Delivery, waiting: int) -> None:
        """A destination that is this far behind (its receiver hangs or the tenant floods it)
        gets no more deliveries queued until it catches up, so the queue stays bounded."""
        now = self.backend.clock.now()
        message = f"dropped: {waiting} deliveries to this destination are already waiting"
        delivery.first_started = isoformat(now)
        self._record(delivery, now, now, _Result(error=message, public_error=message), "failed", None)
        if not delivery.after_failure:
            self._report_failure(delivery, None, message)

    def _attempt(self, delivery: Delivery) -> None:
        rescheduled = False
        try:
            rescheduled = self._attempt_once(delivery)
        finally:
            if not rescheduled:
                self._no_longer_waiting(delivery)

    def _no_longer_waiting(self, delivery: Delivery) -> None:
        with self.backend.store.lock:
            lane = (delivery.org_id, delivery.destination_id)
            if delivery.epoch == self._waiting_epoch and self._waiting.get(lane, 0) > 0:
                self._waiting[lane] -= 1
                if not self._waiting[lane]:
                    del self._waiting[lane]

    def discard(self, org_ids) -> None:
        """Drop the deliveries of these organizations that wait to be sent or retried (their
        state is being replaced: a restore, a reset of one organization). One on the wire
        finishes."""
        for delivery in self.queue.discard(lambda d: d.org_id in org_ids):
            self._no_longer_waiting(delivery)

    def _attempt_once(self, delivery: Delivery) -> bool:
        """One attempt; True when another is scheduled."""
        store = self.backend.store
        with store.lock:
            credentials = self.backend.webhooks.signing_credentials(delivery.org_id, delivery.destination_id)
        delivery.attempts += 1
        started = self.backend.clock.now()
        delivery.first_started = delivery.first_started or isoformat(started)
        if credentials is None:
            result = _Result(error="the webhook destination was deleted")
            result.public_error = result.error
        else:
            api_key, secret = credentials
            timestamp = str(int(started.timestamp() * 1000))
            headers = signing.signed_headers(secret, delivery.url, api_key, delivery.body, timestamp)
            result = self._send(delivery, headers)
        finished = self.backend.clock.now()

        status_code = result.status_code
        if self.policy.succeeded(status_code):
            outcome = "delivered"
        elif (credentials is not None and not result.refused
              and self.policy.should_retry(delivery.attempts, status_code)):
            outcome = "retrying"
        else:
            outcome = "failed"
        next_at = finished + self.policy.delay_after(delivery.attempts) if outcome == "retrying" else None
        with store.lock:
            if delivery.epoch != self.queue.epoch:
                return False  # the mock was reset while this attempt was on the wire
            self._record(delivery, started, finished, result, outcome, next_at)
            if next_at is not None:
                self.queue.schedule(delivery, next_at, epoch=delivery.epoch)
                return True
            if outcome == "failed" and not delivery.after_failure:
                self._report_failure(delivery, status_code, result.public_error)
            return False

    # -- one HTTP exchange ----------------------------------------------------------------
    def _send(self, delivery: Delivery, signed: dict[str, str]) -> _Result:
        deadline = time.monotonic() + self.timeout_seconds
        try:
            url = httpx.URL(delivery.url)
            host = url.raw_host.decode("ascii")  # pragma: no mutate  codec names ignore case
            port = url.port or (443 if url.scheme == "https" else 80)
            if self.local_answer is not None:
                reason = self.webhook_policy().check_host(host)
                if reason:
                    raise Refused(reason)
                return self._result(self.local_answer(delivery.url, signed, delivery.body))
            addresses = self._checked_addresses(host, port)
        except Refused as refusal:
            message = REFUSED + str(refusal)
            return _Result(error=message, public_error=message, refused=True)
        except (httpx.InvalidURL, UnicodeError, OSError) as problem:
            return _Result(error=_describe(problem), public_error=NO_RESPONSE)

        headers = [(b"Host", url.netloc), (b"User-Agent", b"m3ter-mock"), (b"Content-Type", b"application/json"),
                   (DELIVERY_HEADER.encode(), self.backend.instance_id.encode())]
        headers += [(k.encode(), v.encode()) for k, v in signed.items()]
        if url.username or url.password:  # as httpx sends credentials in the URL
            userinfo = f"{url.username}:{url.password}".encode()
            headers.append((b"Authorization", b"Basic " + base64.b64encode(userinfo)))
        target = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)
        limit = self.backend.settings.delivery_max_response_bytes
        backend = _PinnedBackend(addresses, deadline, limit)
        pool = httpcore.ConnectionPool(ssl_context=self.ssl_context, network_backend=backend,
                                       max_connections=1, retries=0)
        try:
            with pool:
                with pool.stream("POST", target, headers=headers, content=delivery.body) as response:
                    status = response.status
                    try:
                        for _ in response.iter_stream():
                            pass
                    except _TooLarge:
                        pass  # the status is known; the rest of the reply is not wanted
        except _TooLarge:
            return _Result(error=f"ReplyTooLarge: no status line and headers within {limit} bytes",
                           public_error=NO_RESPONSE)
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                httpcore.UnsupportedProtocol, OSError, ssl.SSLError) as problem:
            return _Result(error=_describe(problem), public_error=NO_RESPONSE)
        return self._result(status)

    def _result(self, status: int) -> _Result:
        result = _Result(status_code=status)
        if not self.policy.succeeded(status):
            result.error = result.public_error = f"HTTP {status}"
        return result

    def _checked_addresses(self, host: str, port: int) -> list[tuple[int, tuple]]:
        """The addresses ``host`` resolves to that a delivery may connect to. Refused when
        any of them is link-local / cloud metadata or the mock's own (a name that mixes
        them in is not trusted with the rest), or when none is in the allow list."""
        policy = self.webhook_policy()
        reason = policy.check_host(host)
        if reason:
            raise Refused(reason)
        literal = parse_ip(host)
        found = self.resolve(str(literal) if literal is not None else host, port)
        if not found:
            raise OSError(errno.EADDRNOTAVAIL, f"{host} has no address")
        own = list(self.backend.own_addresses)
        allowed, outside = [], None
        for family, sockaddr in found:
            address = parse_ip(sockaddr[0].split("%")[0])  # pragma: no mutate  IPv6Address reads a scope id itself; it differs only for a scoped address of the mock's own
            if address is None:
                raise Refused(f"{host} resolved to {sockaddr[0]!r}, which is not an IP address")
            reason = policy.refuses_address(address)
            if reason:
                raise Refused(reason)
            if is_own_address(address, port, own, _is_local_address):
                raise Refused(f"{host}:{port} is the mock's own address; deliveries may not call the mock")
            outside_reason = policy.outside_allow_list(host, address)
            if outside_reason:
                outside = outside or outside_reason
            else:
                allowed.append((family, sockaddr))
        if not allowed:
            raise Refused(outside)
        return allowed

    # -- records --------------------------------------------------------------------------
    def _record(self, delivery, started, finished, result: _Result, outcome, next_at) -> None:
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
            "statusCode": result.status_code,
            "error": result.error,
            "outcome": outcome,
            "startedAt": isoformat(started),
            "finishedAt": isoformat(finished),
            "nextAttemptAt": isoformat(next_at) if next_at else None,
        }
        run = {"status": {"delivered": "COMPLETE", "retrying": "AWAITING_RETRY", "failed": "ERROR"}[outcome],
               "dtStarted": delivery.first_started, "url": delivery.url}
        if outcome != "retrying":
            run["dtCompleted"] = isoformat(finished)
        if result.public_error:
            run["error"] = result.public_error
        store = self.backend.store
        with store.lock:
            attempts = store.collection(delivery.org_id, ATTEMPTS)
            attempts.put(attempt)
            attempts.trim(self.backend.settings.retain_delivery_attempts)
            store.collection(delivery.org_id, RUNS).put({"id": delivery.config_id, **run})

    def _report_failure(self, delivery: Delivery, status_code: int | None, error: str | None) -> None:
        notification = delivery.event["m3terEvent"]["notification"]
        self.backend.events.record(
            delivery.org_id, "integration.perform.error",
            new={"entityType": "Notification", "entityId": notification["id"], "destination": "Webhook",
                 "destinationId": delivery.destination_id, "integrationConfigId": delivery.config_id,
                 "url": delivery.url, "error": error, "attempts": delivery.attempts, "statusCode": status_code},
            resource_id=delivery.config_id)

    # -- reads --------------------------------------------------------------------------
    def attempts(self, org_id: str) -> list[dict]:
        """One organization's attempts, oldest first."""
        with self.backend.store.lock:
            return [dict(a) for a in self.backend.store.peek(org_id, ATTEMPTS).values()]

    def attempts_page(self, org_id: str, page_size: int, after: int | None = None) -> tuple[list[dict], int | None]:
        """One organization's attempts, oldest first: up to ``page_size`` of those recorded
        after position ``after`` (None: from the oldest kept), and the position to pass as
        ``after`` for the next page (None when this page is the last). Positions stay valid
        while older attempts are dropped by retention. Costs O(page_size)."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        store = self.backend.store
        last = after
        with store.lock:
            page: list[dict] = []
            for seq, attempt in store.peek(org_id, ATTEMPTS).scan(after):
                if len(page) == page_size:
                    return page, last
                page.append(dict(attempt))
                last = seq
            return page, None

    def last_run(self, org_id: str, config_id: str) -> dict | None:
        """The run of the configuration's latest delivery (its ``id`` is the configuration's)."""
        run = self.backend.store.peek(org_id, RUNS).get(config_id)
        return dict(run) if run else None


def _describe(problem: BaseException) -> str:
    return f"{type(problem).__name__}: {problem}" if str(problem) else type(problem).__name__


def _is_local_address(address: IPAddress) -> bool:
    """Whether ``address`` belongs to this host: binding to it succeeds only then (no
    packet is sent)."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
        return True
    except OSError:
        return False


# -- the network under one deadline ---------------------------------------------------------

class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to the addresses that were checked, whatever host httpcore asks for
    (it asks for the URL's host, which also goes into Host and TLS SNI, so certificates
    are still verified against the name)."""

    def __init__(self, addresses: list[tuple[int, tuple]], deadline: float, limit: int):
        self._addresses = addresses
        self._deadline = deadline
        self._limit = limit

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last: Exception | None = None
        for family, sockaddr in self._addresses:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise httpcore.ConnectTimeout("the attempt's deadline passed while connecting")
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(remaining)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(sockaddr)
            except socket.timeout as problem:
                sock.close()
                raise httpcore.ConnectTimeout(str(problem) or "timed out") from problem
            except OSError as problem:
                sock.close()
                last = problem
                continue
            return _DeadlineStream(sock, self._deadline, self._limit)
        raise httpcore.ConnectError(str(last) if last else "no address to connect to") from last

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never asked for
        raise httpcore.ConnectError("unix sockets are not used for deliveries")  # pragma: no mutate: never called

    def sleep(self, seconds: float) -> None:  # pragma: no cover - retries are off
        time.sleep(seconds)  # pragma: no mutate: never called (the pool makes no retries)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every operation gets only the time left until the attempt's
    deadline (httpcore's own timeouts are per operation, so a receiver that drips a byte
    at a time could hold an attempt for ever), and that reads at most ``limit`` bytes."""

    def __init__(self, sock: socket.socket, deadline: float, limit: int):
        self._sock = sock
        self._deadline = deadline
        self._left = limit

    def _remaining(self, timeout_error: type[Exception]) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:  # pragma: no mutate: "< 0" differs only when the clock lands on the deadline exactly
            raise timeout_error("the attempt's deadline passed")
        return remaining

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._left <= 0:
            raise _TooLarge()
        try:
            self._sock.settimeout(self._remaining(httpcore.ReadTimeout))
            data = self._sock.recv(min(max_bytes, self._left))
        except socket.timeout as problem:
            raise httpcore.ReadTimeout("the attempt's deadline passed while reading") from problem
        except OSError as problem:
            raise httpcore.ReadError(str(problem)) from problem
        self._left -= len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        try:
            while view:
                self._sock.settimeout(self._remaining(httpcore.WriteTimeout))
                sent = self._sock.send(view)
                view = view[sent:]
        except socket.timeout as problem:
            raise httpcore.WriteTimeout("the attempt's deadline passed while sending") from problem
        except OSError as problem:
            raise httpcore.WriteError(str(problem)) from problem

    def close(self) -> None:
        self._sock.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> "_DeadlineStream":
        try:
            # The handshake as a whole is bounded by the socket timeout (CPython applies it
            # as a deadline across the handshake's reads and writes).
            self._sock.settimeout(self._remaining(httpcore.ConnectTimeout))
            wrapped = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except socket.timeout as problem:
            self._sock.close()
            raise httpcore.ConnectTimeout("the attempt's deadline passed during the TLS handshake") from problem
        except (OSError, ssl.SSLError) as problem:
            self._sock.close()
            raise httpcore.ConnectError(str(problem)) from problem
        return _DeadlineStream(wrapped, self._deadline, self._left)

    def get_extra_info(self, info: str):
        if info == "ssl_object":
            return self._sock if isinstance(self._sock, ssl.SSLSocket) else None
        # Only "ssl_object" is asked for: the mock reads no response extension. Not "is_readable" (whether an idle kept-alive connection was closed by the server):
        # each pool makes one request and is closed with it, so no connection is ever reused.
        return None
