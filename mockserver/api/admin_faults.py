"""Handlers of the fault rules of the admin API (``/_mock/faults``); the faults themselves
are injected by ``mockserver.api.faults`` before a request reaches any handler."""

from __future__ import annotations

from .context import backend


def create_fault(body):
    return backend().faults.create(body)


def list_faults(orgId=None):
    return {"data": backend().faults.list(orgId)}


def get_fault(id):
    return backend().faults.get(id)


def delete_fault(id):
    return backend().faults.delete(id)


def clear_faults():
    return {"cleared": backend().faults.clear()}


ADMIN_HANDLERS = {
    "CreateFault": create_fault,
    "ListFaults": list_faults,
    "GetFault": get_fault,
    "DeleteFault": delete_fault,
    "ClearFaults": clear_faults,
}
