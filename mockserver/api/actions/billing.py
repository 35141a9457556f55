"""HTTP handlers of the bill, bill job, statement job and data explorer actions: parse,
call ``mockserver.backend.actions.billing``, shape. The rules are in the backend and in
``mockserver.domain.bills``.

The generic engine keeps serving what is plain CRUD here (GetBill, ListBills, DeleteBill,
GetBillLineItem, GetBillJob, GetStatementJob). Bill runs (CreateBillJob, RecalculateBillJob,
PreviewBill, GetBillLineItemJsonUsage) are ``mockserver.backend.bill_runs``."""

from __future__ import annotations

import flask

from mockserver.backend.actions import billing

from ..context import backend, caller, page


def _billing() -> billing.BillingActions:
    return billing.service(backend())


def _runs():
    return backend().bill_runs


def _base_url() -> str:
    return flask.request.host_url


# -- bills ---------------------------------------------------------------------------------

def get_all_bills_for_account(orgId, accountId, user, pageSize=None, nextToken=None, **_):
    return page(*_billing().bills_for_account(caller(orgId, user), accountId, pageSize, nextToken))


def get_latest_bill(orgId, accountId, user, **_):
    return _billing().latest_bill(caller(orgId, user), accountId)


def get_all_bills_in_billing_period(orgId, lastDateInBillingPeriod, billingFrequency, user, pageSize=None,
                                    nextToken=None, **_):
    return page(*_billing().bills_in_period(caller(orgId, user), lastDateInBillingPeriod, billingFrequency,
                                            pageSize, nextToken))


def approve_bills(orgId, user, body, **_):
    # billIds is required, and m3ter ignores the query filters whenever billIds is given.
    return _billing().approve(caller(orgId, user), body["billIds"])


def approve_all_bills_in_billing_period(orgId, lastDateInBillingPeriod, billingFrequency, user):
    return _billing().approve_period(caller(orgId, user), lastDateInBillingPeriod, billingFrequency)


def lock_bill(orgId, id, user):
    return _billing().lock(caller(orgId, user), id)


def update_bill_status(orgId, id, user, body):
    return _billing().set_status(caller(orgId, user), id, body["status"])


def download_bills_csv_url(orgId, user, body):
    return _billing().bills_csv_url(caller(orgId, user), body, _base_url())


# -- statements ----------------------------------------------------------------------------

def get_bill_json_statement(orgId, id, user):
    return _billing().statement_url(caller(orgId, user), id, "JSON", _base_url())


def get_bill_csv_statement(orgId, id, user):
    return _billing().statement_url(caller(orgId, user), id, "CSV", _base_url())


def create_bill_csv_statement(orgId, id, user):
    return _billing().create_csv_statement(caller(orgId, user), id, _base_url())


# -- line items ----------------------------------------------------------------------------

def list_bill_line_items(orgId, billId, user, pageSize=None, nextToken=None, **_):
    # ``additional`` only asks for more fields; it selects nothing.
    return page(*_billing().list_bill_line_items(caller(orgId, user), billId, pageSize, nextToken))


def list_line_items(orgId, user, pageSize=None, nextToken=None, billId=None, commitmentId=None,
                    lineItemType=None, **_):
    filters = {"billId": billId, "commitmentId": commitmentId, "lineItemType": lineItemType}
    return page(*_billing().list_line_items(caller(orgId, user), filters, pageSize, nextToken))


# -- bill jobs -----------------------------------------------------------------------------

def list_bill_jobs(orgId, user, pageSize=None, nextToken=None, active=None, status=None):
    return page(*_billing().list_bill_jobs(caller(orgId, user), active, status, pageSize, nextToken))


def cancel_bill_job(orgId, id, user):
    return _billing().cancel_bill_job(caller(orgId, user), id)


def create_bill_job(orgId, user, body):
    return _runs().create_job(caller(orgId, user), body)


def recalculate_bill_job(orgId, user, body):
    return _runs().recalculate_job(caller(orgId, user), body)


def preview_bill(orgId, user, body, debug=None):
    # ``debug`` asks m3ter for diagnostics the mock does not have; the preview is the same.
    return _runs().preview(caller(orgId, user), body)


def get_bill_line_item_json_usage(orgId, billId, id, user):
    return _runs().line_item_usage_url(caller(orgId, user), billId, id, _base_url())


# -- statement jobs ------------------------------------------------------------------------

def create_statement_job(orgId, user, body):
    return _billing().create_statement_job(caller(orgId, user), body, _base_url())


def create_statement_job_batch(orgId, user, body):
    return _billing().create_statement_jobs(caller(orgId, user), body, _base_url())


def cancel_statement_job(orgId, id, user):
    return _billing().cancel_statement_job(caller(orgId, user), id)


def list_statement_jobs(orgId, user, pageSize=None, nextToken=None, active=None, status=None, billId=None):
    return page(*_billing().list_statement_jobs(caller(orgId, user), active, status, billId, pageSize, nextToken))


# -- the data explorer ---------------------------------------------------------------------

def query_bill_data(orgId, user, body):
    return _billing().query_bill_data(caller(orgId, user), body)


HANDLERS = {
    "GetAllBillsForAccount": get_all_bills_for_account,
    "GetLatestBill": get_latest_bill,
    "GetAllBillsInBillingPeriod": get_all_bills_in_billing_period,
    "ApproveBills": approve_bills,
    "ApproveAllBillsInBillingPeriod": approve_all_bills_in_billing_period,
    "LockBill": lock_bill,
    "UpdateBillStatus": update_bill_status,
    "DownloadBillsCsvUrl": download_bills_csv_url,
    "GetBillJsonStatement": get_bill_json_statement,
    "GetBillCsvStatement": get_bill_csv_statement,
    "CreateBillCsvStatement": create_bill_csv_statement,
    "ListBillLineItems": list_bill_line_items,
    "ListLineItems": list_line_items,
    "GetBillLineItemJsonUsage": get_bill_line_item_json_usage,
    "PreviewBill": preview_bill,
    "ListBillJobs": list_bill_jobs,
    "CancelBillJob": cancel_bill_job,
    "CreateBillJob": create_bill_job,
    "RecalculateBillJob": recalculate_bill_job,
    "CreateStatementJob": create_statement_job,
    "CreateStatementJobBatch": create_statement_job_batch,
    "CancelStatementJob": cancel_statement_job,
    "ListStatementJobs": list_statement_jobs,
    "PostQueryBillData": query_bill_data,
}
