"""Handlers of the admin API's snapshots (``openapi/admin.yaml``): thin, the rules are in
``mockserver.backend.state``."""

from __future__ import annotations

from .context import backend


def create_snapshot(body):
    return backend().state.take(body["name"], body.get("orgId")), 201


def list_snapshots():
    return {"data": backend().state.list()}


def restore_snapshot(name):
    return backend().state.restore(name)


def delete_snapshot(name):
    return backend().state.delete(name)


ADMIN_HANDLERS = {
    "CreateSnapshot": create_snapshot,
    "ListSnapshots": list_snapshots,
    "RestoreSnapshot": restore_snapshot,
    "DeleteSnapshot": delete_snapshot,
}
