"""Bill runs: bill jobs, recalculation, previews and scheduled runs, on the mock's clock.

A bill is made for one account and one billing period (``mockserver.domain.bill_periods``)
from the account's account plans in that period: each plan with its plan template, the
pricings of the plan (or, for an aggregation the plan does not price, of its template)
active in the period, the quantities of the usage engine (``backend.usage_engine``) and the
pricing maths (``mockserver.domain.pricing``). Then the account's commitments and balances
active in the period draw the charges down, in the account's (else the organization's)
``creditApplicationOrder`` (PREPAYMENT then BALANCE by default). Account plans of different
frequencies or periods make separate bills.

* A commitment's ``amountSpent`` counts every charge it covers, overage included (so it can
  pass ``amount``: "overspent"). It moves through the commitments' CrudService (``modify``: an
  action's change, the version stays), so ``configuration.commitment.updated`` is recorded with
  the old and new amounts and goes through the notification rules; a PUT keeps it. A balance draw is a negative
  transaction (``entityType: BILL``) and a new ``amount`` (``billing.balance.updated``, and
  ``billing.balanceamount.updated``).
* A bill that exists for the same account, period start and frequency and is not locked is
  recalculated in place (same id, ``billing.bill.updated``); what it had drawn from
  commitments and balances is given back first, so running a period twice never counts its
  usage twice. A locked bill is left as it is. Deleting a bill gives back what it drew.
* Bill jobs are PENDING when made, start one second later on the mock's clock (time to
  cancel one), go RUNNING with ``total``/``pending`` counts, bill ``BATCH`` accounts per step
  (the store is not held for a whole large run) and end COMPLETE with ``billIds``.
* Scheduled runs: m3ter updates bills every ``scheduledBillInterval`` hours of the
  organization configuration (0, the default, turns scheduling off). At each run the mock
  makes the bill of every period that ended since the previous run and updates the bill of
  the current period (a bill that would not change is not rewritten).

Money stays ``Decimal`` until the bill is stored, where it becomes JSON numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from mockserver.domain import bill_periods as periods
from mockserver.domain import bills as bill_rules
from mockserver.domain import pricing
from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError

from .actions.billing import LINE_ITEM_FIELDS
from .crud import Caller, ResourceKind
from .worker import DueWorker

log = logging.getLogger("m3ter_mock")

JOB_DELAY = timedelta(seconds=1)
BATCH = 50  # bills per worker step of a bill job
SCHEDULER = "m3ter-scheduler"  # who makes the scheduled runs' bills
USAGE_FILES = "lineitemusage"  # bills/<billId>/lineitemusage: the line items' usage documents
DEFAULT_CREDIT_ORDER = ("PREPAYMENT", "BALANCE")
# What a bill job keeps of its request (BillJobRequest, less ``version``).
JOB_FIELDS = ("lastDateInBillingPeriod", "billingFrequency", "billFrequencyInterval", "billDate",
              "externalInvoiceDate", "dueDate", "accountIds", "targetCurrency", "currencyConversions", "timezone",
              "yearEpoch", "monthEpoch", "weekEpoch", "dayEpoch")
MAX_INTERVAL = 365
MIN_YEAR, MAX_YEAR = 1000, 8999  # periods of up to 365 years stay within Python's dates
MIN_SCHEDULE_HOURS = 0.25  # m3ter's shortest scheduledBillInterval; a shorter one counts as this


@dataclass(frozen=True)
class JobStep:
    org_id: str
    job_id: str


@dataclass(frozen=True)
class ScheduledRun:
    org_id: str
    config_version: int
    previous: datetime
    at: datetime


@dataclass
class Unit:
    """One bill to make: an account, its billing period and the account plans billed in it."""
    account_id: str
    start: date
    end: date
    frequency: str
    interval: int
    account_plan_ids: list[str]
    bill_id: str | None = None  # a recalculation names the bill
    full_end: date | None = None  # the billing period's end when ``end`` cuts it short

    def to_dict(self) -> dict:
        return {"accountId": self.account_id, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "frequency": self.frequency, "interval": self.interval, "accountPlanIds": self.account_plan_ids,
                "billId": self.bill_id, "fullEnd": self.full_end.isoformat() if self.full_end else None}

    @classmethod
    def from_dict(cls, raw: dict) -> "Unit":
        return cls(raw["accountId"], date.fromisoformat(raw["start"]), date.fromisoformat(raw["end"]),
                   raw["frequency"], raw["interval"], list(raw["accountPlanIds"]), raw.get("billId"),
                   date.fromisoformat(raw["fullEnd"]) if raw.get("fullEnd") else None)


@dataclass
class Priced:
    """A bill worked out and not yet stored: its lines, and what it takes from commitments
    (new amountSpent by id) and balances (amount drawn by id)."""
    lines: list[dict]
    currency: str
    spent: dict[str, Decimal] = field(default_factory=dict)
    drawn: dict[str, Decimal] = field(default_factory=dict)


# -- JSON ---------------------------------------------------------------------------------

def wire(value: Any) -> Any:
    """A line as stored and shown: Decimal as a JSON number, a datetime as m3ter's timestamp."""
    if isinstance(value, Decimal):
        return bill_rules.number(value)
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [wire(v) for v in value]
    return value


def money(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value if value is not None else 0))


