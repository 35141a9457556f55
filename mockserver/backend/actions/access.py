"""Accounts, search and access: the operations of these families that are not plain CRUD.

Everything is kept in the one store, through the resources' services, under its lock.
The rules the mock chose where m3ter's reference is silent (each one the simplest
consistent with the stored state; the spec's descriptions say the same):

* **Search** (accounts, commitments, bills): the searchable names are the ones m3ter lists
  for each; the syntax is ``mockserver.domain.search``'s.
* **End-dating billing entities** (of an Account, or of the Account a Contract belongs to;
  ``applyToChildren`` adds every descendant Account): ``CONTRACT`` = its Contracts (the
  Contract call: that Contract only), ``ACCOUNTPLAN`` = its Account Plans, ``PREPAYMENT``
  = its Commitments, ``PRICINGS``/``COUNTER_PRICINGS`` = the (counter) pricings of the
  Plans that belong to it (``plan.accountId``). An entity that already ends on or before
  the end date is left alone; one that starts on or after it cannot end then and is listed
  under ``failedEntities``; every other one gets the end date (its UTC day where the field
  is a date) as an update: version + 1 and its ``configuration.*.updated`` Event. Each
  ``Set_String_`` answer is ``{"empty": ..., "ids": [...]}``.
* **Replacing an Account Plan**: the new plan's ``startDate`` must fall inside the replaced
  plan's period (after its start, before its end when it has one) and name the same
  Account; the new plan is created, then the replaced one end-dated at that start.
* **Users** come from accepted invitations: m3ter's users accept in its console, so the mock
  accepts through its admin API (``accept_invitation``). An invitation is valid for 30 days
  unless ``dtExpiry`` says otherwise; an expired or accepted one cannot be accepted; an
  email that is already a user cannot be invited. The API client itself is a service user
  (``GET /users/me``), with an id derived from the organization and the client id.
* **Permission policies** are linked to principals: a user (must exist), a user group (a
  Resource Group of type ``user``, must exist), a service user (any id: the mock keeps no
  list of them) or the organization's support users (no id). Adding a link that exists
  answers it unchanged; removing one that does not is a 404. Deleting a policy drops its
  links. A user's permissions are its own statements plus those of every policy linked to
  it, to its user groups (and the groups that contain them), and to support users when it
  is one.
* **Resource groups** hold items (an entity of the group's type, which must exist when the
  mock serves that type) and groups (of the same type, no cycles). Adding or removing
  changes the group: version + 1 (a ``version`` sent must be the group's). Adding what is
  there already answers the group unchanged. Deleting a group drops its contents. A
  group's permission policies are those linked to it as a user group and those whose
  statements name it (``.../group/<id>``).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Iterable, Iterator

from mockserver.domain import search as search_syntax
from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import ListScope

from ..crud import Caller, CrudService, ResourceKind, copy_fields
from ..shapes import Schemas

if TYPE_CHECKING:
    from ..core import Backend

# -- search --------------------------------------------------------------------------------

# The names m3ter lists as searchable, per resource.
SEARCHABLE = {
    "accounts": ("name", "code", "currency", "purchaseOrderNumber", "parentAccountId", "codes", "id",
                 "createdBy", "dtCreated", "lastModifiedBy", "ids"),
    "commitments": ("startDate", "endDate", "contractId", "accountId", "productId", "productIds", "id",
                    "createdBy", "dtCreated", "lastModifiedBy", "ids"),
    "bills": ("accountId", "locked", "billDate", "startDate", "endDate", "dueDate", "billingFrequency", "id",
              "createdBy", "dtCreated", "lastModifiedBy", "ids"),
}


def _service(backend: "Backend", key: str) -> CrudService:
    service = backend.resources.get(key)
    if service is None:  # pragma: no cover - a spec without the resource
        raise MockError.not_implemented(f"the spec serves no {key!r} resource")
    return service


def entity_properties(backend: "Backend", key: str) -> dict[str, dict]:
    """The properties of one entity of ``key``, as its read operation's response shows them."""
    shape = backend.shapes.get(key)
    if shape is None:
        return {}
    schemas = Schemas(backend.spec)
    for action in ("retrieve", "create", "update", "delete"):  # pragma: no mutate  every resource read here shows the same properties in each
        op = shape.operations.get(action)
        if op is not None and op.response_schema is not None:
            properties, _ = schemas.flatten(op.response_schema)
            return {name: schemas.deref(prop) for name, prop in properties.items()}
    return {}


