"""The resources served by the generic engine: one short declaration each, holding only
what the spec cannot say.

The rest comes from the spec (``..shapes``): the collection and its parent scope from the
resource key, the label from the response schema's name, the writable fields from the
request schema, the filters from the list operation's query parameters. A declaration adds:

* ``event``: the entity of the Event catalogue (``mockserver/domain/event_catalogue.json``)
  whose ``configuration.*``/``billing.*`` types each create, update and delete records;
* ``references``: field -> resource key, as m3ter's API reference and the ``m3ter`` SDK
  docstrings state them. A reference to an id the organization does not hold is a 400
  naming the field; an entity that another one references cannot be deleted (409 naming
  the referrer), so references are removed (or the referrer deleted) first;
* ``exclusive``: groups of reference fields of which exactly one must be given (m3ter:
  "exclusive of", "either ... or");
* ``prepare``: a custom step for fields the response shows but no request sends;
* ``default``: what a singleton reads as before its first replace. Singletons follow the
  SDK's docstrings for ``version`` (``bill_config.update``, ``organization_config.update``,
  ``custom_fields.update``): "not valid for initial insertion", "on update ... required
  and must match". So the first replace may leave ``version`` out (it stores version 1
  and records the ``created`` Event); every later one must send the stored version (400
  without, 409 when stale) and records ``updated``;
* ``unique_code=False`` where ``code`` is not a unique key;
* ``parts``: array field -> (Event entity, natural key), for items that are entities of
  their own in the Event catalogue (a Pricing's bands: ``configuration.pricingband.*``,
  one band per ``lowerLimit``). Each item gets an id: the one it was sent, else the id of
  the stored item with the same natural key, else a new one; and its own
  created/updated/deleted Events, matched by id.

A resource that the spec serves with ``x-mock`` and that has no entry here is still served
(plain CRUD, no Event, no references).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from mockserver.domain import catalogue
from mockserver.domain.errors import MockError

from ..crud import (AUDIT_FIELDS, Caller, Filter, Prepare, ResourceKind, active_on, before, copy_fields,
                    equals, in_list, on_or_after)
from ..shapes import FilterRule, Shape


@dataclass(frozen=True)
class Declaration:
    event: str | None = None
    references: dict[str, str] = field(default_factory=dict)
    exclusive: tuple[tuple[str, ...], ...] = ()
    prepare: Callable[[Any, Caller, dict, "dict | None", dict], dict] | None = None  # (..., generic fields)
    default: dict[str, Any] | None = None
    unique_code: bool = True
    filters: dict[str, Filter] = field(default_factory=dict)
    parts: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (Event entity, natural key)


PRODUCT = "products"
# The Product a field names for accounting purposes (attribution of a charge's line items).
ACCOUNTING = {name: PRODUCT for name in (
    "accountingProductId", "feesAccountingProductId", "drawdownsAccountingProductId",
    "consumptionsAccountingProductId", "minimumSpendAccountingProductId", "standingChargeAccountingProductId")}


# -- custom steps ------------------------------------------------------------------------

def account_prepare(backend, caller, body, existing, fields):
    """A child Account names an existing parent that is not itself nor one of its children
    (a loop would make every Account in it impossible to delete)."""
    parent_id = fields.get("parentAccountId")
    if existing is not None and parent_id is not None:
        accounts, seen = backend.resources["accounts"], set()
        while parent_id is not None and parent_id not in seen:
            if parent_id == existing["id"]:
                raise MockError.bad_request(
                    f"parentAccountId: Account {fields['parentAccountId']!r} is {existing['id']!r} itself "
                    f"or one of its children")
            seen.add(parent_id)
            parent = accounts.find(caller, parent_id)
            parent_id = parent.get("parentAccountId")
    return fields


def product_of(field_name: str, resource: str):
    """A prepare step: the entity shows the Product of the entity its ``field_name`` names
    (a response field that no request sends)."""

    def prepare(backend, caller, body, existing, fields):
        if fields.get(field_name):
            named = backend.resources[resource].find(caller, fields[field_name])
            if named.get("productId"):
                fields["productId"] = named["productId"]
        return fields

    return prepare


# A Plan shows the Product of its Plan Template; an AccountPlan that of its Plan (a plan group has none).
plan_prepare = product_of("planTemplateId", "plantemplates")
account_plan_prepare = product_of("planId", "plans")


def balance_prepare(backend, caller, body, existing, fields):
    """A new Balance holds nothing; its amount moves with its transactions."""
    fields["amount"] = existing.get("amount", 0) if existing else 0
    return fields


def commitment_prepare(backend, caller, body, existing, fields):
    """``amountSpent`` is the bill runs' (no request sends it): an update keeps it."""
    if existing is not None and "amountSpent" in existing:
        fields["amountSpent"] = existing["amountSpent"]
    return fields


