"""The request journal's admin calls (``/_mock/journal``): list, count, clear. The recording
itself is done by ``mockserver.api.middleware``; the entries and their redaction are
``mockserver.backend.journal`` and ``mockserver.domain.journal``."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from mockserver.domain.clock import from_iso, utc
from mockserver.domain.errors import MockError
from mockserver.domain.journal import JournalFilter
from mockserver.domain.pagination import ListScope

from .context import backend
from .middleware import RouteTable, compile_routes

PAGE_SIZE = 100  # the default; openapi/admin.yaml says so
_JOURNAL = "journal"


def operation_resolver(spec_paths: dict) -> Callable[[str, str], str | None]:
    """(method, path) -> the operationId that served it: the route the HTTP layer matches
    (the most specific template), when it has that method; otherwise None (an unknown path,
    a 405, OPTIONS)."""
    table = RouteTable(compile_routes(spec_paths))
    operations = {(template, method.upper()): operation["operationId"]
                  for template, item in spec_paths.items()
                  for method, operation in item.items()
                  if isinstance(operation, dict) and "operationId" in operation}

    def resolve(method: str, path: str) -> str | None:
        route = table.match(path)
        return None if route is None else operations.get((route.template, method))

    return resolve


def _instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return utc(from_iso(value))
    except ValueError:
        raise MockError.bad_request(f"{name}: {value[:60]!r} is not an ISO-8601 date-time") from None


def _selection(orgId, operationId, status, method, since, until) -> JournalFilter:
    try:
        return JournalFilter(org_id=orgId, operation_id=operationId, status=status, method=method,
                             since=_instant("since", since), until=_instant("until", until))
    except ValueError as exc:
        raise MockError.bad_request(str(exc)) from None


def list_journal(orgId=None, operationId=None, status=None, method=None, since=None, until=None,
                 pageSize=None, nextToken=None):
    mock = backend()
    selected = _selection(orgId, operationId, status, method, since, until)
    scope = ListScope(orgId or "", _JOURNAL, selected.fingerprint())
    after = mock.cursors.decode(scope, nextToken) if nextToken else None
    data, last = mock.journal.page(selected, pageSize or PAGE_SIZE, after)
    answer: dict = {"data": data}
    if last is not None:
        answer["nextToken"] = mock.cursors.encode(scope, last)
    return answer


def count_journal(orgId=None, operationId=None, status=None, method=None, since=None, until=None):
    selected = _selection(orgId, operationId, status, method, since, until)
    return {"count": backend().journal.count(selected)}


def clear_journal(orgId=None):
    return {"cleared": backend().journal.clear(orgId)}


ADMIN_HANDLERS = {
    "ListJournal": list_journal,
    "CountJournal": count_journal,
    "ClearJournal": clear_journal,
}
