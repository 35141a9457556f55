"""Handlers of the m3ter resources, bound to operationIds in ``registry``."""

from __future__ import annotations

from mockserver.domain import catalogue

import flask

from mockserver.backend import notifying

from .context import backend, caller
from .crud import crud_handlers, list_handler

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


list_events = list_handler(lambda b: b.events.list, list_filters=(
    "accountId", "eventName", "eventType", "includeActioned", "notificationCode", "notificationId", "resourceId"))


def get_event(orgId, id, user):
    return backend().events.get(caller(orgId, user), id)


def evaluate_calculation(orgId, user, body):
    return notifying.evaluate(backend(), caller(orgId, user), body["calculation"],
                              body.get("eventName"), body.get("eventId"))


def create_adhoc_export(orgId, user, body):
    return backend().exports.create_adhoc(caller(orgId, user), body)


list_export_jobs = list_handler(lambda b: b.exports.list_jobs,
                                list_filters=("scheduleId", "status", "dateCreatedStart", "dateCreatedEnd"))


def get_export_job(orgId, id, user):
    return backend().exports.get_job(caller(orgId, user), id)


def get_export_download_url(orgId, jobId, user):
    return backend().exports.download_url(caller(orgId, user), jobId, flask.request.host_url)