def _value_kind(prop: dict) -> str | None:
    """The search kind of a property: one of the domain's kinds, ``list`` for an array, None
    for an object."""
    kind = prop.get("type")
    if kind == "array":
        return "list"
    if kind == "boolean":
        return "boolean"
    if kind in ("number", "integer"):
        return "number"
    if kind == "string" or "enum" in prop:
        return prop.get("format") if prop.get("format") in ("date", "date-time") else "text"
    return None


def search_fields(backend: "Backend", key: str) -> dict[str, search_syntax.SearchField]:
    """The searchable names of ``key`` and how each reads an entity: a field of the entity;
    a plural of one (``ids`` -> ``id``: a list of alternatives); the singular of a list
    field (``productId`` -> ``productIds``)."""
    properties = entity_properties(backend, key)
    fields = {}
    for name in SEARCHABLE.get(key, ()):
        if name in properties:
            kind = _value_kind(properties[name])
            fields[name] = search_syntax.SearchField(
                name, "text" if kind in (None, "list") else kind, many_values=kind == "list",
                holds_list=kind == "list")  # pragma: no mutate  an array field's stored value is a list: matched as one anyway
        elif name.endswith("s") and name[:-1] in properties:
            fields[name] = search_syntax.SearchField(name[:-1], "text", many_values=True)
        elif name + "s" in properties:
            fields[name] = search_syntax.SearchField(name + "s", "text", holds_list=True)
    return fields


def search(backend: "Backend", caller: Caller, key: str, query: str | None, operator: str | None = None,
           sort_by: str | None = None, sort_order: str | None = None, from_document: int | None = None,
           page_size: int | None = None) -> tuple[list[dict], str | None]:
    """One page of the ``key`` entities that match ``query``, and the next page's ``fromDocument``."""
    service = _service(backend, key)
    label = service.kind.label
    match = search_syntax.matcher(search_syntax.parse_query(query), search_fields(backend, key), operator, label)
    kind = "text"
    if sort_by is not None:
        properties = entity_properties(backend, key)
        if sort_by not in properties:
            raise MockError.bad_request(f"sortBy: {sort_by!r} is not a field of {label}")
        kind = _value_kind(properties[sort_by])
        if kind in (None, "list"):
            raise MockError.bad_request(f"sortBy: {label} cannot be sorted on {sort_by!r} (not a single value)")
    if sort_order not in (None, "ASC", "DESC"):
        raise MockError.bad_request(f"sortOrder: {sort_order!r} is not one of ['ASC', 'DESC']")
    with backend.store.lock:
        found = [entity for entity in service.entities(caller.org_id) if match(entity)]
        results = search_syntax.ordered(found, sort_by, kind, descending=sort_order == "DESC")
        chunk, following = search_syntax.page(results, from_document, page_size)
        return [service.kind.view(entity) for entity in chunk], following


# -- accounts --------------------------------------------------------------------------------

def account_children(backend: "Backend", caller: Caller, account_id: str, page_size: int | None,
                     next_token: str | None) -> tuple[list[dict], str | None]:
    """The Accounts whose parent is ``account_id`` (404 when it does not exist), in creation order."""
    accounts = _service(backend, "accounts")
    with backend.store.lock:
        accounts.find(caller, account_id)
        name = accounts.kind.collection_name(None)
        items, token = backend.paginate(
            ListScope(caller.org_id, name, {"parentAccountId": account_id}),
            backend.store.peek(caller.org_id, name),
            lambda entity: entity.get("parentAccountId") == account_id,
            page_size, next_token)
        return [accounts.kind.view(item) for item in items], token