def _fingerprint(lines: list[dict], fields: dict) -> str:
    """What a bill says, whatever ids its lines got (a line refers to another by position)."""
    position = {line.get("id"): n for n, line in enumerate(lines)}
    said = [{**{k: v for k, v in line.items() if k != "id"},
             "referencedLineItemId": position.get(line.get("referencedLineItemId"))} for line in lines]
    text = json.dumps([said, fields], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _instant(value: str | None) -> datetime | None:
    return bill_rules.instant_of(value) if value else None


def _start_day(account_plan: dict) -> date:
    """The day an account plan starts (its startDate was checked when it was saved)."""
    return periods.parse_day(account_plan["startDate"],
                             "startDate")  # pragma: no mutate: the field of an error a saved startDate never gives


def _active(entity: dict, service: tuple[datetime, datetime]) -> tuple[datetime, datetime] | None:
    """The part of ``service`` in which the entity (startDate, optional endDate) runs."""
    start = _instant(entity.get("startDate")) or service[0]  # pragma: no mutate: every billed entity has a startDate
    end = _instant(entity.get("endDate")) or service[1]
    return periods.overlap((start, end), service)


# -- the organization's billing data, read once per step ------------------------------------

class OrgData:
    """The entities a bill run reads, grouped for lookups; read with the store locked. A
    lookup by a field that is absent (None) finds nothing, as an unknown id does."""

    def __init__(self, backend, org_id: str):
        self.backend = backend
        self.org_id = org_id

        def peek(key: str):
            service = backend.resources.get(key)
            return backend.store.peek(org_id, service.kind.collection) if service else {}

        def grouped(key: str, by: str) -> dict[str, list[dict]]:
            out: dict[str, list[dict]] = {}
            for item in peek(key).values():
                if item.get(by):
                    out.setdefault(item[by], []).append(item)
            return out

        self.accounts = peek("accounts")
        self.plans = peek("plans")
        self.templates = peek("plantemplates")
        self.products = peek("products")
        self.aggregations = peek("aggregations")
        self.compound_aggregations = peek("compoundaggregations")
        self.currencies = {c.get("code"): c for c in peek("picklists/currency").values()}
        self.account_plans = grouped("accountplans", "accountId")
        self.plan_pricings = grouped("pricings", "planId")
        self.template_pricings = grouped("pricings", "planTemplateId")
        self.group_links = grouped("plangrouplinks", "planGroupId")
        self.commitments = grouped("commitments", "accountId")
        self.balances = grouped("balances", "accountId")
        config = backend.resources.get("organizationconfig")
        self.config = config.read(Caller(org_id, SCHEDULER)) if config else {}

    def money(self, currency: str | None) -> pricing.Money:
        """How amounts in ``currency`` are rounded (the organization's Currency entity, if any)."""
        return pricing.Money.of(currency, self.currencies.get(currency))

    def plans_of(self, account_plan: dict) -> list[dict]:
        """The plans an account plan attaches: its plan, or the plans of its plan group."""
        if account_plan.get("planId"):
            plan = self.plans.get(account_plan["planId"])
            return [plan] if plan else []
        links = self.group_links.get(account_plan.get("planGroupId"), [])
        found = (self.plans.get(link.get("planId")) for link in links)
        return [plan for plan in found if plan is not None]

    def schedule_of(self, account_plan: dict) -> tuple[str, int] | None:
        """(billFrequency, billFrequencyInterval) of the account plan's (first) plan template."""
        for plan in self.plans_of(account_plan):
            template = self.templates.get(plan.get("planTemplateId"))
            if template:
                return template.get("billFrequency", "MONTHLY"), int(template.get("billFrequencyInterval") or 1)
        return None


# -- the service ---------------------------------------------------------------------------

class BillRuns:
    def __init__(self, backend):
        self.backend = backend
        self.queue = DueWorker(backend.clock, "billruns", self._handle)
        backend.add_change_listener(self._on_entity_changed)

    @property
    def billing(self):
        from .actions.billing import service

        return service(self.backend)

    def _service(self, key: str):
        found = self.backend.resources.get(key)
        if found is None:
            raise MockError.not_implemented(f"the spec the mock serves has no {key!r} resource")
        return found

    # -- the API ------------------------------------------------------------------------
    def create_job(self, caller: Caller, body: dict) -> dict:
        """CreateBillJob: the job, PENDING; it runs one second later on the mock's clock."""
        fields = {k: body[k] for k in JOB_FIELDS if body.get(k) is not None}
        _check_request(fields)
        with self.backend.store.lock:
            accounts = self._service("accounts")
            for account_id in fields.get("accountIds", ()):
                if not accounts.exists(caller, account_id):
                    raise MockError.bad_request(f"accountIds: no Account with id {account_id!r}")
            today = self.backend.clock.now().date()
            job = self.billing.store_bill_job(caller, **fields, _day=today.isoformat())
        self.queue.schedule(JobStep(caller.org_id, job["id"]), self.backend.clock.now() + JOB_DELAY)
        return job

    def recalculate_job(self, caller: Caller, body: dict) -> dict:
        """RecalculateBillJob: every bill must exist (400) and be unlocked (409), or no job is made."""
        bills = self._service("bills")
        with self.backend.store.lock:
            stored = self.backend.store.peek(caller.org_id, bills.kind.collection)
            bill_ids = list(dict.fromkeys(body["billIds"]))
            for bill_id in bill_ids:
                bill = stored.get(bill_id)
                if bill is None:
                    raise MockError.bad_request(f"billIds: no Bill with id {bill_id!r}")
                bill_rules.check_unlocked(bill)
            job = self.billing.store_bill_job(caller, type="RECALCULATE", billIds=bill_ids,
                                              accountIds=list(dict.fromkeys(stored.get(b)["accountId"]
                                                                            for b in bill_ids)),
                                              total=len(bill_ids), pending=len(bill_ids),
                                              _recalculate=bill_ids)
        self.queue.schedule(JobStep(caller.org_id, job["id"]), self.backend.clock.now() + JOB_DELAY)
        return job

    def preview(self, caller: Caller, body: dict) -> dict:
        """PreviewBill: the bill a job with this body would make for its one account, not
        stored; commitments and balances are not drawn."""
        account_ids = body.get("accountIds") or []
        if len(account_ids) != 1:
            raise MockError.bad_request(f"accountIds: a preview is for exactly one account (given {len(account_ids)})")
        for name in ("billingFrequency", "billFrequencyInterval"):
            if body.get(name) is None:
                raise MockError.bad_request(f"{name}: required for a preview")
        _check_request(body)
        with self.backend.store.lock:
            data = OrgData(self.backend, caller.org_id)
            account = data.accounts.get(account_ids[0])
            if account is None:
                raise MockError.bad_request(f"accountIds: no Account with id {account_ids[0]!r}")
            units = self._units_for_account(data, account, body, self.backend.clock.now().date())
            if not units:
                units = [self._empty_unit(data, account, body, self.backend.clock.now().date())]
            unit = units[0]
            existing = self._existing_bills(caller.org_id).get(self._bill_key(unit))
            # As a recalculation would: what the stored bill drew is given back first.
            priced = self._price(data, account, unit, self._given_back(existing))
            fields = {**self._bill_fields(data, account, unit, body, priced, job_id=None),
                      "startDate": unit.start.isoformat(), "endDate": unit.end.isoformat(),
                      "startDateTimeUTC": isoformat(periods.instant(unit.start)),
                      "endDateTimeUTC": isoformat(periods.instant(unit.end))}
            items = [{**bill_rules.complete_line_item(wire(line), fields), "id": line.get("id") or _new_id()}
                     for line in priced.lines]
            now = isoformat(self.backend.clock.now())
            shown = {"id": existing["id"] if existing else _new_id(), "version": (existing or {}).get("version", 1),
                     "accountId": account["id"], "accountCode": account.get("code"), **fields,
                     "status": "PENDING", "locked": False, "createdDate": now, "lastCalculatedDate": now,
                     "lineItems": [{k: i[k] for k in LINE_ITEM_FIELDS if k in i} for i in items],
                     "billTotal": bill_rules.number(bill_rules.total(items))}
            return {k: v for k, v in shown.items() if v is not None and not k.startswith("_")}

    def line_item_usage_url(self, caller: Caller, bill_id: str, item_id: str, base_url: str) -> dict:
        """GetBillLineItemJsonUsage: a download URL of the line item's usage as JSON."""
        billing = self.billing
        with self.backend.store.lock:
            billing.bills.find(caller, bill_id)
            item = billing.line_items.find(caller, item_id, {"billId": bill_id})
            if item.get("aggregationId") is None and item.get("compoundAggregationId") is None:
                raise MockError.not_found(
                    f"Bill line item {item_id!r} is a {item.get('lineItemType')} line: only a usage line has usage")
            document = {k: item[k] for k in (
                "id", "billId", "lineItemType", "description", "productId", "productName", "planId", "pricingId",
                "aggregationId", "compoundAggregationId", "meterId", "segment", "servicePeriodStartDate",
                "servicePeriodEndDate", "quantity", "units", "unit", "subtotal", "currency", "bandUsage") if k in item}
            bill = billing.bills.find(caller, bill_id)
            document.update(accountId=bill["accountId"], accountCode=bill.get("accountCode"))
            name = f"bills/{bill_id}/{USAGE_FILES}"
            self.backend.store.collection(caller.org_id, name).put(
                {"id": item_id, "name": f"{item_id}_usage.json",
                 "content": json.dumps(document, sort_keys=True, separators=(",", ":")).encode(),
                 "mediaType": "application/json"})
            return {"downloadUrl": billing._grant(caller.org_id, name, item_id, base_url)}

    # -- the worker ---------------------------------------------------------------------
    def _handle(self, item) -> None:
        if isinstance(item, ScheduledRun):
            self._scheduled_run(item)
        else:
            self._job_step(item)

    def _job_step(self, step: JobStep) -> None:
        billing = self.billing
        with self.backend.store.lock:
            jobs = self.backend.store.peek(step.org_id, billing.bill_jobs.kind.collection)
            job = jobs.get(step.job_id)
            if job is None or job.get("status") not in ("PENDING", "RUNNING"):
                return  # cancelled, or the organization was reset
            caller = Caller(step.org_id, job.get("createdBy", SCHEDULER))
            try:
                if job["status"] == "PENDING":
                    units = [u.to_dict() for u in self._job_units(step.org_id, job)]
                    job = billing._change(caller, billing.bill_jobs, job,
                                          {"status": "RUNNING", "total": len(units), "pending": len(units),
                                           "_units": units, "_done": 0})
                else:
                    job = self._run_batch(caller, job)
            except Exception:  # a job must never stay RUNNING
                log.exception("bill job %s of %s failed", step.job_id, step.org_id)
                billing._change(caller, billing.bill_jobs, job, {"status": "COMPLETE", "pending": 0})
                return
            if job["status"] == "RUNNING" and job["_done"] >= len(job["_units"]):
                billing._change(caller, billing.bill_jobs, job, {"status": "COMPLETE", "pending": 0})
                return
        self.queue.schedule(step, self.backend.clock.now())

    def _run_batch(self, caller: Caller, job: dict) -> dict:
        done = job["_done"]
        batch = [Unit.from_dict(raw) for raw in job["_units"][done:done + BATCH]]
        data = OrgData(self.backend, caller.org_id)
        existing = self._existing_bills(caller.org_id)
        made = list(job.get("billIds") or []) if job.get("type") != "RECALCULATE" else []
        for unit in batch:
            try:
                bill = self._bill(caller, data, unit, job, existing)
            except MockError as error:  # e.g. an aggregation the usage engine cannot evaluate
                log.warning("bill job %s: account %s not billed: %s", job["id"], unit.account_id, error.message)
                bill = None
            if bill is not None and bill["id"] not in made:
                made.append(bill["id"])
        done += len(batch)
        changes: dict[str, Any] = {"_done": done, "pending": len(job["_units"]) - done}
        if job.get("type") == "RECALCULATE":
            changes["billIds"] = job.get("billIds")
        else:
            changes["billIds"] = made
        return self.billing._change(caller, self.billing.bill_jobs, job, changes)

    # -- which bills a job makes ----------------------------------------------------------
    def _job_units(self, org_id: str, job: dict) -> list[Unit]:
        data = OrgData(self.backend, org_id)
        if job.get("type") == "RECALCULATE":
            bills = self.backend.store.peek(org_id, self.billing.bills.kind.collection)
            units = []
            for bill_id in job.get("_recalculate", ()):
                bill = bills.get(bill_id)
                if bill is None:
                    continue
                units.append(self._unit_of_bill(data, bill))
            return units
        today = date.fromisoformat(job["_day"])
        wanted = job.get("accountIds")
        accounts = [data.accounts.get(a) for a in dict.fromkeys(wanted)] if wanted else list(data.accounts.values())
        units = []
        for account in accounts:
            if account is not None:
                units.extend(self._units_for_account(data, account, job, today))
        return units

    def _unit_of_bill(self, data: OrgData, bill: dict) -> Unit:
        start, end = date.fromisoformat(bill["startDate"]), date.fromisoformat(bill["endDate"])
        frequency, interval = bill.get("billingFrequency", "MONTHLY"), int(bill.get("billFrequencyInterval") or 1)
        plans = [ap["id"] for ap in data.account_plans.get(bill["accountId"], [])
                 if data.schedule_of(ap) == (frequency, interval)
                 and _active(ap, (periods.instant(start), periods.instant(end)))]
        full_end = date.fromisoformat(bill["_fullEnd"]) if bill.get("_fullEnd") else None
        return Unit(bill["accountId"], start, end, frequency, interval, plans, bill_id=bill["id"], full_end=full_end)

    def _period(self, data: OrgData, account: dict, account_plan: dict, frequency: str, interval: int,
                request: dict, day: date) -> tuple[date, date]:
        if frequency == periods.AD_HOC:
            start = _start_day(account_plan)
            return start, max(day + timedelta(days=1), start + timedelta(days=1))
        epoch = periods.epoch_for(frequency, account_plan, account, request, data.config)
        return periods.period_containing(day, frequency, interval, epoch)

    def _units_for_account(self, data: OrgData, account: dict, request: dict, today: date) -> list[Unit]:
        """The bills a job (or preview) with ``request`` makes for ``account``: its account
        plans of the requested frequency (and interval) grouped by billing period. The period is
        the one holding ``lastDateInBillingPeriod`` (cut to end the day after it), else today."""
        last = request.get("lastDateInBillingPeriod")
        day = periods.parse_day(last, "lastDateInBillingPeriod") if last else today
        groups: dict[tuple, Unit] = {}
        for account_plan in data.account_plans.get(account["id"], []):
            schedule = data.schedule_of(account_plan)
            if schedule is None:
                continue
            frequency, interval = schedule
            if request.get("billingFrequency") and request["billingFrequency"] != frequency:
                continue
            if request.get("billFrequencyInterval") and int(request["billFrequencyInterval"]) != interval:
                continue
            start, full_end = self._period(data, account, account_plan, frequency, interval, request, day)
            end = min(full_end, day + timedelta(days=1)) if last else full_end
            if not _active(account_plan, (periods.instant(start), periods.instant(end))):
                continue
            key = (frequency, interval, start, end)
            unit = groups.get(key)
            if unit is None:
                unit = groups[key] = Unit(account["id"], start, end, frequency, interval, [],
                                          full_end=full_end if full_end != end else None)
            unit.account_plan_ids.append(account_plan["id"])
        return list(groups.values())

    def _empty_unit(self, data: OrgData, account: dict, request: dict, today: date) -> Unit:
        frequency, interval = request["billingFrequency"], int(request["billFrequencyInterval"])
        last = request.get("lastDateInBillingPeriod")
        day = periods.parse_day(last, "lastDateInBillingPeriod") if last else today
        if frequency == periods.AD_HOC:
            start, end = day, day + timedelta(days=1)
        else:
            epoch = periods.epoch_for(frequency, account, request, data.config)
            start, end = periods.period_containing(day, frequency, interval, epoch)
            if last:
                end = min(end, day + timedelta(days=1))
        return Unit(account["id"], start, end, frequency, interval, [])

    # -- making one bill ----------------------------------------------------------------
    @staticmethod
    def _bill_key(unit: Unit) -> tuple:
        return unit.account_id, unit.start.isoformat(), unit.frequency, unit.interval

    def _existing_bills(self, org_id: str) -> dict[tuple, dict]:
        found = {}
        for bill in self.backend.store.peek(org_id, self.billing.bills.kind.collection).values():
            found[(bill.get("accountId"), bill.get("startDate"), bill.get("billingFrequency"),
                   int(bill.get("billFrequencyInterval") or 1))] = bill
        return found

    def _bill(self, caller: Caller, data: OrgData, unit: Unit, request: dict | None,
              existing: dict[tuple, dict], *, skip_unchanged: bool = False) -> dict | None:
        """Make (or recalculate) the unit's bill and draw its commitments and balances;
        None when the bill is locked (or unchanged, with ``skip_unchanged``)."""
        account = data.accounts.get(unit.account_id)
        if account is None:
            return None
        bills = self.backend.store.peek(caller.org_id, self.billing.bills.kind.collection)
        old = bills.get(unit.bill_id) if unit.bill_id else existing.get(self._bill_key(unit))
        if old is not None and old.get("locked"):
            return None
        given_back = self._given_back(old)
        priced = self._price(data, account, unit, given_back)
        job_id = request.get("id") if request else None
        fields = self._bill_fields(data, account, unit, request or {}, priced, job_id=job_id)
        lines = [wire(line) for line in priced.lines]
        print_ = _fingerprint(lines, {k: v for k, v in fields.items() if k not in ("billJobId", "lastCalculatedDate")})
        if skip_unchanged and old is not None and old.get("_fingerprint") == print_:
            return None
        stored = self.billing.store_bill(
            caller, unit.account_id, unit.start.isoformat(), unit.end.isoformat(), lines, replacing=old,
            **fields, _fingerprint=print_, _spent=self._spent_deltas(data, priced, given_back),
            _fullEnd=unit.full_end.isoformat() if unit.full_end else None,
            _drawn={k: str(v) for k, v in priced.drawn.items() if v})
        if old is not None:
            self.backend.store.org(caller.org_id).collections.pop(f"bills/{old['id']}/{USAGE_FILES}", None)
        self._apply_credits(caller, data, stored, old, priced, given_back)
        existing[self._bill_key(unit)] = bills.get(stored["id"])
        return stored

    def _bill_fields(self, data: OrgData, account: dict, unit: Unit, request: dict, priced: Priced,
                     job_id: str | None) -> dict:
        days = account.get("daysBeforeBillDue") or data.config.get("daysBeforeBillDue") or 1

        def day(name: str) -> date | None:
            return periods.parse_day(request[name], name) if request.get(name) else None

        dates = periods.bill_dates((unit.start, unit.end), days_before_due=int(days),
                                   invoice_date_rule=data.config.get("externalInvoiceDate"),
                                   bill_date=day("billDate"), due_date=day("dueDate"),
                                   external_invoice_date=day("externalInvoiceDate"))
        fields = {**dates, "billingFrequency": unit.frequency, "billFrequencyInterval": unit.interval,
                  "currency": priced.currency, "timezone": request.get("timezone") or "UTC",
                  "billJobId": job_id, "purchaseOrderNumber": account.get("purchaseOrderNumber"),
                  "lastCalculatedDate": isoformat(self.backend.clock.now())}
        if request.get("currencyConversions"):
            fields["currencyConversions"] = request["currencyConversions"]
        return fields

    # -- pricing ------------------------------------------------------------------------
    def _price(self, data: OrgData, account: dict, unit: Unit,
               given_back: tuple[dict, dict] = ({}, {})) -> Priced:
        """The bill's lines: every plan's charges (credits capped), then the commitments and
        balances that draw them down."""
        bill_period = (periods.instant(unit.start), periods.instant(unit.end))
        full_period = (bill_period[0], periods.instant(unit.full_end or unit.end))
        lines: list[dict] = []
        currency = None
        for account_plan_id in unit.account_plan_ids:
            account_plan = next((ap for ap in data.account_plans.get(unit.account_id, [])
                                 if ap["id"] == account_plan_id), None)
            if account_plan is None:
                continue
            window = _active(account_plan, bill_period)
            if window is None:
                continue
            for plan in data.plans_of(account_plan):
                template = data.templates.get(plan.get("planTemplateId"))
                if template is None:
                    continue
                currency = currency or template.get("currency")
                lines.extend(self._plan_lines(data, account, account_plan, plan, template, unit, window,
                                              full_period))
        currency = currency or account.get("currency") or data.config.get("currency") or "USD"
        priced = Priced(pricing.cap_credits(lines), currency)
        order = account.get("creditApplicationOrder") or data.config.get("creditApplicationOrder") \
            or DEFAULT_CREDIT_ORDER
        for credit in order:
            if credit == "PREPAYMENT":
                self._draw_commitments(data, account, priced, bill_period, given_back[0])
            elif credit == "BALANCE":
                self._draw_balances(data, account, priced, bill_period, given_back[1])
        return priced

    def _plan_lines(self, data: OrgData, account: dict, account_plan: dict, plan: dict, template: dict,
                    unit: Unit, window: tuple[datetime, datetime],
                    full_period: tuple[datetime, datetime]) -> list[dict]:
        """One plan's standing charge, usage and minimum spend lines. ``window``: the part of the
        bill's period the account plan covers (usage is measured there); ``full_period``: the
        whole billing period (standing charges and minimums are prorated to ``window``)."""
        money = data.money(template.get("currency"))
        product = data.products.get(template.get("productId")) or {}
        items = self._usage_items(data, account, plan, template, window)
        usage = pricing.usage_lines(items, window, already=self._already(data, account, account_plan, window),
                                    money=money)
        totals = {item.pricing.get("id"): Decimal(0) for item in items}  # a pricing without usage has no line
        for line in usage:
            totals[line.get("pricingId")] += money_of(line)
        active = (window[0], window[1] if window[1] < full_period[1] else None)
        index = self._bill_index(data, account, account_plan, unit)
        lines = pricing.standing_charge_lines(plan, template, full_period, bill_index=index, active=active,
                                              org_config=data.config, money=money)
        lines += usage
        lines += pricing.minimum_spend_lines(
            plan, template, sum(totals.values(), Decimal(0)), full_period,
            pricing_totals=[(item.pricing, totals[item.pricing.get("id")]) for item in _unique_pricings(items)],
            bill_index=index, active=active, org_config=data.config, money=money)
        shown = {"productId": product.get("id"), "productName": product.get("name"),
                 "productCode": product.get("code"), "planId": plan["id"]}
        return [{**{k: v for k, v in shown.items() if v is not None}, **{k: v for k, v in line.items()
                                                                          if v is not None}} for line in lines]

    def _bill_index(self, data: OrgData, account: dict, account_plan: dict, unit: Unit) -> int | None:
        """Which bill of the account plan this is (0: its first), for charges on every n-th bill."""
        if unit.frequency not in periods.FREQUENCIES or not account_plan.get("startDate"):
            return None
        epoch = periods.epoch_for(unit.frequency, account_plan, account, data.config)
        first = periods.period_index(_start_day(account_plan), unit.frequency, unit.interval, epoch)
        return max(0, periods.period_index(unit.start, unit.frequency, unit.interval, epoch) - first)

    def _pricings(self, data: OrgData, plan: dict, template: dict,
                  service: tuple[datetime, datetime]) -> list[dict]:
        """The pricings in force: per aggregation (and segment), the plan's own over its
        template's; of several active in the period, the one that started last."""
        chosen: dict[tuple, tuple] = {}
        for rank, source in ((1, data.plan_pricings.get(plan["id"], [])),
                             (0, data.template_pricings.get(template["id"], []))):
            for pricing_entity in source:
                if not _active(pricing_entity, service):
                    continue
                target = pricing_entity.get("aggregationId") or pricing_entity.get("compoundAggregationId")
                if not target:
                    continue
                key = (target, json.dumps(pricing_entity.get("segment") or {}, sort_keys=True))
                score = (rank, pricing_entity["startDate"], pricing_entity)  # startDate: required of every Pricing
                if key not in chosen or score[:2] > chosen[key][:2]:
                    chosen[key] = score
        return [score[2] for score in chosen.values()]

    def _usage_items(self, data: OrgData, account: dict, plan: dict, template: dict,
                     window: tuple[datetime, datetime]) -> list[pricing.PricedUsage]:
        """A priced quantity per pricing (and, for an unsegmented pricing of a segmented
        aggregation, per segment no pricing of its own names)."""
        items = []
        chosen = self._pricings(data, plan, template, window)
        claimed: dict[str, set] = {}
        for entity in chosen:
            if entity.get("segment"):
                claimed.setdefault(_target(entity), set()).add(_segment_key(entity["segment"]))
        for entity in chosen:
            target = _target(entity)
            aggregation = data.aggregations.get(entity.get("aggregationId")) \
                or data.compound_aggregations.get(entity.get("compoundAggregationId")) or {}

            def item(segment, quantity):
                return pricing.PricedUsage(entity, segment, quantity, product_id=template.get("productId"),
                                           plan_id=plan["id"], meter_id=aggregation.get("meterId"),
                                           unit=aggregation.get("unit"), name=aggregation.get("name"))

            quantities = self._quantities(data.org_id, target, account.get("code", ""), window)
            if entity.get("segment"):
                items.append(item(dict(entity["segment"]),
                                  quantities.get(_segment_key(entity["segment"]), Decimal(0))))
                continue
            if None in quantities:
                items.append(item(None, quantities[None]))
            for key, quantity in quantities.items():
                if key is not None and key not in claimed.get(target, set()):
                    items.append(item(dict(key), quantity))
        return items

    def _already(self, data: OrgData, account: dict, account_plan: dict, window: tuple[datetime, datetime]):
        """For ``tiersSpanPlan``: the units billed before this period since the account plan began."""
        plan_start = _instant(account_plan.get("startDate")) or window[0]

        def already(entity: dict) -> Decimal:
            if plan_start >= window[0]:  # pragma: no mutate  ">": the usage over an empty interval is 0 as well
                return Decimal(0)
            quantities = self._quantities(data.org_id, _target(entity), account.get("code", ""),
                                          (plan_start, window[0]))
            return quantities.get(_segment_key(entity.get("segment")), Decimal(0))

        return already

    def _quantities(self, org_id: str, target_id: str, account_code: str,
                    service: tuple[datetime, datetime]) -> dict:
        """The usage engine's quantities (``UsageEngine.quantities``), isolated here."""
        return self.backend.usage_engine.quantities(org_id, target_id, account_code,
                                                    periods.moment_millis(service[0]),
                                                    periods.moment_millis(service[1]))

    # -- commitments and balances ---------------------------------------------------------
    def _draw_commitments(self, data: OrgData, account: dict, priced: Priced, bill_period,
                          given_back: dict) -> None:
        pricings = {p["id"]: p for group in data.plan_pricings.values() for p in group}
        pricings.update({p["id"]: p for group in data.template_pricings.values() for p in group})
        for commitment in self._current(data, "commitments", data.commitments.get(account["id"], [])):
            if commitment.get("currency", priced.currency) != priced.currency or not _active(commitment,
                                                                                             bill_period):
                continue
            base = money(commitment.get("amountSpent", 0)) - given_back.get(commitment["id"], Decimal(0))
            lines, spent = pricing.commitment_lines(
                {**commitment, "amountSpent": base}, priced.lines, bill_period,
                bill_frequency=self._billing_plan_frequency(data, commitment), org_config=data.config,
                pricings=pricings, money=data.money(priced.currency))
            priced.lines.extend(lines)
            # amountSpent counts every eligible charge billed: the drawdown, and past the
            # commitment's amount the overage too (so a rule can see a commitment overspent).
            priced.spent[commitment["id"]] = spent

    @staticmethod
    def _billing_plan_frequency(data: OrgData, commitment: dict) -> tuple[str, int] | None:
        plan = data.plans.get(commitment.get("billingPlanId"))
        template = data.templates.get((plan or {}).get("planTemplateId"))
        if template is None:
            return None
        return template.get("billFrequency", "MONTHLY"), int(template.get("billFrequencyInterval") or 1)

    def _draw_balances(self, data: OrgData, account: dict, priced: Priced, bill_period,
                       given_back: dict) -> None:
        # A balance in another currency draws nothing: pricing.balance_lines draws only the
        # charges in the balance's own currency.
        balances = [{**b, "amount": money(b.get("amount", 0)) + given_back.get(b["id"], Decimal(0))}
                    for b in self._current(data, "balances", data.balances.get(account["id"], []))]
        if not balances:
            return
        lines, drawn = pricing.balance_lines(balances, priced.lines, bill_period, money=data.money(priced.currency))
        priced.lines.extend(lines)
        priced.drawn.update({k: money(v) for k, v in drawn.items() if v})

    @staticmethod
    def _given_back(old: dict | None) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """What a bill being recalculated had taken: (commitment id -> amountSpent it added,
        balance id -> amount it drew)."""
        if old is None:
            return {}, {}
        return ({k: Decimal(v) for k, v in (old.get("_spent") or {}).items()},
                {k: Decimal(v) for k, v in (old.get("_drawn") or {}).items()})

    def _current(self, data: OrgData, key: str, entities: list[dict]) -> list[dict]:
        """The entities as stored now: a bill made earlier in the same step may have changed them."""
        stored = self.backend.store.peek(data.org_id, self._service(key).kind.collection)
        return [found for found in (stored.get(e["id"]) for e in entities) if found is not None]

    def _spent_deltas(self, data: OrgData, priced: Priced, given_back: tuple[dict, dict]) -> dict[str, str]:
        deltas = {}
        stored = self.backend.store.peek(data.org_id, self._service("commitments").kind.collection)
        for commitment_id, new_spent in priced.spent.items():
            commitment = stored.get(commitment_id) or {}
            base = money(commitment.get("amountSpent", 0)) - given_back[0].get(commitment_id, Decimal(0))
            if new_spent - base:
                deltas[commitment_id] = str(new_spent - base)
        return deltas

    def _apply_credits(self, caller: Caller, data: OrgData, bill: dict, old: dict | None, priced: Priced,
                       given_back: tuple[dict, dict]) -> None:
        """Write the commitments' amountSpent and the balances' draws of a stored bill (after
        giving back what the bill it replaced had taken)."""
        commitments = self._service("commitments")
        for commitment_id in set(priced.spent) | set(given_back[0]):
            stored = commitments.backend.store.peek(caller.org_id, commitments.kind.collection).get(commitment_id)
            if stored is None:
                continue
            base = money(stored.get("amountSpent", 0)) - given_back[0].get(commitment_id, Decimal(0))
            self._set_spent(caller, stored, priced.spent.get(commitment_id, base))
        self._undo_draws(caller, old)
        for balance_id, amount in priced.drawn.items():
            if amount:
                self._draw(caller, balance_id, amount, bill)

    def _set_spent(self, caller: Caller, commitment: dict, spent: Decimal) -> None:
        if money(commitment.get("amountSpent", 0)) == spent and "amountSpent" in commitment:
            return
        self._service("commitments").modify(caller, commitment["id"], {"amountSpent": bill_rules.number(spent)})

    def _undo_draws(self, caller: Caller, bill: dict | None) -> None:
        """Give back to each balance what ``bill`` drew, and remove the bill's transactions."""
        if not bill:
            return
        transactions = self._service("balances/{balanceId}/transactions")
        for balance_id, amount in (bill.get("_drawn") or {}).items():
            scope = {"balanceId": balance_id}
            if not self._service("balances").exists(caller, balance_id):
                continue
            for item in list(self.backend.store.peek(caller.org_id, transactions.kind.collection_name(scope))
                             .values()):
                if item.get("entityType") == "BILL" and item.get("entityId") == bill["id"]:
                    transactions.delete(caller, item["id"], scope)
            self._move_balance(caller, balance_id, Decimal(amount))

    def _draw(self, caller: Caller, balance_id: str, amount: Decimal, bill: dict) -> None:
        transactions = self._service("balances/{balanceId}/transactions")
        scope = {"balanceId": balance_id}
        created = transactions.create(caller, {
            "amount": bill_rules.number(-amount),
            "description": f"Bill {bill['id']} ({bill['startDate']} to {bill['endDate']})",
            "appliedDate": bill["endDateTimeUTC"], "transactionDate": isoformat(self.backend.clock.now())}, scope)
        transactions.modify(caller, created["id"], {"entityType": "BILL", "entityId": bill["id"]}, scope)
        self._move_balance(caller, balance_id, -amount)

    def _move_balance(self, caller: Caller, balance_id: str, by: Decimal) -> None:
        balances = self._service("balances")
        balance = balances.find(caller, balance_id)
        before = money(balance.get("amount", 0))
        after = before + by
        balances.modify(caller, balance_id, {"amount": bill_rules.number(after)})
        shown = {"id": balance_id, "balanceId": balance_id, "accountId": balance.get("accountId"),
                 "currency": balance.get("currency"), "version": balance.get("version")}
        self.backend.events.record(caller.org_id, "billing.balanceamount.updated",
                                   new={**shown, "amount": bill_rules.number(after)},
                                   old={**shown, "amount": bill_rules.number(before)},
                                   resource_id=balance_id, account_id=balance.get("accountId"))

    # -- changes elsewhere ----------------------------------------------------------------
    def _on_entity_changed(self, caller: Caller, kind: ResourceKind, action: str, old, new) -> None:
        if kind.key == "bills" and action == "deleted" and old is not None:
            self._give_back(caller, old)
        elif kind.key == "organizationconfig" and new is not None:
            self._schedule_from(caller.org_id, new, self.backend.clock.now())

    def _give_back(self, caller: Caller, bill: dict) -> None:
        """A deleted bill returns what it drew from commitments and balances."""
        commitments = self._service("commitments")
        for commitment_id, delta in (bill.get("_spent") or {}).items():
            stored = self.backend.store.peek(caller.org_id, commitments.kind.collection).get(commitment_id)
            if stored is not None:
                self._set_spent(caller, stored, money(stored.get("amountSpent", 0)) - Decimal(delta))
        self._undo_draws(caller, bill)

    def resume(self, org_id: str) -> None:
        """Queue again what the organization's stored state implies (after a restore or a load:
        the queue is not part of the state): a PENDING bill job one second from now, a RUNNING
        one from where it stood, and the scheduled runs from now."""
        jobs = self.backend.resources.get("billjobs")
        now = self.backend.clock.now()
        for job in list(self.backend.store.peek(org_id, jobs.kind.collection).values()) if jobs else ():
            if job.get("status") == "PENDING":
                self.queue.schedule(JobStep(org_id, job["id"]), now + JOB_DELAY)
            elif job.get("status") == "RUNNING":
                self.queue.schedule(JobStep(org_id, job["id"]), now)
        config_service = self.backend.resources.get("organizationconfig")
        if config_service is not None:
            config = self.backend.store.peek(org_id, config_service.kind.collection).get(
                config_service.singleton_id(Caller(org_id, SCHEDULER)))
            if config is not None:
                self._schedule_from(org_id, config, now)

    # -- scheduled runs -----------------------------------------------------------------
    def _schedule_from(self, org_id: str, config: dict, after: datetime) -> None:
        hours = config.get("scheduledBillInterval") or 0
        if not hours:
            return  # a queued run finds the configuration changed and stops
        at = next_run(after, max(MIN_SCHEDULE_HOURS, float(hours)), int(config.get("scheduledBillOffset") or 0))
        self.queue.schedule(ScheduledRun(org_id, config["version"], after, at), at)

    def _scheduled_run(self, run: ScheduledRun) -> None:
        with self.backend.store.lock:
            config_service = self.backend.resources.get("organizationconfig")
            if config_service is None:
                return
            caller = Caller(run.org_id, SCHEDULER)
            stored = self.backend.store.peek(run.org_id, config_service.kind.collection).get(
                config_service.singleton_id(caller))
            if stored is None or stored.get("version") != run.config_version:
                return  # changed (and rescheduled) or reset since this run was queued
            try:
                self._bill_scheduled(caller, run.previous, run.at)
            except Exception:  # the next run must still be queued
                log.exception("scheduled bill run of %s failed", run.org_id)
            self._schedule_from(run.org_id, stored, run.at)

    def _bill_scheduled(self, caller: Caller, previous: datetime, at: datetime) -> None:
        data = OrgData(self.backend, caller.org_id)
        existing = self._existing_bills(caller.org_id)
        for account in list(data.accounts.values()):
            units: dict[tuple, Unit] = {}
            for account_plan in data.account_plans.get(account["id"], []):
                schedule = data.schedule_of(account_plan)
                if schedule is None or schedule[0] == periods.AD_HOC:
                    continue
                frequency, interval = schedule
                epoch = periods.epoch_for(frequency, account_plan, account, data.config)
                ended = periods.period_ends_between(previous.date(), at.date(), frequency, interval, epoch)
                current = periods.period_containing(at.date(), frequency, interval, epoch)
                for start, end in [*ended, current]:
                    if _active(account_plan, (periods.instant(start), periods.instant(end))):
                        key = (frequency, interval, start, end)
                        units.setdefault(key, Unit(account["id"], start, end, frequency, interval, []))
                        units[key].account_plan_ids.append(account_plan["id"])
            for unit in units.values():
                try:
                    self._bill(caller, data, unit, None, existing, skip_unchanged=True)
                except MockError as error:
                    log.warning("scheduled bill run: account %s not billed: %s", unit.account_id, error.message)


def next_run(after: datetime, hours: float, offset_hours: int = 0) -> datetime:
    """The first scheduled run strictly after ``after``: every ``hours`` from midnight UTC
    (plus ``offset_hours`` for a daily schedule)."""
    step = timedelta(hours=hours)
    base = datetime.combine(after.date(), datetime.min.time(), tzinfo=timezone.utc)
    if hours >= 24:
        base += timedelta(hours=offset_hours)
        if base > after:
            base -= timedelta(days=1)
    k = int((after - base) / step) + 1
    return base + k * step


def _segment_key(segment: dict | None):
    return tuple(sorted(segment.items())) if segment else None


def _target(pricing_entity: dict) -> str:
    return pricing_entity.get("aggregationId") or pricing_entity.get("compoundAggregationId")


def money_of(line: dict) -> Decimal:
    return money(line.get("subtotal", 0))


def _unique_pricings(items: list[pricing.PricedUsage]) -> list[pricing.PricedUsage]:
    seen, unique = set(), []
    for item in items:
        if item.pricing.get("id") not in seen:
            seen.add(item.pricing.get("id"))
            unique.append(item)
    return unique


def _check_request(body: dict) -> None:
    """A bill job's (or preview's) interval and dates within what the mock can count with."""
    interval = body.get("billFrequencyInterval")
    if interval is not None and not 1 <= interval <= MAX_INTERVAL:
        raise MockError.bad_request(f"billFrequencyInterval: {interval} is not between 1 and {MAX_INTERVAL} "
                                    "(the range of a plan template's)")
    for name in ("lastDateInBillingPeriod", "billDate", "dueDate", "externalInvoiceDate", "yearEpoch",
                 "monthEpoch", "weekEpoch", "dayEpoch"):
        if body.get(name) is not None and not MIN_YEAR <= periods.parse_day(body[name], name).year <= MAX_YEAR:
            raise MockError.bad_request(f"{name}: {body[name]} is outside the dates the mock bills "
                                        f"(years {MIN_YEAR} to {MAX_YEAR})")


def _new_id() -> str:
    return str(uuid.uuid4())

