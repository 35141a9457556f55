"""HTTP handlers for the calls every CRUD resource has, built once per resource: by hand
for the resources with a module of their own, from the spec's ``x-mock`` for the others.

Each handler parses the request (path, query, body), calls the resource's service and
returns its result; the rules are in the service.
"""

from __future__ import annotations

from types import SimpleNamespace

from mockserver.backend.shapes import PAGING_PARAMETERS, Operation, mock_operations, scope_of
from mockserver.domain.errors import MockError

from .context import backend, caller, page, query_list


def list_handler(list_of, *, list_filters: tuple[str, ...] = (), array_filters: tuple[str, ...] = ("ids",)):
    """A list handler: picks the named filters out of the query (array ones split as the
    SDKs send them) and returns the page ``list_of(backend)(caller, filters, size, token)`` gives."""

    def list_(orgId, user, pageSize=None, nextToken=None, **query):
        filters = {name: query_list(query.get(name)) for name in array_filters}
        filters.update({name: query.get(name) for name in list_filters})
        items, token = list_of(backend())(caller(orgId, user), filters, pageSize, nextToken)
        return page(items, token)

    return list_


def crud_handlers(service_name: str, *, list_filters: tuple[str, ...] = (),
                  array_filters: tuple[str, ...] = ("ids",)) -> SimpleNamespace:
    def service():
        return getattr(backend(), service_name)

    list_ = list_handler(lambda b: getattr(b, service_name).list, list_filters=list_filters,
                         array_filters=array_filters)

    def create(orgId, user, body):
        return service().create(caller(orgId, user), body)

    def retrieve(orgId, id, user):
        return service().get(caller(orgId, user), id)

    def update(orgId, id, user, body):
        return service().update(caller(orgId, user), id, body)

    def delete(orgId, id, user):
        return service().delete(caller(orgId, user), id)

    return SimpleNamespace(list=list_, create=create, retrieve=retrieve, update=update, delete=delete)


# -- handlers built from the spec's x-mock ---------------------------------------------

try:  # how Connexion turns a parameter name into a keyword argument
    from connexion.decorators.parameter import sanitized as _argument_name
except ImportError:  # pragma: no cover - an older or newer Connexion
    def _argument_name(name: str) -> str:
        return name


def handler_for(op: Operation):
    """The handler of one ``x-mock`` operation. Connexion hands a ``**kwargs`` handler every
    path and query parameter (and ``body``, ``user``, ``token_info``) by keyword: the path
    parameters of the resource key are the parent scope, the last path parameter of an
    item operation the id, the query parameters other than paging the filters."""
    if op.action == "unimplemented":
        message = f"{op.method} {op.path} is not implemented by m3ter-mock yet: {op.reason or 'no reason given'}"

        def unimplemented(**_):
            raise MockError.not_implemented(message)

        unimplemented.x_mock = op
        return unimplemented

    scope_names = scope_of(op.resource)
    scope_args = tuple((name, _argument_name(name)) for name in scope_names)
    item_args = [p for p in op.path_parameters if p != "orgId" and p not in scope_names]
    id_arg = _argument_name(item_args[-1]) if item_args else None
    query_args = tuple((q, _argument_name(q.name)) for q in op.query_parameters
                       if q.name not in PAGING_PARAMETERS)
    action, key = op.action, op.resource

    def call(kwargs):
        service = backend().resources[key]
        who = caller(kwargs["orgId"], kwargs["user"])
        scope = {name: kwargs[arg] for name, arg in scope_args}
        if action == "list":
            filters = {}
            for q, arg in query_args:
                if q.name == "ids" or q.name in service.kind.filters:
                    value = kwargs.get(arg)
                    filters[q.name] = query_list(value) if q.is_array else value
            items, token = service.list(who, filters, kwargs.get("pageSize"), kwargs.get("nextToken"), scope)
            return page(items, token)
        if action == "create":
            return service.create(who, kwargs.get("body") or {}, scope)
        if action == "read":
            return service.read(who, scope)
        if action == "replace":
            return service.replace(who, kwargs.get("body") or {}, scope)
        entity_id = kwargs[id_arg]
        if action == "retrieve":
            return service.get(who, entity_id, scope)
        if action == "update":
            return service.update(who, entity_id, kwargs.get("body") or {}, scope)
        return service.delete(who, entity_id, scope)

    def handler(**kwargs):
        return call(kwargs)

    handler.__name__ = op.operation_id or action
    handler.x_mock = op  # what tells a built handler from a written one
    return handler


def handlers_from_spec(spec: dict) -> dict:
    """operationId -> handler, for every operation of ``spec`` that carries ``x-mock``."""
    return {op.operation_id: handler_for(op) for op in mock_operations(spec)}
