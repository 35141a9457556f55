"""Handlers of the platform operations that are not plain CRUD: Lookup Table Revision data,
integration runs and catalogue, external mapping look-ups, Balance transactions, summary and
schedule previews. Each parses the request and calls ``mockserver.backend.actions.platform``.

The operations of the group that stay with the generic engine (``x-mock``): the list,
retrieve and delete of Lookup Table Revision data jobs (this module stores the jobs where
that engine finds them) and the list of Balance transactions."""

from __future__ import annotations

import flask

from mockserver.backend.actions import platform as services

from ..context import backend, caller, page, query_list


def _data():
    return services.platform(backend()).lookup_data


def _runs():
    return services.platform(backend()).integration_runs


def _balances():
    return services.platform(backend()).balances


def _base_url() -> str:
    return flask.request.host_url


# -- Lookup Table Revision data ------------------------------------------------------------------

def update_revision_status(orgId, lookupTableId, id, user, body):
    return _data().set_status(caller(orgId, user), lookupTableId, id, body)


def get_data(orgId, lookupTableId, lookupTableRevisionId, user, limit=None, additional=None):
    return _data().get_data(caller(orgId, user), lookupTableId, lookupTableRevisionId, limit,
                            query_list(additional))


def put_data(orgId, lookupTableId, lookupTableRevisionId, user, body, additional=None):
    return _data().put_data(caller(orgId, user), lookupTableId, lookupTableRevisionId, body, query_list(additional))


def delete_data(orgId, lookupTableId, lookupTableRevisionId, user):
    return _data().delete_data(caller(orgId, user), lookupTableId, lookupTableRevisionId)


def get_entry(orgId, lookupTableId, lookupTableRevisionId, lookupKey, user):
    return _data().get_entry(caller(orgId, user), lookupTableId, lookupTableRevisionId, lookupKey)


def put_entry(orgId, lookupTableId, lookupTableRevisionId, lookupKey, user, body, additional=None):
    return _data().put_entry(caller(orgId, user), lookupTableId, lookupTableRevisionId, lookupKey, body,
                             query_list(additional))


def delete_entry(orgId, lookupTableId, lookupTableRevisionId, lookupKey, user, body=None):
    return _data().delete_entry(caller(orgId, user), lookupTableId, lookupTableRevisionId, lookupKey, body)


def archived_data_url(orgId, lookupTableId, lookupTableRevisionId, user, body):
    return _data().archived_url(caller(orgId, user), lookupTableId, lookupTableRevisionId, body, _base_url())


def copy_data(orgId, lookupTableId, lookupTableRevisionId, user, body=None):
    return _data().copy(caller(orgId, user), lookupTableId, lookupTableRevisionId, body)


def upload_url(orgId, lookupTableId, lookupTableRevisionId, user, body):
    return _data().upload_url(caller(orgId, user), lookupTableId, lookupTableRevisionId, body, _base_url())


def trigger_download(orgId, lookupTableId, lookupTableRevisionId, user, body):
    return _data().trigger_download(caller(orgId, user), lookupTableId, lookupTableRevisionId, body, _base_url())


# -- integration runs and the integration catalogue ---------------------------------------------

def _run_filters(startDate=None, endDate=None, status=None, order=None) -> dict:
    return {"startDate": startDate, "endDate": endDate, "status": status, "order": order}


def get_run(orgId, id, user):
    return _runs().get(caller(orgId, user), id)


def get_run_log(orgId, id, user):
    return _runs().log(caller(orgId, user), id)


def list_runs(orgId, entityType, entityId, user, pageSize=None, nextToken=None, startDate=None, endDate=None,
              status=None, order=None):
    items, token = _runs().list_for_entity(caller(orgId, user), entityType, entityId,
                                           _run_filters(startDate, endDate, status, order), pageSize, nextToken)
    return page(items, token)


def list_runs_for_destination(orgId, destinationId, user, destination=None, pageSize=None, nextToken=None,
                              startDate=None, endDate=None, status=None, order=None):
    items, token = _runs().list_for_destination(caller(orgId, user), destinationId, destination,
                                                _run_filters(startDate, endDate, status, order), pageSize, nextToken)
    return page(items, token)


def latest_run(orgId, entityType, id, user):
    return _runs().latest(caller(orgId, user), entityType, [id])


def latest_run_for_ids(orgId, entityType, user, ids=None):
    return _runs().latest(caller(orgId, user), entityType, query_list(ids))


def available_config(orgId, user, systemName=None, entityType=None):
    return services.available_config(systemName, entityType)


def available_systems(orgId, user, entityType=None):
    return services.available_systems(entityType)


def available_auth(orgId, systemName, entityType, user):
    return services.auth_options(systemName, entityType)


def system_entities(orgId, systemName, user):
    return services.system_entities(systemName)


