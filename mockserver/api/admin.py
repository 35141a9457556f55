"""Handlers of the admin API (``openapi/admin.yaml``), served under ``/_mock``.

The admin token and the waiting of ``wait=true`` are done before these run, in
``mockserver.api.middleware`` (so that no handler thread is held while waiting)."""

from __future__ import annotations

import base64
import binascii

import flask

from mockserver.backend.crud import Caller
from mockserver.backend.deliveries import ATTEMPTS
from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import ListScope

from .context import backend

DELIVERIES_PAGE_SIZE = 100  # the default; openapi/admin.yaml says so
_DELIVERIES_LIST = {"list": "admin-deliveries"}


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
    return event  # ``wait``: the middleware holds this answer back until the deliveries ran


def list_deliveries(orgId=None, wait=False, pageSize=None, nextToken=None):
    """Oldest first: an organization's attempts, or every organization's, one organization
    after the other (in the order they were first written to). ``wait`` was done by the
    middleware before this runs."""
    size = pageSize or DELIVERIES_PAGE_SIZE
    mock = backend()
    with mock.store.lock:
        if orgId:
            page, token = mock.paginate(ListScope(orgId, ATTEMPTS, _DELIVERIES_LIST),
                                        mock.store.peek(orgId, ATTEMPTS), _everything, size, nextToken)
        else:
            page, token = _every_orgs_deliveries(mock, size, nextToken)
        page = [dict(attempt) for attempt in page]
    answer = {"data": page}
    if token:
        answer["nextToken"] = token
    return answer


def _everything(_item) -> bool:
    return True


def _every_orgs_deliveries(mock, size: int, next_token: str | None):
    """Pages across organizations: the token is the organization the page stopped in plus
    a cursor of that organization's list (signed for that organization, so the two cannot
    be recombined)."""
    orgs = mock.store.org_ids()
    start, inner = 0, None
    if next_token:
        org_part, separator, inner = next_token.partition("~")
        try:
            org_id = base64.urlsafe_b64decode(org_part + "=" * (-len(org_part) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            org_id, separator = "", ""
        if not separator or not inner:
            raise MockError.bad_request("nextToken: not a token issued by this list")
        mock.cursors.decode(_all_orgs_scope(org_id), inner)  # 400 unless issued here
        if org_id not in orgs:
            return [], None  # the organization is gone (a reset): nothing follows
        start = orgs.index(org_id)
    page: list[dict] = []
    for index in range(start, len(orgs)):
        org_id = orgs[index]
        found, more = mock.paginate(_all_orgs_scope(org_id), mock.store.peek(org_id, ATTEMPTS), _everything,
                                    size - len(page), inner if index == start else None)
        page += found
        if more:
            return page, _all_orgs_token(org_id, more)
        if len(page) == size:
            # Full at the end of an organization: the next page starts at the next one
            # that has attempts, if any does.
            for later in orgs[index + 1:]:
                if len(mock.store.peek(later, ATTEMPTS)):
                    return page, _all_orgs_token(later, mock.cursors.encode(_all_orgs_scope(later), -1))
            return page, None
    return page, None


def _all_orgs_scope(org_id: str) -> ListScope:
    return ListScope(org_id, ATTEMPTS, {**_DELIVERIES_LIST, "orgs": "all"})


def _all_orgs_token(org_id: str, cursor: str) -> str:
    return base64.urlsafe_b64encode(org_id.encode()).rstrip(b"=").decode() + "~" + cursor


def reset_mock(orgId=None):
    if orgId is not None:
        backend().state.reset_organization(orgId)
        return {"message": f"organization {orgId!r} is empty"}
    backend().reset(keep_clock=True)
    return {"message": "every organization is empty"}


def disable_integration_config(orgId, id):
    return backend().integration_configs.disable(Caller(orgId, "m3ter-mock-admin"), id)


def admin_token_info(token, request=None):
    """Connexion's hook for the documented admin token schemes. The token itself is checked
    before routing (``mockserver.api.middleware``), so a request that gets here passed."""
    return {"sub": "m3ter-mock-admin"}


def download_export(token):
    name, content, media_type = backend().download(token)
    return flask.Response(content, status=200, mimetype=media_type,
                          headers={"Content-Disposition": f'attachment; filename="{name}"'})


def export_job_details(orgId, id):
    return backend().exports.job_details(Caller(orgId, "m3ter-mock-admin"), id)


def inject_export_fault(orgId, body):
    pending = backend().exports.inject_fault(orgId, body.get("scheduleId"), body.get("count", 1),
                                             body.get("message") or "fault injected through the admin API")
    return {"pendingFaults": pending}
