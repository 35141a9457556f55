"""Handlers of the m3ter resources, bound to operationIds in ``registry``."""

from __future__ import annotations

from mockserver.domain import catalogue

import flask

from mockserver.backend import notifying

from .context import backend, caller, page, query_list
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


EVENT_FILTERS = ("accountId", "eventName", "eventType", "includeActioned", "notificationCode",
                 "notificationId", "resourceId")


def list_events(orgId, user, pageSize=None, nextToken=None, **query):
    filters = {name: query.get(name) for name in EVENT_FILTERS}
    filters["ids"] = query_list(query.get("ids"))
    items, token = backend().events.list(caller(orgId, user), filters, pageSize, nextToken)
    return page(items, token)


def get_event(orgId, id, user):
    return backend().events.get(caller(orgId, user), id)


def evaluate_calculation(orgId, user, body):
    return notifying.evaluate(backend(), caller(orgId, user), body["calculation"],
                              body.get("eventName"), body.get("eventId"))


def create_adhoc_export(orgId, user, body):
    return backend().exports.create_adhoc(caller(orgId, user), body)


JOB_FILTERS = ("scheduleId", "status", "dateCreatedStart", "dateCreatedEnd")


def list_export_jobs(orgId, user, pageSize=None, nextToken=None, **query):
    filters = {name: query.get(name) for name in JOB_FILTERS}
    filters["ids"] = query_list(query.get("ids"))
    items, token = backend().exports.list_jobs(caller(orgId, user), filters, pageSize, nextToken)
    return page(items, token)


def get_export_job(orgId, id, user):
    return backend().exports.get_job(caller(orgId, user), id)


def get_export_download_url(orgId, jobId, user):
    return backend().exports.download_url(caller(orgId, user), jobId, flask.request.host_url)