def _descendants(backend: "Backend", caller: Caller, account_id: str) -> list[str]:
    """``account_id`` and every Account below it, parents first (a cycle ends the walk)."""
    accounts = list(_service(backend, "accounts").entities(caller.org_id))
    order, seen, frontier = [account_id], {account_id}, [account_id]
    while frontier:
        children = [a["id"] for a in accounts if a.get("parentAccountId") in frontier and a["id"] not in seen]
        seen.update(children)
        order += children
        frontier = children
    return order


BILLING_ENTITIES = {
    "CONTRACT": "contracts",
    "ACCOUNTPLAN": "accountplans",
    "PREPAYMENT": "commitments",
    "PRICINGS": "pricings",
    "COUNTER_PRICINGS": "counterpricings",
}


def _ends_on(value: str, date_only: bool) -> str:
    """The end date as the field stores it: the date-time as sent, or its UTC day."""
    if not date_only:
        return value
    moment = search_syntax.instant(value)
    if moment is None:
        raise MockError.bad_request(f"endDate: {value!r} is not an ISO-8601 date-time")
    return moment.date().isoformat()


def _end_date(backend: "Backend", caller: Caller, account_ids: list[str], body: dict,
              contract_id: str | None = None) -> dict:
    end_date = body["endDate"]
    if search_syntax.instant(end_date) is None:
        raise MockError.bad_request(f"endDate: {end_date!r} is not an ISO-8601 date-time")
    wanted = list(dict.fromkeys(body.get("billingEntities") or ()))
    unknown = [name for name in wanted if name not in BILLING_ENTITIES]
    if unknown:
        raise MockError.bad_request(f"billingEntities: {unknown[0]!r} is not one of {list(BILLING_ENTITIES)}")
    if not wanted:
        raise MockError.bad_request("billingEntities: name at least one billing entity")
    accounts = set(account_ids)
    plans = {p["id"] for p in _service(backend, "plans").entities(caller.org_id) if p.get("accountId") in accounts}

    def belongs(name: str, entity: dict) -> bool:
        if name == "CONTRACT" and contract_id is not None:
            return entity["id"] == contract_id
        if name in ("PRICINGS", "COUNTER_PRICINGS"):
            return entity.get("planId") in plans
        return entity.get("accountId") in accounts

    updated: dict[str, list[str]] = {}
    failed: dict[str, list[str]] = {}
    for name in wanted:
        service = _service(backend, BILLING_ENTITIES[name])
        date_only = entity_properties(backend, service.kind.key).get("endDate", {}).get("format") == "date"
        value = _ends_on(end_date, date_only)
        end = search_syntax.instant(value)
        updated[name], failed[name] = [], []
        for entity in list(service.entities(caller.org_id)):
            if not belongs(name, entity):
                continue
            current = search_syntax.instant(entity.get("endDate"))
            if current is not None and current <= end:
                continue  # it ends by then already
            start = search_syntax.instant(entity.get("startDate"))
            if start is not None and start >= end:
                failed[name].append(entity["id"])
                continue
            service.update(caller, entity["id"],
                           {**service.kind.view(entity), "endDate": value, "version": entity["version"]})
            updated[name].append(entity["id"])
    done, refused = sum(map(len, updated.values())), sum(map(len, failed.values()))
    message = f"End date {end_date} applied to {done} billing entit{'y' if done == 1 else 'ies'}"
    if refused:
        message += f"; {refused} start on or after it and were left unchanged"
    return {"statusMessage": message,
            "updatedEntities": {name: _id_set(ids) for name, ids in updated.items()},
            "failedEntities": {name: _id_set(ids) for name, ids in failed.items()}}


