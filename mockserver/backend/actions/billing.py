"""Bills, bill jobs and statement jobs: what acts on stored bills.

Bills are made by bill runs (``mockserver.backend.bill_runs``: bill jobs, recalculation,
previews and the scheduled runs), which price usage and hand each bill to ``store_bill``
here: a new bill, or a stored one recalculated in place. What acts on stored bills follows
the rules of ``mockserver.domain.bills``: approve, lock, status, the lists by account and
by billing period, line items, statements, the bills CSV and the data explorer.

State lives in the one store:

* ``bills`` and ``bills/<billId>/lineitems`` (the generic engine's collections, so the
  generic GetBill/ListBills/DeleteBill/line item reads serve them), with each line item
  also copied into its bill's ``lineItems`` as m3ter shows them;
* ``billlineitems``: the organization's line items in creation order (id -> bill id), for
  the lists that cross bills; a deleted bill's entries are dropped with it;
* ``bills/<billId>/statements``: the bill's JSON and CSV statements (deleted with the bill);
* ``billcsvfiles``: the bills CSV files handed out, the newest ``retain_export_files`` kept;
* download grants in ``backend.downloads`` (``mockserver.backend.downloads``), as for exports.

Statement jobs are stateful: created PENDING, they run on this module's worker one second
later on the mock's clock (time to cancel one, and to see it pending), then are COMPLETE
with the bill's statements made, or FAILED when the bill is gone by then.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterable

from mockserver.domain import bills as rules
from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import ListScope

from ..crud import Caller, CrudService, ResourceKind, public_view
from ..worker import DueWorker

LINE_ITEM_INDEX = "billlineitems"
CSV_FILES = "billcsvfiles"
DOWNLOAD_OWNER = "billing"  # the owner of this module's grants in ``backend.downloads``
DOWNLOAD_LIFETIME = timedelta(minutes=15)
STATEMENT_JOB_TIME = timedelta(seconds=1)

LINE_ITEM_FIELDS = ("accountingProductCode", "accountingProductId", "accountingProductName", "additional",
                    "aggregationId", "averageUnitPrice", "balanceId", "chargeId", "childAccountCode",
                    "childAccountId", "commitmentId", "compoundAggregationId", "contractId", "conversionRate",
                    "convertedSubtotal", "counterId", "creditTypeId", "currency", "description", "group", "id",
                    "lineItemType", "meterId", "planGroupId", "planId", "pricingId", "productCode", "productId",
                    "productName", "quantity", "reasonId", "referencedBillId", "referencedLineItemId", "segment",
                    "sequenceNumber", "servicePeriodEndDate", "servicePeriodStartDate", "subtotal", "unit",
                    "units", "usagePerPricingBand")


@dataclass(frozen=True)
class RunStatementJob:
    org_id: str
    job_id: str


def service(backend) -> "BillingActions":
    """The backend's billing service (``Backend`` builds it with the other services)."""
    return backend.billing