def config_option_values(orgId, systemName, configOption, user):
    return services.config_option_values(systemName, configOption)


def marketplace_usage(orgId, user, pageSize=None, nextToken=None, billStartDate=None, accountId=None,
                      externalSystem=None, billId=None):
    items, token = services.marketplace_usage(
        backend(), caller(orgId, user),
        {"billStartDate": billStartDate, "accountId": accountId, "externalSystem": externalSystem, "billId": billId},
        pageSize, nextToken)
    return page(items, token)


# -- external mappings -----------------------------------------------------------------------------

def external_mapping_configuration(orgId, user):
    return services.external_mapping_configuration()


def external_options(orgId, destination, entityType, user, externalTable=None):
    return services.external_entity_options()


def external_options_for_credentials(orgId, destination, entityType, integrationCredentialsId, user,
                                     externalTable=None):
    return services.external_entity_options()


def mappings_for_m3ter_entity(orgId, entity, m3terId, user, pageSize=None, nextToken=None):
    items, token = services.mappings_for_m3ter_entity(backend(), caller(orgId, user), entity, m3terId,
                                                      pageSize, nextToken)
    return page(items, token)


def mappings_for_external_entity(orgId, system, externalTable, externalId, user, pageSize=None, nextToken=None):
    items, token = services.mappings_for_external_entity(backend(), caller(orgId, user), system, externalTable,
                                                         externalId, pageSize, nextToken)
    return page(items, token)


# -- Balances --------------------------------------------------------------------------------------

def post_transaction(orgId, balanceId, user, body):
    return _balances().post_transaction(caller(orgId, user), balanceId, body)


def transactions_summary(orgId, balanceId, user):
    return _balances().summary(caller(orgId, user), balanceId)


def preview_charge_schedule(orgId, balanceId, user, body, pageSize=None, nextToken=None):
    return _balances().preview_charge_schedule(caller(orgId, user), balanceId, body, nextToken)


def preview_transaction_schedule(orgId, balanceId, user, body, pageSize=None, nextToken=None):
    return _balances().preview_transaction_schedule(caller(orgId, user), balanceId, body, nextToken)


# -- the mock's own file URLs (bound in the admin API, ``openapi/admin.yaml``) --------------------

def upload_file(token, body=None):
    """``PUT /_mock/uploads/{token}``: the file for a Lookup Table Revision's data, or a
    measurements file (``mockserver.backend.usage``), as the token says."""
    content = body if isinstance(body, bytes) else flask.request.get_data()
    mock = backend()
    if mock.usage.owns_upload(token):
        return mock.usage.receive_upload(token, content, flask.request.content_type)
    return services.platform(mock).lookup_data.receive_upload(token, content, flask.request.content_type)


ADMIN_HANDLERS = {"UploadLookupTableData": upload_file}

HANDLERS = {
    "UpdateLookupTableRevisionStatus": update_revision_status,
    "GetLookupTableRevisionData": get_data,
    "PutLookupTableRevisionData": put_data,
    "DeleteLookupTableRevisionData": delete_data,
    "GetLookupTableRevisionDataEntry": get_entry,
    "PutLookupTableRevisionDataEntry": put_entry,
    "DeleteLookupTableRevisionDataEntry": delete_entry,
    "GetLookupTableRevisionArchivedDataUrl": archived_data_url,
    "CopyLookupTableRevisionData": copy_data,
    "GenerateLookupTableDataUploadUrl": upload_url,
    "TriggerLookupTableRevisionDataDownloadJob": trigger_download,
    "GetIntegrationRun": get_run,
    "GetIntegrationRunLogs": get_run_log,
    "ListIntegrationRuns": list_runs,
    "ListIntegrationRunsByDestinationId": list_runs_for_destination,
    "GetIntegrationRunLatest": latest_run,
    "GetIntegrationRunLatestForIds": latest_run_for_ids,
    "GetAvailableConfig": available_config,
    "GetAvailableSystems": available_systems,
    "GetAvailableAuthForSystemAndEntityType": available_auth,
    "GetAvailableSystemEntities": system_entities,
    "GetConfigOptionValues": config_option_values,
    "GetUsageReport": marketplace_usage,
    "GetExternalMappingConfiguration": external_mapping_configuration,
    "GetExternalMappingOptionsForDestination": external_options,
    "GetExternalMappingOptionsForDestinationForCredentialsId": external_options_for_credentials,
    "ListExternalMappingsForM3terEntity": mappings_for_m3ter_entity,
    "ListExternalMappingsForExternalSystemAndEntity": mappings_for_external_entity,
    "PostBalanceTransaction": post_transaction,
    "GetBalanceTransactionsSummary": transactions_summary,
    "PreviewScheduledCharge": preview_charge_schedule,
    "PreviewBalanceTransactionSchedule": preview_transaction_schedule,
}
