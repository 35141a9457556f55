"""Handlers of the admin API (``openapi/admin.yaml``), served under ``/_mock``."""

from __future__ import annotations

import flask

from mockserver.backend.crud import Caller
from mockserver.domain.clock import isoformat

from .context import backend


def _clock_view() -> dict:
    clock = backend().clock
    return {"now": isoformat(clock.now()), "frozen": clock.frozen}


def get_clock():
    return _clock_view()


def set_clock(body):
    backend().change_clock(freeze=body.get("freeze"), at=body.get("at"),
                           advance_seconds=body.get("advanceSeconds"))
    return _clock_view()


def inject_event(body, wait=False):
    event = backend().inject_event(body["orgId"], body["eventName"], new=body.get("newDto"),
                                   old=body.get("oldDto"), resource_id=body.get("resourceId"),
                                   account_id=body.get("accountId"))
    if wait:
        backend().run_due()
    return event


def list_deliveries(orgId=None, wait=False):
    if wait:
        backend().run_due()
    return {"data": backend().deliveries.attempts(orgId)}


def reset_mock():
    backend().reset(keep_clock=True)
    return {"message": "every organization is empty"}


def disable_integration_config(orgId, id):
    return backend().integration_configs.disable(Caller(orgId, "m3ter-mock-admin"), id)


def download_export(token):
    name, content, media_type = backend().exports.download(token)
    return flask.Response(content, status=200, mimetype=media_type,
                          headers={"Content-Disposition": f'attachment; filename="{name}"'})


def export_job_details(orgId, id):
    return backend().exports.job_details(Caller(orgId, "m3ter-mock-admin"), id)


def inject_export_fault(orgId, body):
    pending = backend().exports.inject_fault(orgId, body.get("scheduleId"), body.get("count", 1),
                                             body.get("message") or "fault injected through the admin API")
    return {"pendingFaults": pending}
