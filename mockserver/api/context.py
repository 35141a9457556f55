"""What a handler needs from the running mock: the backend, the caller, and query
values in the shapes the SDKs send them."""

from __future__ import annotations

from flask import current_app

from mockserver.backend.core import Backend
from mockserver.backend.crud import Caller

BACKEND_SCOPE_KEY = "m3ter_mock.backend"
BACKEND_EXTENSION = "m3ter_mock"


def backend() -> Backend:
    return current_app.extensions[BACKEND_EXTENSION]


def caller(org_id: str, user: str) -> Caller:
    return Caller(org_id=org_id, client_id=user)


def query_list(values) -> list[str] | None:
    """An array query parameter: the SDKs send ``ids=a,b``; repeated keys arrive as a list."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    items = [part.strip() for value in values for part in str(value).split(",")]
    return [item for item in items if item] or None


def page(items: list[dict], next_token: str | None) -> dict:
    body: dict = {"data": items}
    if next_token:
        body["nextToken"] = next_token
    return body
