"""The mock served in this process, for a test suite: what the pytest plugin
(``mockserver/pytest_plugin.py``) is made of, usable without pytest too.

* ``serve_in_thread(app)`` serves an app over real HTTP on a free loopback port, in a thread,
  until the block ends.
* ``MockServer(settings)`` builds a mock and serves it that way; it knows a client id and
  secret that get a token.
* ``server.organization()`` is one test's organization on it: a fresh id, and wrappers over
  the backend for the clock, the request journal, snapshots and fault rules. Closing it puts
  back what the test changed of the shared server (see ``MockOrganization.close``).

    with MockServer() as mock, mock.organization() as org, org.sdk() as client:
        client.products.create(name="Storage", code="storage")
        assert org.journal.count("PostProduct") == 1

The web stack and the m3ter SDK are imported when first needed, so importing this module is cheap.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from mockserver.backend.core import Backend
    from mockserver.settings import Settings

__all__ = ["MockServer", "MockOrganization", "ClockControl", "JournalView", "Snapshots", "Faults",
           "serve_in_thread"]

# Seconds to wait for the server thread to listen (a start-up, not a test's wait).
_START_SECONDS = 10


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` (any ASGI app) on a free port of ``host`` in a daemon thread; yields its
    base URL (``http://127.0.0.1:PORT``) and stops the server when the block ends."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"m3ter-mock {host}:{port}")
    thread.start()
    deadline = time.monotonic() + _START_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the mock did not start serving on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        # The mock learns the addresses it is served on and never delivers to them; once this
        # server is gone its port may go to a test's webhook receiver, which must be reachable.
        backend = getattr(app, "backend", None)
        if backend is not None:
            backend.own_addresses.discard((host, port))


class MockServer:
    """A mock built from ``settings`` (default: ``Settings()``, any client id and secret get a
    token) and served on a free port of ``host``; ``start()``/``stop()`` or a ``with`` block.

    ``client_id``/``client_secret`` get a token: with no clients configured, a pair made up
    for this server; otherwise the first configured client allowed every organization (or
    the first one)."""

    def __init__(self, settings: "Settings | None" = None, *, host: str = "127.0.0.1"):
        if settings is None:
            from mockserver.settings import Settings

            settings = Settings()
        self.settings = settings
        self.host = host
        self.app = None
        self.url: str | None = None
        self._serving = None
        clients = settings.clients
        if clients:
            chosen = next((c for c in clients if c.orgs is None), clients[0])
            self.client_id, self.client_secret = chosen.client_id, chosen.secret
        else:
            self.client_id, self.client_secret = "m3ter-mock-test", secrets.token_urlsafe(18)
        self.clock = None

    # -- life ----------------------------------------------------------------------------
    def start(self) -> "MockServer":
        if self._serving is not None:
            return self
        from mockserver.app import create_app

        self.app = create_app(self.settings)
        serving = serve_in_thread(self.app, self.host)
        self.url = serving.__enter__()
        self._serving = serving
        self.clock = ClockControl(self.backend)
        return self

    def stop(self) -> None:
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.__exit__(None, None, None)
            self.backend.state.close()

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what a test uses ------------------------------------------------------------------
    @property
    def backend(self) -> "Backend":
        if self.app is None:
            raise RuntimeError("the mock server is not started")
        return self.app.backend

    @property
    def admin_headers(self) -> dict[str, str]:
        """What a call of the admin API (``/_mock``) carries: the admin token, when there is one."""
        token = self.settings.admin_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def token(self) -> str:
        """A bearer token for ``client_id``, from the mock's token endpoint."""
        import httpx

        response = httpx.post(f"{self.url}/oauth/token", json={"grant_type": "client_credentials"},
                              auth=(self.client_id, self.client_secret), timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer …`` for a call of the m3ter API."""
        return {"Authorization": f"Bearer {self.token()}"}

    def sdk(self, org_id: str, **options: Any):
        """The official m3ter SDK (``pip install m3ter``) bound to this server and ``org_id``;
        ``options`` go to ``m3ter.M3ter`` (``max_retries=0``...). Close it, or use it in a ``with``."""
        try:
            import m3ter
        except ImportError:
            raise ModuleNotFoundError("an SDK client needs the official m3ter SDK: pip install m3ter",
                                      name="m3ter") from None
        return m3ter.M3ter(base_url=self.url, api_key=self.client_id, api_secret=self.client_secret,
                           org_id=org_id, **options)

    @staticmethod
    def new_org_id() -> str:
        """An organization id no test has used (a UUID, as m3ter's are)."""
        return str(uuid.uuid4())

    def organization(self, org_id: str | None = None) -> "MockOrganization":
        """One test's organization (a fresh one unless ``org_id`` is given)."""
        return MockOrganization(self, org_id or self.new_org_id())


class MockOrganization:
    """One test's organization on a shared ``MockServer``, and the controls a test uses.

    ``close()`` (or the end of the ``with`` block) empties the organization and drops its
    queued work and journal entries, deletes the fault rules and snapshots made since it was
    opened, and puts the clock back as it was: frozen where it stood, or running on real time."""

    def __init__(self, server: MockServer, org_id: str):
        self.server = server
        self.org_id = org_id
        backend = server.backend
        self.clock: ClockControl = server.clock
        self.journal = JournalView(backend, org_id)
        self.snapshots = Snapshots(backend, org_id)
        self.faults = Faults(backend, org_id)
        self._rules_before = {rule["id"] for rule in backend.faults.list()}
        self._snapshots_before = {s["name"] for s in backend.state.list()}
        self._frozen_at = backend.clock.now() if backend.clock.frozen else None
        self._closed = False

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def backend(self) -> "Backend":
        return self.server.backend

    @property
    def app(self):
        return self.server.app

    @property
    def client_id(self) -> str:
        return self.server.client_id

    @property
    def client_secret(self) -> str:
        return self.server.client_secret

    @property
    def api_url(self) -> str:
        """The base of this organization's m3ter API: ``{url}/organizations/{org_id}``."""
        return f"{self.server.url}/organizations/{self.org_id}"

    def headers(self) -> dict[str, str]:
        return self.server.headers()

    def sdk(self, **options: Any):
        """The official m3ter SDK bound to this organization (see ``MockServer.sdk``)."""
        return self.server.sdk(self.org_id, **options)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        backend = self.server.backend
        for rule in backend.faults.list():
            if rule["id"] not in self._rules_before:
                backend.faults.delete(rule["id"])
        backend.state.reset_organization(self.org_id)
        backend.journal.clear(self.org_id)
        for snapshot in backend.state.list():
            if snapshot["name"] not in self._snapshots_before:
                backend.state.delete(snapshot["name"])
        # The clock is the server's; time goes back only through a reset.
        backend.clock.reset()
        if self._frozen_at is not None:
            backend.clock.freeze(self._frozen_at)

    def __enter__(self) -> "MockOrganization":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ClockControl:
    """The mock's one clock (shared by every organization), over the backend's methods: what
    ``POST /_mock/clock`` does. Moving it runs what falls due on the way, in order, before the
    call returns; it only moves forward."""

    def __init__(self, backend: "Backend"):
        self._backend = backend

    @property
    def now(self) -> datetime:
        return self._backend.clock.now()

    @property
    def frozen(self) -> bool:
        return self._backend.clock.frozen

    def freeze(self, at: datetime | str | None = None) -> datetime:
        """Stop the clock, at ``at`` (a datetime, naive meaning UTC, or ISO-8601 text; even in
        the past) or where it stands."""
        self._backend.change_clock(freeze=True, at=at)
        return self.now

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        """Move the clock forward by ``seconds`` plus ``timedelta`` keywords (``hours=1``,
        ``days=31``); a running clock is frozen first. Returns the new time."""
        step = timedelta(seconds=seconds, **delta)
        if step < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._backend.change_clock(advance_seconds=step.total_seconds())
        return self.now

    def advance_to(self, at: datetime | str) -> datetime:
        """Move the clock forward to ``at`` (not before now)."""
        self._backend.change_clock(at=at)
        return self.now

    def run_due(self) -> None:
        """Wait until the work due by the clock (deliveries, exports, bill jobs) has run."""
        self._backend.run_due()

    def unfreeze(self) -> None:
        """Let the clock run again from where it stands."""
        self._backend.change_clock(freeze=False)


class JournalView:
    """The request journal of one organization (the calls whose path names it; the token call
    names none). Entries are dicts as ``GET /_mock/journal`` shows them, oldest first."""

    def __init__(self, backend: "Backend", org_id: str):
        self._backend = backend
        self.org_id = org_id

    def _filter(self, operation_id, status, method):
        from mockserver.domain.journal import JournalFilter

        return JournalFilter(org_id=self.org_id, operation_id=operation_id,
                             status=None if status is None else str(status), method=method)

    def entries(self, operation_id: str | None = None, *, status: int | str | None = None,
                method: str | None = None) -> list[dict]:
        """The recorded calls, filtered by operationId (``PostProduct``), status (``404`` or
        ``"4xx"``) and method."""
        selected = self._filter(operation_id, status, method)
        found, after = [], None
        while True:
            page, after = self._backend.journal.page(selected, 1000, after)
            found += page
            if after is None:
                return found

    def count(self, operation_id: str | None = None, *, status: int | str | None = None,
              method: str | None = None) -> int:
        return self._backend.journal.count(self._filter(operation_id, status, method))

    def operations(self) -> list[str | None]:
        """The operationId of each call, in order (None for a path the API does not have)."""
        return [entry["operationId"] for entry in self.entries()]

    def counts(self) -> Counter:
        """How many calls of each operationId."""
        return Counter(self.operations())

    def statuses(self, operation_id: str | None = None) -> list[int | None]:
        """The status of each call (of one operation), in order; None for a dropped connection."""
        return [entry["status"] for entry in self.entries(operation_id)]

    def clear(self) -> int:
        return self._backend.journal.clear(self.org_id)


class Snapshots:
    """Named snapshots of one organization (``POST /_mock/snapshots`` with its ``orgId``).
    Names are the server's, shared by every organization."""

    def __init__(self, backend: "Backend", org_id: str):
        self._backend = backend
        self.org_id = org_id

    def take(self, name: str) -> dict:
        """Snapshot the organization (a snapshot of that name is replaced)."""
        return self._backend.state.take(name, self.org_id)

    def restore(self, name: str) -> dict:
        return self._backend.state.restore(name)

    def delete(self, name: str) -> dict:
        return self._backend.state.delete(name)

    def list(self) -> list[dict]:
        """This organization's snapshots, oldest first."""
        return [s for s in self._backend.state.list() if s.get("orgId") == self.org_id]


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


class Faults:
    """Fault rules for one organization (``POST /_mock/faults`` with its ``orgId``)."""

    def __init__(self, backend: "Backend", org_id: str):
        self._backend = backend
        self.org_id = org_id

    def add(self, operation_id: str | None = None, *, action: str | None = None, **fields: Any) -> dict:
        """Add a rule for this organization; the answer is the rule with its ``id``.
        ``fields`` are the rule's, in Python spelling: ``status``, ``retry_after``, ``message``,
        ``delay_seconds``, ``times``, ``probability``, ``seed``, ``body_field``, ``body_equals``.
        ``action`` defaults to ``"status"`` when a status is given, else ``"delay"`` when a
        delay is."""
        if action is None:
            action = "status" if "status" in fields else "delay" if "delay_seconds" in fields else None
        body: dict[str, Any] = {"orgId": self.org_id, "action": action}
        if operation_id is not None:
            body["operationId"] = operation_id
        body.update((_camel(key), value) for key, value in fields.items())
        return self._backend.faults.create(body)

    def list(self) -> list[dict]:
        """This organization's rules, in the order they are tried, with their counts."""
        return self._backend.faults.list(self.org_id)

    def get(self, rule_id: str) -> dict:
        return self._backend.faults.get(rule_id)

    def delete(self, rule_id: str) -> dict:
        return self._backend.faults.delete(rule_id)

    def clear(self) -> int:
        """Delete this organization's rules; returns how many went."""
        rules = self.list()
        for rule in rules:
            self._backend.faults.delete(rule["id"])
        return len(rules)