def statement_job_prepare(backend, caller, body, existing, fields):
    fields.update({"statementJobStatus": "PENDING", "orgId": caller.org_id})
    return fields


def revision_prepare(backend, caller, body, existing, fields):
    fields["status"] = existing.get("status", "DRAFT") if existing else "DRAFT"
    fields["itemCount"] = existing.get("itemCount", 0) if existing else 0
    return fields


def permission_policy_prepare(backend, caller, body, existing, fields):
    fields["managedPolicy"] = False  # only m3ter's own policies are managed
    return fields


def invitation_prepare(backend, caller, body, existing, fields):
    fields.update({"accepted": False, "invitingPrincipalId": caller.client_id})
    return fields


# -- the declarations --------------------------------------------------------------------

RESOURCES: dict[str, Declaration] = {
    "products": Declaration(event="product"),
    "meters": Declaration(event="meter", references={"productId": PRODUCT}),
    "aggregations": Declaration(event="aggregation", references={"meterId": "meters", **ACCOUNTING}),
    "plantemplates": Declaration(event="plantemplate", references={"productId": PRODUCT}),
    "plans": Declaration(event="plan", prepare=plan_prepare,
                         references={"planTemplateId": "plantemplates", "accountId": "accounts", **ACCOUNTING}),
    "plangroups": Declaration(event="plangroup", references={"accountId": "accounts", **ACCOUNTING}),
    "plangrouplinks": Declaration(event="plangrouplink",
                                  references={"planGroupId": "plangroups", "planId": "plans"}),
    "pricings": Declaration(
        event="pricing",
        references={"planId": "plans", "planTemplateId": "plantemplates", "aggregationId": "aggregations",
                    "compoundAggregationId": "compoundaggregations", **ACCOUNTING},
        exclusive=(("planId", "planTemplateId"), ("aggregationId", "compoundAggregationId")),
        parts={"pricingBands": ("pricingband", "lowerLimit")}),
    "accounts": Declaration(event="account", prepare=account_prepare,
                            references={"parentAccountId": "accounts",
                                        "statementDefinitionId": "statementdefinitions"}),
    "accountplans": Declaration(
        event="accountplan", prepare=account_plan_prepare,
        references={"accountId": "accounts", "planId": "plans", "planGroupId": "plangroups",
                    "contractId": "contracts"},
        exclusive=(("planId", "planGroupId"),)),
    "commitments": Declaration(
        event="commitment", prepare=commitment_prepare,
        references={"accountId": "accounts", "billingPlanId": "plans", "productIds": PRODUCT,
                    "contractId": "contracts", **ACCOUNTING}),
    "contracts": Declaration(event="contract", references={"accountId": "accounts",
                                                           "billGroupingKeyId": "picklists/billgroupingkeys"}),
    "counters": Declaration(references={"productId": PRODUCT}),
    "counterpricings": Declaration(
        references={"counterId": "counters", "planId": "plans", "planTemplateId": "plantemplates", **ACCOUNTING},
        exclusive=(("planId", "planTemplateId"),)),
    "counteradjustments": Declaration(references={"counterId": "counters", "accountId": "accounts"}),
    "charges": Declaration(references={"accountId": "accounts", "contractId": "contracts", **ACCOUNTING}),
    "balances": Declaration(
        event="balance", prepare=balance_prepare,
        references={"accountId": "accounts", "productIds": PRODUCT, "contractId": "contracts", **ACCOUNTING}),
    "balances/{balanceId}/transactions": Declaration(
        references={"transactionTypeId": "picklists/transactiontypes"}),
    "balances/{balanceId}/balancetransactionschedules": Declaration(
        references={"transactionTypeId": "picklists/transactiontypes"}),
    "balances/{balanceId}/balancechargeschedules": Declaration(),
    "picklists/creditreasons": Declaration(event="creditreason"),
    "picklists/transactiontypes": Declaration(event="transactiontype"),
    "picklists/debitreasons": Declaration(),
    "picklists/currency": Declaration(),
    "picklists/billgroupingkeys": Declaration(),
    "billconfig": Declaration(event="billconfig", default={}),
    "organizationconfig": Declaration(
        event="organizationconfig", references={"defaultStatementDefinitionId": "statementdefinitions"},
        # m3ter's defaults where the spec gives one; the rest as a new organization is set up.
        default={"daysBeforeBillDue": 1, "scheduledBillInterval": 0, "standingChargeBillInAdvance": False,
                 "commitmentFeeBillInAdvance": False, "minimumSpendBillInAdvance": False,
                 "suppressedEmptyBills": False, "consolidateBills": False, "allowNegativeBalances": False,
                 "allowOverlappingPlans": False}),
    "customfields": Declaration(event="customfield", default={}),
    "support": Declaration(default={}),
    "bills": Declaration(event="bill"),
    "billjobs": Declaration(event="billjob", references={"accountIds": "accounts"}),
    "statementjobs": Declaration(event="statementjob", prepare=statement_job_prepare,
                                 references={"billId": "bills"}),
    "bills/{billId}/creditlineitems": Declaration(
        references={"productId": PRODUCT, "creditReasonId": "picklists/creditreasons", **ACCOUNTING}),
    "bills/{billId}/debitlineitems": Declaration(
        references={"productId": PRODUCT, "debitReasonId": "picklists/debitreasons", **ACCOUNTING}),
    "lookuptables/{lookupTableId}/revisions": Declaration(prepare=revision_prepare, unique_code=False),
    "permissionpolicies": Declaration(prepare=permission_policy_prepare),
    "invitations": Declaration(prepare=invitation_prepare, references={"permissionPolicyIds": "permissionpolicies"}),
    "externalmappings": Declaration(references={"integrationConfigId": "integrationconfigs"}, unique_code=False),
}


