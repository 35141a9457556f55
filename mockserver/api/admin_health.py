"""``GET /_mock/health``: answered without the admin token (see ``openapi/admin.yaml``), so
it says only what any probe may know: that the mock answers, its version, and whether its
background work has settled."""

from __future__ import annotations

from mockserver import about
from mockserver.domain.clock import isoformat

from .context import backend


def get_health():
    workers = backend().workers()
    # No store lock is taken: a probe is answered even while a long call holds the store.
    idle = all(worker.wait_idle(0) for worker in workers)
    due = [t for t in (worker.next_due_time() for worker in workers) if t is not None]
    return {"status": "ok", "version": about.version(), "idle": idle,
            "nextDueAt": isoformat(min(due)) if due else None}


ADMIN_HANDLERS = {"GetHealth": get_health}
