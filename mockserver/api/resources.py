"""Handlers of the m3ter resources, bound to operationIds in ``registry``."""

from __future__ import annotations

from mockserver.domain import catalogue
from mockserver.domain.errors import MockError

from .context import backend, caller
from .crud import crud_handlers

compound_aggregations = crud_handlers("compound_aggregations", array_filters=("ids", "codes", "productId"))
export_destinations = crud_handlers("export_destinations")
export_schedules = crud_handlers("export_schedules")
notifications = crud_handlers("notifications", list_filters=("active", "eventName"))
webhooks = crud_handlers("webhooks")
integration_configs = crud_handlers("integration_configs", list_filters=("destinationId",), array_filters=())


def set_webhook_active(orgId, id, user, active=True):
    return backend().webhooks.set_active(caller(orgId, user), id, active)


def get_integration_config_run(orgId, id, user):
    return backend().integration_configs.get_run(caller(orgId, user), id)


def enable_integration_config(orgId, id, user):
    return backend().integration_configs.enable(caller(orgId, user), id)


def get_integration_config_for_entity(orgId, entityType, user, entityId=None, destination=None,
                                      destinationId=None, pageSize=None, nextToken=None):
    return backend().integration_configs.get_for_entity(
        caller(orgId, user), entityType, entityId, destination, destinationId)


def list_event_types(orgId, user):
    return {"events": list(catalogue.EVENT_TYPES)}


def list_event_fields(orgId, user, eventName=None):
    names = [eventName] if eventName is not None else catalogue.EVENT_TYPES
    return {"events": {name: catalogue.fields_for(name) for name in names}}


def not_implemented(what: str):
    def handler(**_):
        raise MockError.not_implemented(
            f"{what} is not implemented by m3ter-mock yet; see the README's list of what the mock serves"
        )

    handler.__name__ = f"not_implemented_{what.replace(' ', '_')}"
    return handler