def _id_set(ids: list[str]) -> dict:
    return {"empty": not ids, "ids": ids}


def end_date_account_entities(backend: "Backend", caller: Caller, account_id: str, body: dict) -> dict:
    with backend.store.lock:
        _service(backend, "accounts").find(caller, account_id)
        accounts = _descendants(backend, caller, account_id) if body.get("applyToChildren") else [account_id]
        return _end_date(backend, caller, accounts, body)


def end_date_contract_entities(backend: "Backend", caller: Caller, contract_id: str, body: dict) -> dict:
    with backend.store.lock:
        contract = _service(backend, "contracts").find(caller, contract_id)
        account_id = contract.get("accountId")
        accounts = [] if account_id is None else (
            _descendants(backend, caller, account_id) if body.get("applyToChildren") else [account_id])
        return _end_date(backend, caller, accounts, body, contract_id=contract_id)


def replace_account_plan(backend: "Backend", caller: Caller, plan_id: str, body: dict) -> dict:
    plans = _service(backend, "accountplans")
    with backend.store.lock:
        original = plans.find(caller, plan_id)
        start = search_syntax.instant(body.get("startDate"))
        if start is None:
            raise MockError.bad_request("startDate: required, an ISO-8601 date-time")
        if body.get("accountId") != original.get("accountId"):
            raise MockError.bad_request(
                f"accountId: must be the replaced AccountPlan's Account {original.get('accountId')!r}")
        begun = search_syntax.instant(original.get("startDate"))
        ended = search_syntax.instant(original.get("endDate"))
        if begun is not None and start <= begun:
            raise MockError.bad_request(
                f"startDate: must be after the replaced AccountPlan's startDate {original['startDate']}")
        if ended is not None and start >= ended:
            raise MockError.bad_request(
                f"startDate: must be before the replaced AccountPlan's endDate {original['endDate']}")
        # Created first: it is the step that can be refused (a reference, a code in use),
        # and then nothing has changed.
        created = plans.create(caller, {k: v for k, v in body.items() if k != "version"})
        changed = plans.update(caller, plan_id, {**plans.kind.view(original), "endDate": body["startDate"],
                                                 "version": original["version"]})
        return {"originalAccountPlan": changed, "newAccountPlan": created}


# -- users and invitations ----------------------------------------------------------------------

INVITATION_DAYS = 30
_SERVICE_USERS = uuid.UUID("0b7c1d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e")  # namespace of service-user ids


def service_user_id(caller: Caller) -> str:
    return str(uuid.uuid5(_SERVICE_USERS, f"{caller.org_id}/{caller.client_id}"))


def _user_with_email(backend: "Backend", caller: Caller, email: str | None) -> dict | None:
    if not email:
        return None
    for user in _service(backend, "users").entities(caller.org_id):
        if str(user.get("email", "")).lower() == email.lower():
            return user
    return None


def create_invitation(backend: "Backend", caller: Caller, body: dict) -> dict:
    """An invitation, valid for 30 days unless ``dtExpiry`` says otherwise."""
    invitations = _service(backend, "invitations")
    with backend.store.lock:
        user = _user_with_email(backend, caller, body.get("email"))
        if user is not None:
            raise MockError.conflict(f"email: {body['email']!r} is already OrgUser {user['id']!r}")
        now = backend.clock.now()
        body = dict(body)
        if body.get("dtExpiry") is None:
            body["dtExpiry"] = isoformat(now + timedelta(days=INVITATION_DAYS))
        else:
            expiry = search_syntax.instant(body["dtExpiry"])
            if expiry is None or expiry <= now:
                raise MockError.bad_request(f"dtExpiry: must be a date-time after now ({isoformat(now)})")
        return invitations.create(caller, body)


