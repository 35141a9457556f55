"""operationId (as m3ter names it) -> handler. Connexion resolves every operation of the
spec through this table, so an operation without a handler fails at start-up.

The hand-written handlers are in HANDLERS and in the action modules (``actions``); every
other operation of the spec that carries ``x-mock`` gets a handler built from it
(``crud.handlers_from_spec``). A written handler wins over an ``x-mock``."""

from __future__ import annotations

from . import admin, oauth
from . import admin_faults
from . import admin_health
from . import admin_journal
from . import admin_seed
from . import admin_state
from . import resources as r
from .actions import access as access_actions, platform as platform_actions
from .crud import handlers_from_spec

HANDLERS = {
    "GenerateToken": oauth.generate_token,
    # compound aggregations
    "ListCompoundAggregations": r.compound_aggregations.list,
    "PostCompoundAggregation": r.compound_aggregations.create,
    "GetCompoundAggregation": r.compound_aggregations.retrieve,
    "PutCompoundAggregation": r.compound_aggregations.update,
    "DeleteCompoundAggregation": r.compound_aggregations.delete,
    # export destinations
    "ListDestinations": r.export_destinations.list,
    "PostDestination": r.export_destinations.create,
    "GetExportDestination": r.export_destinations.retrieve,
    "PutDestination": r.export_destinations.update,
    "DeleteDestination": r.export_destinations.delete,
    # export schedules
    "listSchedules": r.export_schedules.list,
    "CreateSchedule": r.export_schedules.create,
    "GetSchedule": r.export_schedules.retrieve,
    "UpdateSchedule": r.export_schedules.update,
    "DeleteSchedule": r.export_schedules.delete,
    # ad-hoc exports and jobs
    "TriggerDataExport": r.create_adhoc_export,
    "listJobStatuses": r.list_export_jobs,
    "GetJob": r.get_export_job,
    "GenerateDataExportFileDownloadUrl": r.get_export_download_url,
    # events
    "ListEvents": r.list_events,
    "GetEvent": r.get_event,
    "ListEventFields": r.list_event_fields,
    "ListEventTypes": r.list_event_types,
    # notifications
    "ListNotifications": r.notifications.list,
    "CreateNotification": r.notifications.create,
    "GetNotification": r.notifications.retrieve,
    "UpdateNotification": r.notifications.update,
    "DeleteNotification": r.notifications.delete,
    "EvaluateCalculation": r.evaluate_calculation,
    # webhook destinations
    "ListWebhookIntegrations": r.webhooks.list,
    "CreateWebhookDestination": r.webhooks.create,
    "GetWebhookIntegrationDestination": r.webhooks.retrieve,
    "UpdateWebhookDestination": r.webhooks.update,
    "DeleteWebhookDestination": r.webhooks.delete,
    "ActivateWebhookDestination": r.set_webhook_active,
    # integration configurations
    "GetIntegrationConfigs": r.integration_configs.list,
    "PostIntegrationConfig": r.integration_configs.create,
    "GetIntegrationConfig": r.get_integration_config_run,
    "UpdateIntegrationConfig": r.integration_configs.update,
    "DeleteIntegrationConfig": r.integration_configs.delete,
    "EnableIntegrationConfig": r.enable_integration_config,
    "GetIntegrationConfigForType": r.get_integration_config_for_entity,
}

ADMIN_HANDLERS = {
    "GetClock": admin.get_clock,
    "SetClock": admin.set_clock,
    "InjectEvent": admin.inject_event,
    "ListDeliveries": admin.list_deliveries,
    "ResetMock": admin.reset_mock,
    "DisableIntegrationConfig": admin.disable_integration_config,
    "DownloadExport": admin.download_export,
    "GetExportJobDetails": admin.export_job_details,
    "InjectExportFault": admin.inject_export_fault,
    **access_actions.ADMIN_HANDLERS,
    **platform_actions.ADMIN_HANDLERS,
    **admin_faults.ADMIN_HANDLERS,
    **admin_health.ADMIN_HANDLERS,
    **admin_journal.ADMIN_HANDLERS,
    **admin_seed.ADMIN_HANDLERS,
    **admin_state.ADMIN_HANDLERS,
}


def _resolver(table: dict, name: str):
    def resolve(operation_id: str):
        try:
            return table[operation_id]
        except KeyError:
            raise LookupError(f"operationId {operation_id!r} has no handler in {name}") from None

    return resolve


def handlers_for(spec: dict) -> dict:
    """The handler table of ``spec``: one built handler per ``x-mock`` operation, overridden
    by the action modules' handlers (``mockserver.api.actions``), then by HANDLERS."""
    from .actions import HANDLERS as ACTIONS

    return {**handlers_from_spec(spec), **ACTIONS, **HANDLERS}


def resolver_for(spec: dict):
    return _resolver(handlers_for(spec), "mockserver.api.registry.HANDLERS (or an x-mock in the spec)")


resolve = _resolver(HANDLERS, "mockserver.api.registry.HANDLERS")
resolve_admin = _resolver(ADMIN_HANDLERS, "mockserver.api.registry.ADMIN_HANDLERS")
