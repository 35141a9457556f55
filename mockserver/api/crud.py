"""HTTP handlers for the five calls every CRUD resource has, built once per resource.

Each handler parses the request (path, query, body), calls the resource's service and
returns its result; the rules are in the service.
"""

from __future__ import annotations

from types import SimpleNamespace

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