def accept_invitation(backend: "Backend", caller: Caller, invitation_id: str) -> dict:
    """The user who accepts ``invitation_id`` (as m3ter's console does): created with the
    invitation's names, email and end of access, and linked to its permission policies."""
    invitations, users = _service(backend, "invitations"), _service(backend, "users")
    with backend.store.lock:
        invitation = invitations.find(caller, invitation_id)
        if invitation.get("accepted"):
            raise MockError.conflict(f"OrgUserInvitation {invitation_id!r} was accepted already")
        expiry = search_syntax.instant(invitation.get("dtExpiry"))
        now = backend.clock.now()
        if expiry is not None and expiry <= now:
            raise MockError.conflict(f"OrgUserInvitation {invitation_id!r} expired at {invitation['dtExpiry']}")
        holder = _user_with_email(backend, caller, invitation.get("email"))
        if holder is not None:
            raise MockError.conflict(f"email: {invitation['email']!r} is already OrgUser {holder['id']!r}")
        stamp = isoformat(now)
        user = {"id": str(uuid.uuid4()), "version": 1,
                **{k: invitation[k] for k in ("firstName", "lastName", "email", "contactNumber", "dtEndAccess")
                   if invitation.get(k) is not None},
                "organizations": [caller.org_id], "supportUser": False,
                "dtCreated": stamp, "dtLastModified": stamp,
                "createdBy": caller.client_id, "lastModifiedBy": caller.client_id}
        backend.store.collection(caller.org_id, users.kind.collection_name(None)).put(user)
        backend.entity_changed(caller, users.kind, "created", None, user)
        invitations.modify(caller, invitation_id, {"accepted": True})
        policies = _service(backend, "permissionpolicies")
        for policy_id in invitation.get("permissionPolicyIds") or ():
            if policies.exists(caller, policy_id):
                add_policy(backend, caller, policy_id, "USER", user["id"])
        return users.kind.view(user)


def update_user(backend: "Backend", caller: Caller, user_id: str, body: dict) -> dict:
    """PUT of a user: the fields the request carries (its permission statements, end of
    access) are replaced; who the user is (names, email...) stays, as no request sets it."""
    users = _service(backend, "users")
    writable = backend.shapes["users"].writable
    with backend.store.lock:
        existing = users.find(caller, user_id)
        users.check_version(existing, body)  # the engine's version rule (400 / 409)
        fields = users.kind.prepare(backend, caller, body, existing)
        kept = {k: v for k, v in existing.items() if k not in writable}
        entity = {**kept, **fields, "version": existing["version"] + 1,
                  "dtLastModified": isoformat(backend.clock.now()), "lastModifiedBy": caller.client_id}
        backend.store.collection(caller.org_id, users.kind.collection_name(None)).put(entity)
        backend.entity_changed(caller, users.kind, "updated", existing, entity)
        return users.kind.view(entity)


def me(backend: "Backend", caller: Caller) -> dict:
    """The caller: an API client, so a service user, and its organization."""
    return {
        "serviceUser": {"id": service_user_id(caller), "name": caller.client_id},
        "organization": {"id": caller.org_id, "orgId": caller.org_id, "organizationName": caller.org_id,
                         "status": "ACTIVE"},
    }


def resend_password(backend: "Backend", caller: Caller, user_id: str) -> None:
    """Nothing to send from a mock; the user must exist."""
    with backend.store.lock:
        _service(backend, "users").find(caller, user_id)


def user_permissions(backend: "Backend", caller: Caller, user_id: str) -> dict:
    """The user's permissions as one policy: its own statements, then those of every policy
    linked to it, to its user groups (and the groups containing them), to support users."""
    with backend.store.lock:
        user = _service(backend, "users").find(caller, user_id)
        principals = [("USER", user_id)] + [("USERGROUP", g) for g in _groups_of(backend, caller, "user", user_id)]
        if user.get("supportUser"):
            principals.append(("SUPPORTUSERS", None))
        policies = _service(backend, "permissionpolicies")
        statements = list(user.get("permissionPolicy") or ())
        for policy_id in _policies_for(backend, caller, principals):
            statements += policies.find(caller, policy_id).get("permissionPolicy") or []
        return {"id": user_id, "permissionPolicy": statements}