# -- from a Shape and its Declaration to a ResourceKind -----------------------------------

def _filter(rule: FilterRule) -> Filter | None:
    if rule.kind == "equal":
        return equals(rule.field, False if rule.boolean else None)
    if rule.kind == "in":
        return in_list(rule.field)
    if rule.kind == "from":
        return on_or_after(rule.field)
    if rule.kind == "before":
        return before(rule.field)
    if rule.kind == "on_date":
        return active_on
    return None


def _checked_prepare(shape: Shape, declaration: Declaration) -> Prepare:
    generic = copy_fields(shape.writable)

    def prepare(backend, caller, body, existing):
        fields = generic(backend, caller, body, existing)
        for group in declaration.exclusive:
            given = [name for name in group if name in fields]
            if len(given) != 1:
                raise MockError.bad_request(
                    f"{group[0]}: exactly one of {', '.join(group)} is required"
                    + (f" (given: {', '.join(given)})" if given else ""))
        for name, (_, natural_key) in declaration.parts.items():
            if isinstance(fields.get(name), list):
                fields[name] = [_with_id(item, natural_key, (existing or {}).get(name), backend.new_id)
                                for item in fields[name]]
        if declaration.prepare is not None:
            # A custom step may read what the fields reference: check them first, so a missing
            # one is the 400 naming the field rather than a 404 of the entity read.
            backend.resources[shape.key].check_references(caller, fields)
            fields = declaration.prepare(backend, caller, body, existing, fields)
        return fields

    return prepare


def _with_id(item: Any, natural_key: str, stored: Any, new_id: Callable[[], str]) -> Any:
    if not isinstance(item, dict) or "id" in item:
        return item
    for old in stored if isinstance(stored, list) else ():
        if isinstance(old, dict) and natural_key in item and old.get(natural_key) == item[natural_key]:
            return {"id": old["id"], **item}
    return {"id": new_id(), **item}


def kind_for(shape: Shape, declaration: Declaration | None, resource_keys: set[str]) -> ResourceKind:
    declaration = declaration or Declaration()
    for entity in filter(None, (declaration.event, *(entity for entity, _ in declaration.parts.values()))):
        catalogue.entity_event_name(entity, "created")  # a typo fails at start-up
    filters = {name: f for name, f in ((n, _filter(r)) for n, r in shape.filters.items()) if f is not None}
    filters.update(declaration.filters)
    parents = []
    for parameter in shape.scope:
        prefix = shape.key[:shape.key.index("/{" + parameter + "}")]
        if prefix in resource_keys:
            parents.append((parameter, prefix))
    default = None
    if shape.singleton:
        values = {**shape.response_defaults, **(declaration.default or {})}
        default = lambda caller, values=values: dict(values)  # noqa: E731
    return ResourceKind(
        collection=shape.key,
        label=shape.label,
        prepare=_checked_prepare(shape, declaration),
        event_entity=declaration.event,
        filters=filters,
        unique_code=declaration.unique_code,
        key=shape.key,
        scope=shape.scope,
        parents=tuple(parents),
        scope_fields=tuple(p for p in shape.scope if p in shape.response_fields),
        references=dict(declaration.references),
        part_events={name: entity for name, (entity, _) in declaration.parts.items()},
        singleton=shape.singleton,
        default=default,
        audit_fields=tuple(f for f in AUDIT_FIELDS if f in shape.response_fields) if shape.response_fields
        else AUDIT_FIELDS,
    )
