"""The lenient mode's answer for actions (``m3ter-mock serve --lenient``; see
``mockserver/backend/lenient.py`` for stored entities).

A stored entity is always served by the engine, with the prose-only rules relaxed. An action
(approve bills, cancel a job, search, preview, the usage query...) is served by its handler
too; when the handler refuses for a rule of the mock's own (a 400, 404 or 409 it raised:
the request has already passed the spec's validation, so the spec does not state that rule),
the lenient mode answers as Prism would instead: the operation's success status with a
generated, schema-valid body, the same one for the same organization, operation and path.
Nothing is changed by such an answer (the refused handler wrote nothing).
"""

from __future__ import annotations

import functools
from typing import Callable

from mockserver.backend.lenient import success_schema
from mockserver.backend.shapes import METHODS, ORG_PREFIX
from mockserver.domain.errors import MockError

from .context import backend

# A refusal for one of the mock's own rules; 401/403 (who may call) and 413/415/431 (the
# request's form) are never answered this way.
RELAXED_STATUSES = frozenset({400, 404, 409})


def crud_operations(spec: dict, resource_keys) -> set[str]:
    """operationIds of the generic engine's calls on stored entities: list/create on a
    resource's collection path, retrieve/update/delete on its item path (one parameter
    more), read/replace of a singleton."""
    shapes = set()
    for key in resource_keys:
        base = ORG_PREFIX + key
        shapes |= {("get", base), ("post", base), ("put", base)}
        shapes.add(("item", base))
    found = set()
    for path, item in spec.get("paths", {}).items():
        parent, _, last = path.rpartition("/")
        for method, operation in item.items():
            if method not in METHODS or not isinstance(operation, dict):
                continue
            if (method, path) in shapes or (
                    method in ("get", "put", "delete") and last.startswith("{") and ("item", parent) in shapes):
                found.add(operation.get("operationId"))
    return found


def lenient_resolver(resolve: Callable[[str], Callable], spec: dict, resource_keys) -> Callable[[str], Callable]:
    """``resolve`` with every action's handler wrapped so that a refusal for one of the
    mock's own rules is answered with a generated success body."""
    from .actions import HANDLERS as ACTIONS  # here: the action modules import this package

    # An action module's handler on an entity's path (a bill job's create...) is an action.
    crud = crud_operations(spec, resource_keys) - set(ACTIONS)
    operations = {operation.get("operationId"): (path, operation)
                  for path, item in spec.get("paths", {}).items()
                  for method, operation in item.items()
                  if method in METHODS and isinstance(operation, dict)}

    def resolver(operation_id: str) -> Callable:
        handler = resolve(operation_id)
        if operation_id in crud or operation_id not in operations:
            return handler
        path, operation = operations[operation_id]
        status, schema = _success(spec, operation)
        if schema is None:
            return handler
        path_parameters = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        return _answering(handler, operation_id, path_parameters, status, schema)

    return resolver


def _answering(handler: Callable, operation_id: str, path_parameters: list[str], status: int, schema) -> Callable:
    @functools.wraps(handler)  # Connexion reads the handler's own parameters through __wrapped__
    def answering(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except MockError as exc:
            if exc.status not in RELAXED_STATUSES:
                raise
            seed = [operation_id] + [f"{name}={kwargs.get(name, '')}" for name in path_parameters]
            body = backend().lenient.answer(schema, *seed)
            if isinstance(body, dict):
                body.pop("nextToken", None)  # a generated page is the last: a client's paging stops there
            return body, status

    return answering


def _success(spec: dict, operation: dict) -> tuple[int, object]:
    for code in sorted(operation.get("responses", {}), key=str):
        if str(code).startswith("2") and str(code).isdigit():
            return int(code), success_schema(spec, operation)
    return 200, None