def user_group(backend: "Backend", caller: Caller, user_id: str) -> dict:
    """m3ter documents a list of the user's groups but its schema (and SDK) one Resource
    Group: the first user group (in creation order) the user is an item of; 404 when none."""
    groups = _groups_service(backend)
    with backend.store.lock:
        _service(backend, "users").find(caller, user_id)
        for group in _groups_of_type(backend, caller, "user"):
            if _holds(backend, caller, "user", group["id"], "ITEM", user_id):
                return groups.kind.view(group)
        raise MockError.not_found(f"OrgUser {user_id!r} is in no user ResourceGroup")


# -- permission policies ---------------------------------------------------------------------------

PRINCIPAL_TYPES = ("USER", "USERGROUP", "SERVICEUSER", "SUPPORTUSERS")
PRINCIPALS = ResourceKind(
    collection="permissionpolicies/{permissionPolicyId}/principals",
    label="PrincipalPermission",
    prepare=copy_fields(("principalId", "principalType")),
    unique_code=False,
    scope=("permissionPolicyId",),
    parents=(("permissionPolicyId", "permissionpolicies"),),
    scope_fields=("permissionPolicyId",),
)


def _links(backend: "Backend") -> CrudService:
    return CrudService(backend, PRINCIPALS)


def _find_link(backend: "Backend", caller: Caller, policy_id: str, principal_type: str,
               principal_id: str | None) -> dict | None:
    name = PRINCIPALS.collection_name({"permissionPolicyId": policy_id})
    for link in backend.store.peek(caller.org_id, name).values():
        if link.get("principalType") == principal_type and link.get("principalId") == principal_id:
            return link
    return None


def _check_principal(backend: "Backend", caller: Caller, principal_type: str, principal_id: str | None) -> None:
    if principal_type in ("USER", "USERGROUP", "SERVICEUSER") and not principal_id:
        raise MockError.bad_request("principalId: required")
    if principal_type == "USER" and not _service(backend, "users").exists(caller, principal_id):
        raise MockError.bad_request(f"principalId: no OrgUser with id {principal_id!r}")
    if principal_type == "USERGROUP" and not _groups_service(backend).exists(caller, principal_id, {"type": "user"}):
        raise MockError.bad_request(f"principalId: no user ResourceGroup with id {principal_id!r}")


def add_policy(backend: "Backend", caller: Caller, policy_id: str, principal_type: str,
               principal_id: str | None = None) -> dict:
    """Link the policy to a principal; an existing link is answered unchanged."""
    links = _links(backend)
    scope = {"permissionPolicyId": policy_id}
    with backend.store.lock:
        _service(backend, "permissionpolicies").find(caller, policy_id)
        _check_principal(backend, caller, principal_type, principal_id)
        existing = _find_link(backend, caller, policy_id, principal_type, principal_id)
        if existing is not None:
            return PRINCIPALS.view(existing)
        body = {"principalType": principal_type}
        if principal_id is not None:
            body["principalId"] = principal_id
        return links.create(caller, body, scope)


def remove_policy(backend: "Backend", caller: Caller, policy_id: str, principal_type: str,
                  principal_id: str | None = None) -> dict:
    """Unlink the policy from a principal; answers the removed link (404 when none)."""
    with backend.store.lock:
        _service(backend, "permissionpolicies").find(caller, policy_id)
        existing = _find_link(backend, caller, policy_id, principal_type, principal_id)
        if existing is None:
            who = principal_type if principal_id is None else f"{principal_type} {principal_id!r}"
            raise MockError.not_found(f"PermissionPolicy {policy_id!r} is not linked to {who}")
        return _links(backend).delete(caller, existing["id"], {"permissionPolicyId": policy_id})