class BillingActions:
    def __init__(self, backend):
        self.backend = backend
        self.queue = DueWorker(backend.clock, "statements", self._run_statement_job)
        backend.add_change_listener(self._on_entity_changed)

    # -- the resources this acts on ------------------------------------------------------
    def _resource(self, key: str) -> CrudService:
        found = self.backend.resources.get(key)
        if found is None:
            raise MockError.not_implemented(f"the spec the mock serves has no {key!r} resource")
        return found

    @property
    def bills(self) -> CrudService:
        return self._resource("bills")

    @property
    def line_items(self) -> CrudService:
        return self._resource("bills/{billId}/lineitems")

    @property
    def bill_jobs(self) -> CrudService:
        return self._resource("billjobs")

    @property
    def statement_jobs(self) -> CrudService:
        return self._resource("statementjobs")

    def _now(self) -> str:
        return isoformat(self.backend.clock.now())

    def _bill_collection(self, org_id: str):
        return self.backend.store.peek(org_id, self.bills.kind.collection)

    def _items_of(self, org_id: str, bill_id: str) -> list[dict]:
        return list(self.backend.store.peek(org_id, self.line_items.kind.collection_name({"billId": bill_id})).values())

    def _change(self, caller: Caller, service: CrudService, entity: dict, changes: dict,
                drop: Iterable[str] = ()) -> dict:
        """An action's change (approve, lock, cancel...): the fields change, the audit fields
        say when and who, the version stays (as for every action endpoint of the mock), and
        the Event records it."""
        gone = set(drop)
        new = {k: v for k, v in {**entity, **changes}.items() if k not in gone and v is not None}
        new.update(dtLastModified=self._now(), lastModifiedBy=caller.client_id)
        self.backend.store.collection(caller.org_id, service.kind.collection).put(new)
        self.backend.entity_changed(caller, service.kind, "updated", entity, new)
        return new

    # -- storing bills (the bill runs' entry point, and the tests') ------------------------
    def store_bill(self, caller: Caller, account_id: str, start_date: str, end_date: str,
                   line_items: Iterable[dict] = (), *, replacing: dict | None = None, **fields: Any) -> dict:
        """Store a PENDING, unlocked bill for the account's service period [start, end) with
        its line items (each completed by ``rules.complete_line_item``); ``billTotal`` is the
        sum of their subtotals. ``fields`` overrides any other bill field. Records
        ``billing.bill.created``.

        ``replacing`` (a stored bill, unlocked) is recalculated in place instead, as m3ter
        does: the same id, version + 1, its creation, status and approval kept, its line items
        replaced, its statements (if any) marked stale; records ``billing.bill.updated``."""
        with self.backend.store.lock:
            if replacing is not None:
                rules.check_unlocked(replacing)
                kept = {k: replacing[k] for k in ("id", "dtCreated", "createdBy", "createdDate", "status",
                                                   "dtApproved", "approvedBy", "jsonStatementGenerated",
                                                   "csvStatementGenerated") if k in replacing}
                kept["version"] = replacing["version"] + 1
                kept["statementStale"] = bool(replacing.get("jsonStatementGenerated")
                                              or replacing.get("csvStatementGenerated"))
                self._check_bill(caller, account_id, start_date, end_date)
                self._drop_line_items(caller.org_id, replacing)
                stored = self._store_bill(caller, account_id, start_date, end_date, line_items, fields, kept)
                self.backend.entity_changed(caller, self.bills.kind, "updated", replacing, stored)
                return public_view(stored)
            stored = self._store_bill(caller, account_id, start_date, end_date, line_items, fields, {})
            self.backend.entity_changed(caller, self.bills.kind, "created", None, stored)
            return public_view(stored)

    def _check_bill(self, caller: Caller, account_id: str, start_date: str, end_date: str) -> dict:
        account = self.backend.store.peek(caller.org_id, self._resource("accounts").kind.collection).get(account_id)
        if account is None:
            raise MockError.bad_request(f"accountId: no Account with id {account_id!r}")
        start, end = rules.parse_date(start_date, "startDate"), rules.parse_date(end_date, "endDate")
        if end <= start:
            raise MockError.bad_request("endDate: must be later than startDate")
        return account

    def _drop_line_items(self, org_id: str, bill: dict) -> None:
        name = self.line_items.kind.collection_name({"billId": bill["id"]})
        index = self.backend.store.peek(org_id, LINE_ITEM_INDEX)
        for item in self.backend.store.peek(org_id, name).values():
            if index.get(item["id"]) is not None:
                index.remove(item["id"])
        self.backend.store.org(org_id).collections.pop(name, None)

    def _store_bill(self, caller: Caller, account_id: str, start_date: str, end_date: str,
                    line_items: Iterable[dict], fields: dict, kept: dict) -> dict:
        account = self._check_bill(caller, account_id, start_date, end_date)
        start, end = rules.parse_date(start_date, "startDate"), rules.parse_date(end_date, "endDate")
        now = self._now()
        audit = {"dtCreated": now, "dtLastModified": now, "createdBy": caller.client_id,
                 "lastModifiedBy": caller.client_id}
        bill = {
            "id": str(uuid.uuid4()), "version": 1, "accountId": account_id, "accountCode": account.get("code"),
            "billDate": end.isoformat(), "dueDate": end.isoformat(),
            "startDate": start.isoformat(), "endDate": end.isoformat(),
            "startDateTimeUTC": f"{start.isoformat()}T00:00:00.000Z",
            "endDateTimeUTC": f"{end.isoformat()}T00:00:00.000Z",
            "billingFrequency": "MONTHLY", "billFrequencyInterval": 1,
            "currency": account.get("currency") or "USD", "timezone": "UTC",
            "status": "PENDING", "locked": False, "csvStatementGenerated": False,
            "jsonStatementGenerated": False, "statementStale": False,
            "createdDate": now, "lastCalculatedDate": now,
            **{k: v for k, v in fields.items() if v is not None}, **audit, **kept,
        }
        # A line keeps an id it was given (drawdown lines name the charge they draw by it).
        items = [{**rules.complete_line_item({k: v for k, v in item.items() if v is not None}, bill),
                  "id": item.get("id") or str(uuid.uuid4())} for item in line_items]
        bill["lineItems"] = [{k: item[k] for k in LINE_ITEM_FIELDS if k in item} for item in items]
        bill["billTotal"] = rules.number(rules.total(items))
        self.backend.store.collection(caller.org_id, self.bills.kind.collection).put(bill)
        nested = self.backend.store.collection(
            caller.org_id, self.line_items.kind.collection_name({"billId": bill["id"]}))
        index = self.backend.store.collection(caller.org_id, LINE_ITEM_INDEX)
        for item in items:
            # The line item resource calls the band breakdown bandUsage.
            shown = {k: v for k, v in item.items() if k != "usagePerPricingBand"}
            if "usagePerPricingBand" in item:
                shown["bandUsage"] = item["usagePerPricingBand"]
            nested.put({**shown, "billId": bill["id"], "version": 1, **audit})
            index.put({"id": item["id"], "billId": bill["id"]})
        return bill

    def store_bill_job(self, caller: Caller, **fields: Any) -> dict:
        """Store a bill job: PENDING, type CREATE, no bill yet, unless ``fields`` say otherwise
        (the bill runs' entry point, and the tests'). Records ``billing.billjob.created``."""
        with self.backend.store.lock:
            now = self._now()
            job = {"id": str(uuid.uuid4()), "version": 1, "status": "PENDING", "type": "CREATE", "timezone": "UTC",
                   "billIds": [], "total": 0, "pending": 0, **fields,
                   "dtCreated": now, "dtLastModified": now, "createdBy": caller.client_id,
                   "lastModifiedBy": caller.client_id}
            self.backend.store.collection(caller.org_id, self.bill_jobs.kind.collection).put(job)
            self.backend.entity_changed(caller, self.bill_jobs.kind, "created", None, job)
            return public_view(job)

    def _on_entity_changed(self, caller: Caller, kind: ResourceKind, action: str, old, new) -> None:
        if kind.key == "bills" and action == "deleted":
            index = self.backend.store.peek(caller.org_id, LINE_ITEM_INDEX)
            for item in old.get("lineItems", ()):
                if index.get(item["id"]) is not None:
                    index.remove(item["id"])

    # -- bill reads ----------------------------------------------------------------------
    def _account(self, caller: Caller, account_id: str) -> dict:
        return self._resource("accounts").find(caller, account_id)

    def _page(self, caller: Caller, name: str, filters: dict, matches: Callable[[dict], bool],
              page_size: int | None, next_token: str | None) -> tuple[list[dict], str | None]:
        items, token = self.backend.paginate(ListScope(caller.org_id, name, filters),
                                             self._bill_collection(caller.org_id), matches, page_size, next_token)
        return [self.bills.kind.view(b) for b in items], token

    def bills_for_account(self, caller: Caller, account_id: str, page_size: int | None,
                          next_token: str | None) -> tuple[list[dict], str | None]:
        with self.backend.store.lock:
            self._account(caller, account_id)
            return self._page(
                caller,
                "bills/accountid",  # pragma: no mutate: only binds nextToken to this list; any other name does too
                {"accountId": account_id},
                lambda bill: bill.get("accountId") == account_id, page_size, next_token)

    def latest_bill(self, caller: Caller, account_id: str) -> dict:
        """The account's bill with the latest ``billDate`` (of two on one date, the later stored)."""
        with self.backend.store.lock:
            self._account(caller, account_id)
            latest = None
            for bill in self._bill_collection(caller.org_id).values():
                if bill.get("accountId") == account_id and (
                        latest is None or bill.get("billDate", "") >= latest.get("billDate", "")):
                    latest = bill
            if latest is None:
                raise MockError.not_found(f"No Bill for Account {account_id!r}")
            return self.bills.kind.view(latest)

    def bills_in_period(self, caller: Caller, last_date: str, frequency: str, page_size: int | None,
                        next_token: str | None) -> tuple[list[dict], str | None]:
        day, freq = rules.parse_date(last_date, "lastDateInBillingPeriod"), rules.period_frequency(frequency)
        with self.backend.store.lock:
            return self._page(
                caller,
                "bills/billingperiod",  # pragma: no mutate: only binds nextToken to this list; any other name does too
                {"last": day.isoformat(), "frequency": freq},
                lambda bill: rules.in_billing_period(bill, day, freq), page_size, next_token)

    # -- bill changes --------------------------------------------------------------------
    def set_status(self, caller: Caller, bill_id: str, status: str) -> dict:
        with self.backend.store.lock:
            bill = self.bills.find(caller, bill_id)
            if rules.status_change(bill, status):
                bill = self._set_status(caller, bill, status)
            return self.bills.kind.view(bill)

    def _set_status(self, caller: Caller, bill: dict, status: str) -> dict:
        if status == "APPROVED":
            return self._change(caller, self.bills, bill, {"status": status, "dtApproved": self._now(),
                                                           "approvedBy": caller.client_id})
        return self._change(caller, self.bills, bill, {"status": status}, drop=("dtApproved", "approvedBy"))

    def _approve_all(self, caller: Caller, bills: list[dict]) -> dict:
        approved = 0
        for bill in bills:
            if rules.status_change(bill, "APPROVED"):
                self._set_status(caller, bill, "APPROVED")
                approved += 1
        return {"message": rules.approval_message(approved, len(bills) - approved)}

    def approve(self, caller: Caller, bill_ids: list[str]) -> dict:
        """Approve the named bills, all or none: an unknown id is a 400 and changes nothing."""
        with self.backend.store.lock:
            collection = self._bill_collection(caller.org_id)
            bills = []
            for bill_id in dict.fromkeys(bill_ids):
                bill = collection.get(bill_id)
                if bill is None:
                    raise MockError.bad_request(f"billIds: no Bill with id {bill_id!r}")
                bills.append(bill)
            return self._approve_all(caller, bills)

    def approve_period(self, caller: Caller, last_date: str, frequency: str) -> dict:
        day, freq = rules.parse_date(last_date, "lastDateInBillingPeriod"), rules.period_frequency(frequency)
        with self.backend.store.lock:
            bills = [b for b in self._bill_collection(caller.org_id).values() if rules.in_billing_period(b, day, freq)]
            return self._approve_all(caller, bills)

    def lock(self, caller: Caller, bill_id: str) -> dict:
        with self.backend.store.lock:
            bill = self.bills.find(caller, bill_id)
            if rules.lock_change(bill):
                bill = self._change(caller, self.bills, bill, {"locked": True, "dtLocked": self._now(),
                                                               "lockedBy": caller.client_id})
            return self.bills.kind.view(bill)

    # -- line items ----------------------------------------------------------------------
    def list_bill_line_items(self, caller: Caller, bill_id: str, page_size: int | None,
                             next_token: str | None) -> tuple[list[dict], str | None]:
        return self.line_items.list(caller, {}, page_size, next_token, {"billId": bill_id})

    def list_line_items(self, caller: Caller, filters: dict, page_size: int | None,
                        next_token: str | None) -> tuple[list[dict], str | None]:
        """The organization's line items across bills, in creation order; ``billId``,
        ``commitmentId`` and ``lineItemType`` narrow them (an unknown bill names none)."""
        active = {k: v for k, v in filters.items() if v is not None}
        org = caller.org_id
        with self.backend.store.lock:
            def wanted(item: dict | None) -> bool:
                return item is not None and all(item.get(k) == v for k, v in active.items())

            if active.get("billId"):  # an empty billId names no bill: it matches nothing below
                name = self.line_items.kind.collection_name({"billId": active["billId"]})
                nested = self.backend.store.peek(org, name)
                items, token = self.backend.paginate(ListScope(org, "lineitems", active), nested, wanted,
                                                     page_size, next_token)
            else:
                def resolve(entry: dict) -> dict | None:
                    return self.backend.store.peek(
                        org, self.line_items.kind.collection_name({"billId": entry["billId"]})).get(entry["id"])

                entries, token = self.backend.paginate(
                    ListScope(org, "lineitems", active), self.backend.store.peek(org, LINE_ITEM_INDEX),
                    lambda entry: wanted(resolve(entry)), page_size, next_token)
                items = [resolve(entry) for entry in entries]
            return [self.line_items.kind.view(i) for i in items], token

    # -- statements ----------------------------------------------------------------------
    def _statements(self, bill_id: str) -> str:
        return f"{self.bills.kind.collection}/{bill_id}/statements"

    def _make_statement(self, caller: Caller, bill: dict, file_format: str, filters: dict | None) -> dict:
        """Store the bill's statement in that format and flag the bill; returns the bill."""
        items = rules.statement_items(self._items_of(caller.org_id, bill["id"]), filters)
        if file_format == "JSON":
            content, media = rules.json_statement(public_view(bill), items, self._now()), "application/json"
        else:
            content, media = rules.csv_statement(bill, items), "text/csv"
        self.backend.store.collection(caller.org_id, self._statements(bill["id"])).put(
            {"id": file_format, "name": f"{bill['id']}_statement.{file_format.lower()}", "content": content,
             "mediaType": media})
        flag = "jsonStatementGenerated" if file_format == "JSON" else "csvStatementGenerated"
        if not bill.get(flag) or bill.get("statementStale"):
            bill = self._change(caller, self.bills, bill, {flag: True, "statementStale": False})
        return bill

    def statement_url(self, caller: Caller, bill_id: str, file_format: str, base_url: str) -> dict:
        """A download URL of the bill's statement: 404 while none was made in that format."""
        with self.backend.store.lock:
            bill = self.bills.find(caller, bill_id)
            if self.backend.store.peek(caller.org_id, self._statements(bill_id)).get(file_format) is None:
                how = "a statement job" if file_format == "JSON" else \
                    "POST .../statement/csv or a statement job with includeCsvFormat"
                raise MockError.not_found(
                    f"Bill {bill['id']!r} has no {file_format} statement yet: make one with {how}")
            return {"downloadUrl": self._grant(caller.org_id, self._statements(bill_id), file_format,
                                               base_url)}

    def create_csv_statement(self, caller: Caller, bill_id: str, base_url: str) -> dict:
        with self.backend.store.lock:
            bill = self.bills.find(caller, bill_id)
            self._make_statement(caller, bill, "CSV", None)
            return {"downloadUrl": self._grant(caller.org_id, self._statements(bill_id), "CSV",
                                               base_url)}

    # -- download URLs -------------------------------------------------------------------
    def _grant(self, org_id: str, collection: str, item_id: str, base_url: str) -> str:
        ref = {"collection": collection, "itemId": item_id}
        return self.backend.downloads.issue(org_id, DOWNLOAD_OWNER, ref, DOWNLOAD_LIFETIME, base_url).url

    def download(self, grant) -> tuple[str, bytes, str]:
        """(file name, bytes, media type) of a live grant this module issued; a 403 once its
        file is gone."""
        with self.backend.store.lock:
            file = self.backend.store.peek(grant.org_id, grant.ref["collection"]).get(grant.ref["itemId"])
            if file is None:
                raise MockError(403, "the file of this download URL is no longer kept (its bill was deleted, or "
                                     "newer files replaced it)")
            return file["name"], file["content"], file["mediaType"]

    # -- the bills CSV -------------------------------------------------------------------
    def bills_csv_url(self, caller: Caller, body: dict, base_url: str) -> dict:
        """A CSV of the line items of the bills whose ``billDate`` is in [startDate, endDate)
        and whose ``externalInvoiceDate`` is in [externalInvoiceDateStart, ...End): at least
        one range, each at most 31 days, at most 5000 bills."""
        by_date = rules.download_range(body.get("startDate"), body.get("endDate"), "startDate", "endDate")
        by_invoice = rules.download_range(body.get("externalInvoiceDateStart"), body.get("externalInvoiceDateEnd"),
                                          "externalInvoiceDateStart", "externalInvoiceDateEnd")
        if by_date is None and by_invoice is None:
            raise MockError.bad_request("startDate: required (with endDate), unless externalInvoiceDateStart and "
                                        "externalInvoiceDateEnd are given")
        system = body.get("externalSystem") or "STANDARD"
        with self.backend.store.lock:
            chosen = [b for b in self._bill_collection(caller.org_id).values()
                      if rules.in_range(b.get("billDate"), by_date)
                      and rules.in_range(b.get("externalInvoiceDate"), by_invoice)]
            if len(chosen) > rules.MAX_DOWNLOAD_BILLS:
                raise MockError.bad_request(f"endDate: the period holds {len(chosen)} bills; a download holds at "
                                            f"most {rules.MAX_DOWNLOAD_BILLS}")
            content = rules.bills_csv([(b, self._items_of(caller.org_id, b["id"])) for b in chosen], system)
            file_id = str(uuid.uuid4())
            files = self.backend.store.collection(caller.org_id, CSV_FILES)
            files.put({"id": file_id, "name": f"bills_{system.lower()}.csv", "content": content,
                       "mediaType": "text/csv"})
            files.trim(self.backend.settings.retain_export_files)
            return {"downloadUrl": self._grant(caller.org_id, CSV_FILES, file_id, base_url)}

    # -- the data explorer ---------------------------------------------------------------
    def query_bill_data(self, caller: Caller, query: dict) -> dict:
        """One value per line item of a stored bill whose type is one of ``lineItemTypes``,
        whose service period starts in [startDate, endDate) and whose dimensions hold one
        of each dimension's ``filter`` values; at most ``limit`` (2000), in creation order."""
        since, until, dimensions, limit = rules.check_explorer_query(query)
        types = set(query["lineItemTypes"])
        org = caller.org_id
        values = []
        with self.backend.store.lock:
            bills = self._bill_collection(org)
            accounts = self.backend.store.peek(org, self._resource("accounts").kind.collection)
            for entry in self.backend.store.peek(org, LINE_ITEM_INDEX).values():
                if len(values) == limit:
                    break
                bill = bills.get(entry["billId"])
                item = self.backend.store.peek(org, self.line_items.kind.collection_name(
                    {"billId": entry["billId"]})).get(entry["id"])
                if bill is None or item is None or item.get("lineItemType") not in types:
                    continue
                if not rules.in_range(item.get("servicePeriodStartDate"), (since, until)):
                    continue
                shown = rules.explorer_dimensions(bill, item, accounts.get(bill.get("accountId", "")))
                if all(shown.get(name) in allowed for name, allowed in dimensions):
                    values.append(rules.explorer_row(bill, item, shown))
        return {"values": values}

    # -- statement jobs ------------------------------------------------------------------
    def create_statement_job(self, caller: Caller, body: dict, base_url: str) -> dict:
        with self.backend.store.lock:
            return self._new_statement_job(caller, body, base_url)

    def _new_statement_job(self, caller: Caller, body: dict, base_url: str) -> dict:
        shown = self.statement_jobs.create(caller, body)
        collection = self.backend.store.collection(caller.org_id, self.statement_jobs.kind.collection)
        collection.put({**collection.get(shown["id"]), "_baseUrl": base_url})
        self.queue.schedule(RunStatementJob(caller.org_id, shown["id"]), self.backend.clock.now() + STATEMENT_JOB_TIME)
        return shown

    def create_statement_jobs(self, caller: Caller, body: dict, base_url: str) -> list[dict]:
        """One job per bill of ``billIds``, all or none: an unknown bill is a 400 naming it."""
        with self.backend.store.lock:
            bill_ids = list(dict.fromkeys(body["billIds"]))
            for bill_id in bill_ids:
                if not self.bills.exists(caller, bill_id):
                    raise MockError.bad_request(f"billIds: no Bill with id {bill_id!r}")
            shared = {k: body[k] for k in ("filters", "includeCsvFormat") if body.get(k) is not None}
            return [self._new_statement_job(caller, {**shared, "billId": bill_id}, base_url) for bill_id in bill_ids]

    def cancel_statement_job(self, caller: Caller, job_id: str) -> dict:
        with self.backend.store.lock:
            job = self.statement_jobs.find(caller, job_id)
            rules.check_job_cancellable(self.statement_jobs.kind.label, job_id, job["statementJobStatus"],
                                        rules.ACTIVE_STATEMENT_JOB_STATUSES)
            return public_view(self._change(caller, self.statement_jobs, job, {"statementJobStatus": "CANCELLED"}))

    def list_statement_jobs(self, caller: Caller, active: str | None, status: str | None, bill_id: str | None,
                            page_size: int | None, next_token: str | None) -> tuple[list[dict], str | None]:
        """At most one of ``active``, ``status`` and ``billId`` (m3ter refuses more)."""
        given = [name for name, value in (("active", active), ("status", status), ("billId", bill_id))
                 if value is not None]
        if len(given) > 1:
            raise MockError.bad_request(f"{given[1]}: use only one of active, status and billId (given: "
                                        f"{', '.join(given)})")
        if status is not None and status not in rules.STATEMENT_JOB_STATUSES:
            raise MockError.bad_request(f"status: {status!r} is not one of {list(rules.STATEMENT_JOB_STATUSES)}")
        only_active = rules.flag(active, "active")

        def matches(job: dict) -> bool:
            return ((not only_active or job["statementJobStatus"] in rules.ACTIVE_STATEMENT_JOB_STATUSES)
                    and (status is None or job["statementJobStatus"] == status)
                    and (bill_id is None or job.get("billId") == bill_id))

        return self._list_jobs(caller, self.statement_jobs, {
            "active":  # pragma: no mutate: only a key of the filters nextToken is bound to; any name binds alike
            only_active,
            "status":  # pragma: no mutate: only a key of the filters nextToken is bound to; any name binds alike
            status,
            "billId":  # pragma: no mutate: only a key of the filters nextToken is bound to; any name binds alike
            bill_id}, matches, page_size, next_token)

    def _list_jobs(self, caller, jobs: CrudService, filters: dict, matches, page_size, next_token):
        with self.backend.store.lock:
            items, token = self.backend.paginate(
                ListScope(caller.org_id, jobs.kind.collection, {k: v for k, v in filters.items() if v is not None}),
                self.backend.store.peek(caller.org_id, jobs.kind.collection), matches, page_size, next_token)
            return [jobs.kind.view(j) for j in items], token

    def resume(self, org_id: str) -> None:
        """Queue again, from now, the statement jobs the organization's stored state has
        PENDING (after a restore or a load: the queue is not part of the state)."""
        jobs = self.backend.resources.get("statementjobs")
        if jobs is None:
            return
        for job in list(self.backend.store.peek(org_id, jobs.kind.collection).values()):
            if job.get("statementJobStatus") == "PENDING":
                self.queue.schedule(RunStatementJob(org_id, job["id"]), self.backend.clock.now() + STATEMENT_JOB_TIME)

    def _run_statement_job(self, run: RunStatementJob) -> None:
        with self.backend.store.lock:
            jobs = self.backend.store.peek(run.org_id, self.statement_jobs.kind.collection)
            job = jobs.get(run.job_id)
            if job is None or job["statementJobStatus"] != "PENDING":
                return  # cancelled (or the organization was reset) since it was queued
            caller = Caller(run.org_id, job.get("createdBy", "m3ter-mock"))
            bill = self._bill_collection(run.org_id).get(job["billId"])
            if bill is None:
                self._change(caller, self.statement_jobs, job, {"statementJobStatus": "FAILED"})
                return
            formats = ["JSON"] + (["CSV"] if job.get("includeCsvFormat") else [])
            changes: dict[str, Any] = {"statementJobStatus": "COMPLETE"}
            for file_format in formats:
                bill = self._make_statement(caller, bill, file_format, job.get("filters"))
                url = self._grant(run.org_id, self._statements(bill["id"]), file_format, job.get("_baseUrl", ""))
                prefix = "json" if file_format == "JSON" else "csv"
                changes.update({f"{prefix}StatementStatus": "LATEST",
                                f"presigned{prefix.capitalize()}StatementUrl": url})
            self._change(caller, self.statement_jobs, job, changes)

    # -- bill jobs -----------------------------------------------------------------------
    def list_bill_jobs(self, caller: Caller, active: str | None, status: str | None, page_size: int | None,
                       next_token: str | None) -> tuple[list[dict], str | None]:
        if status is not None and status not in rules.BILL_JOB_STATUSES:
            raise MockError.bad_request(f"status: {status!r} is not one of {list(rules.BILL_JOB_STATUSES)}")
        only_active = rules.flag(active, "active")

        def matches(job: dict) -> bool:
            return ((not only_active or job.get("status") in rules.ACTIVE_BILL_JOB_STATUSES)
                    and (status is None or job.get("status") == status))

        return self._list_jobs(caller, self.bill_jobs, {
            "active":  # pragma: no mutate: only a key of the filters nextToken is bound to; any name binds alike
            only_active,
            "status":  # pragma: no mutate: only a key of the filters nextToken is bound to; any name binds alike
            status}, matches, page_size, next_token)

    def cancel_bill_job(self, caller: Caller, job_id: str) -> dict:
        with self.backend.store.lock:
            job = self.bill_jobs.find(caller, job_id)
            rules.check_job_cancellable(self.bill_jobs.kind.label, job_id, job.get("status"),
                                        rules.ACTIVE_BILL_JOB_STATUSES)
            return public_view(self._change(caller, self.bill_jobs, job, {"status": "CANCELLED"}))