def _policies_for(backend: "Backend", caller: Caller, principals: Iterable[tuple[str, str | None]]) -> list[str]:
    """The ids of the policies linked to any of ``principals``, in the policies' creation order."""
    wanted = set(principals)
    linked = {link["permissionPolicyId"] for link in _links(backend).entities(caller.org_id)
              if (link.get("principalType"), link.get("principalId")) in wanted}
    return [p["id"] for p in _service(backend, "permissionpolicies").entities(caller.org_id) if p["id"] in linked]


# -- resource groups ----------------------------------------------------------------------------------

GROUPS = "resourcegroups/{type}"
ITEMS = ResourceKind(
    collection="resourcegroups/{type}/{resourceGroupId}/items",
    label="ResourceGroupItem",
    prepare=copy_fields(("targetId", "targetType")),
    unique_code=False,
    scope=("type", "resourceGroupId"),
    parents=(("resourceGroupId", GROUPS),),
)


def _groups_service(backend: "Backend") -> CrudService:
    return _service(backend, GROUPS)


def _groups_of_type(backend: "Backend", caller: Caller, group_type: str) -> Iterator[dict]:
    name = _groups_service(backend).kind.collection_name({"type": group_type})
    yield from backend.store.peek(caller.org_id, name).values()


def _items(backend: "Backend", caller: Caller, group_type: str, group_id: str) -> list[dict]:
    name = ITEMS.collection_name({"type": group_type, "resourceGroupId": group_id})
    return list(backend.store.peek(caller.org_id, name).values())


def _holds(backend: "Backend", caller: Caller, group_type: str, group_id: str, target_type: str,
           target_id: str) -> dict | None:
    for item in _items(backend, caller, group_type, group_id):
        if item.get("targetType") == target_type and item.get("targetId") == target_id:
            return item
    return None


def _groups_of(backend: "Backend", caller: Caller, group_type: str, item_id: str) -> list[str]:
    """The groups that hold ``item_id``, then the groups that hold those, and so on."""
    groups = [g["id"] for g in _groups_of_type(backend, caller, group_type)]
    found = [g for g in groups if _holds(backend, caller, group_type, g, "ITEM", item_id)]
    frontier = list(found)
    while frontier:
        parents = [g for g in groups if g not in found
                   and any(_holds(backend, caller, group_type, g, "GROUP", child) for child in frontier)]
        found += parents
        frontier = parents
    return found


def _subgroups(backend: "Backend", caller: Caller, group_type: str, group_id: str) -> set[str]:
    """Every group nested, at any depth, in ``group_id``."""
    seen: set[str] = set()
    frontier = [group_id]
    while frontier:
        nested = [item["targetId"] for g in frontier for item in _items(backend, caller, group_type, g)
                  if item.get("targetType") == "GROUP" and item["targetId"] not in seen]
        seen.update(nested)
        frontier = nested
    return seen


def _check_target(backend: "Backend", caller: Caller, group_type: str, group_id: str, target_id: str,
                  target_type: str) -> None:
    if target_type == "GROUP":
        if not _groups_service(backend).exists(caller, target_id, {"type": group_type}):
            raise MockError.bad_request(f"targetId: no {group_type} ResourceGroup with id {target_id!r}")
        if target_id == group_id or group_id in _subgroups(backend, caller, group_type, target_id):
            raise MockError.bad_request(
                f"targetId: ResourceGroup {target_id!r} holds {group_id!r} (or is it); nesting it would make a cycle")
        return
    if target_type != "ITEM":
        raise MockError.bad_request(f"targetType: {target_type!r} is not one of ['ITEM', 'GROUP']")
    # The resource the group's type names (meter -> meters, user -> users...), when served.
    resource = backend.resources.get(f"{group_type.lower()}s")
    if resource is not None and not resource.kind.scope and not resource.kind.singleton \
            and not resource.exists(caller, target_id):
        raise MockError.bad_request(f"targetId: no {resource.kind.label} with id {target_id!r}")


def _check_group_version(group: dict, body: dict) -> None:
    sent = body.get("version")
    if sent is not None and sent != group["version"]:
        raise MockError.conflict(f"version {sent} is stale: ResourceGroup {group['id']!r} is at version "
                                 f"{group['version']}; fetch it again and resend")


def _touch_group(caller: Caller, groups: CrudService, group: dict, scope: dict) -> dict:
    """The group changed: version + 1, modified now, and its update recorded."""
    return groups.update(caller, group["id"], {**groups.kind.view(group), "version": group["version"]}, scope)


def add_to_group(backend: "Backend", caller: Caller, group_type: str, group_id: str, body: dict) -> dict:
    groups = _groups_service(backend)
    scope = {"type": group_type, "resourceGroupId": group_id}
    with backend.store.lock:
        group = groups.find(caller, group_id, {"type": group_type})
        target_id, target_type = body.get("targetId"), body.get("targetType")
        _check_target(backend, caller, group_type, group_id, target_id, target_type)
        _check_group_version(group, body)
        if _holds(backend, caller, group_type, group_id, target_type, target_id) is not None:
            return groups.kind.view(group)
        changed = _touch_group(caller, groups, group, {"type": group_type})
        CrudService(backend, ITEMS).create(caller, {"targetId": target_id, "targetType": target_type}, scope)
        return changed


def remove_from_group(backend: "Backend", caller: Caller, group_type: str, group_id: str, body: dict) -> dict:
    groups = _groups_service(backend)
    scope = {"type": group_type, "resourceGroupId": group_id}
    with backend.store.lock:
        group = groups.find(caller, group_id, {"type": group_type})
        target_id, target_type = body.get("targetId"), body.get("targetType")
        item = _holds(backend, caller, group_type, group_id, target_type, target_id)
        if item is None:
            raise MockError.not_found(f"ResourceGroup {group_id!r} holds no {target_type} {target_id!r}")
        _check_group_version(group, body)
        changed = _touch_group(caller, groups, group, {"type": group_type})
        CrudService(backend, ITEMS).delete(caller, item["id"], scope)
        return changed


def group_contents(backend: "Backend", caller: Caller, group_type: str, group_id: str,
                   page_size: int | None, next_token: str | None) -> tuple[list[dict], str | None]:
    """The group's items and nested groups, in the order they were added."""
    return CrudService(backend, ITEMS).list(caller, {}, page_size, next_token,
                                            {"type": group_type, "resourceGroupId": group_id})


def _names_group(policy: dict, group_id: str) -> bool:
    return any(str(resource).split("/")[-2:] == ["group", group_id]
               for statement in policy.get("permissionPolicy") or ()
               for resource in statement.get("resource") or ())


def group_permissions(backend: "Backend", caller: Caller, group_type: str, group_id: str,
                      page_size: int | None, next_token: str | None) -> tuple[list[dict], str | None]:
    policies = _service(backend, "permissionpolicies")
    with backend.store.lock:
        _groups_service(backend).find(caller, group_id, {"type": group_type})
        linked = set(_policies_for(backend, caller, [("USERGROUP", group_id)])) if group_type == "user" else set()
        ids = [p["id"] for p in policies.entities(caller.org_id) if p["id"] in linked or _names_group(p, group_id)]
        name = policies.kind.collection_name(None)
        items, token = backend.paginate(
            ListScope(caller.org_id, name, {
                "resourceGroup":  # pragma: no mutate: a key of the filters nextToken is bound to; any name binds alike
                f"{group_type}/{group_id}"}),
            backend.store.peek(caller.org_id, name), lambda entity: True, page_size, next_token,
            candidate_ids=ids)
        return [policies.kind.view(item) for item in items], token
