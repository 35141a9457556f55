"""HTTP handlers of the account, search and access actions (rules: backend/actions/access.py)."""

from __future__ import annotations

import flask

from mockserver.backend.actions import access
from mockserver.backend.crud import Caller

from ..context import backend, caller, page


def _search(key: str):
    def handler(orgId, user, searchQuery=None, fromDocument=None, pageSize=None, operator=None,
                sortBy=None, sortOrder=None):
        items, following = access.search(backend(), caller(orgId, user), key, searchQuery, operator, sortBy,
                                         sortOrder, fromDocument, pageSize)
        return page(items, following)

    handler.__name__ = f"search_{key}"
    return handler


def list_account_children(orgId, id, user, pageSize=None, nextToken=None):
    return page(*access.account_children(backend(), caller(orgId, user), id, pageSize, nextToken))


def end_date_account_entities(orgId, id, user, body):
    return access.end_date_account_entities(backend(), caller(orgId, user), id, body)


def end_date_contract_entities(orgId, id, user, body):
    return access.end_date_contract_entities(backend(), caller(orgId, user), id, body)


def replace_account_plan(orgId, id, user, body):
    return access.replace_account_plan(backend(), caller(orgId, user), id, body)


# -- users ------------------------------------------------------------------------------------

def create_invitation(orgId, user, body):
    return access.create_invitation(backend(), caller(orgId, user), body)


def update_user(orgId, id, user, body):
    return access.update_user(backend(), caller(orgId, user), id, body)


def get_me(orgId, user):
    return access.me(backend(), caller(orgId, user))


def resend_password(orgId, id, user):
    access.resend_password(backend(), caller(orgId, user), id)
    return flask.Response(status=200, mimetype="application/json")


def get_user_permissions(orgId, id, user, pageSize=None, nextToken=None):
    return access.user_permissions(backend(), caller(orgId, user), id)


def get_user_groups(orgId, id, user, pageSize=None, nextToken=None):
    return access.user_group(backend(), caller(orgId, user), id)


# -- permission policies ------------------------------------------------------------------------

def _policy_link(change, principal_type: str):
    def handler(orgId, permissionPolicyId, user, body=None):
        principal_id = None if principal_type == "SUPPORTUSERS" else (body or {}).get("principalId")
        return change(backend(), caller(orgId, user), permissionPolicyId, principal_type, principal_id)

    handler.__name__ = f"{change.__name__}_{principal_type.lower()}"
    return handler


# -- resource groups -------------------------------------------------------------------------------

def add_resource_to_group(orgId, type, resourceGroupId, user, body):
    return access.add_to_group(backend(), caller(orgId, user), type, resourceGroupId, body)


def remove_resource_from_group(orgId, type, resourceGroupId, user, body):
    return access.remove_from_group(backend(), caller(orgId, user), type, resourceGroupId, body)


def list_group_contents(orgId, type, resourceGroupId, user, pageSize=None, nextToken=None):
    return page(*access.group_contents(backend(), caller(orgId, user), type, resourceGroupId, pageSize, nextToken))


def list_group_permissions(orgId, type, resourceGroupId, user, pageSize=None, nextToken=None):
    return page(*access.group_permissions(backend(), caller(orgId, user), type, resourceGroupId,
                                          pageSize, nextToken))


HANDLERS = {
    "SearchAccounts": _search("accounts"),
    "SearchCommitments": _search("commitments"),
    "SearchBills": _search("bills"),
    "ListAccountChildren": list_account_children,
    "EndDateBillingEntitiesForAccount": end_date_account_entities,
    "EndDateBillingEntitiesForContract": end_date_contract_entities,
    "ReplaceAccountPlan": replace_account_plan,
    "CreateOrgUserInvitation": create_invitation,
    "PutOrgUser": update_user,
    "GetMe": get_me,
    "AdminResendTempPass": resend_password,
    "GetOrgUserPermissions": get_user_permissions,
    "GetOrgUserGroups": get_user_groups,
    **{f"AddPermissionPolicyTo{name}": _policy_link(access.add_policy, principal)
       for name, principal in (("User", "USER"), ("UserGroup", "USERGROUP"), ("ServiceUser", "SERVICEUSER"),
                               ("SupportUsers", "SUPPORTUSERS"))},
    **{f"RemovePermissionPolicyFrom{name}": _policy_link(access.remove_policy, principal)
       for name, principal in (("User", "USER"), ("UserGroup", "USERGROUP"), ("ServiceUser", "SERVICEUSER"),
                               ("SupportUsers", "SUPPORTUSERS"))},
    "AddResourceToGroup": add_resource_to_group,
    "RemoveResourceFromGroup": remove_resource_from_group,
    "ListResourceGroupsForId": list_group_contents,
    "GetResourceGroupPermissions": list_group_permissions,
}


# -- for the admin API (openapi/admin.yaml; the lead wires it) -------------------------------------

def accept_invitation(orgId, id, **_):
    """``POST /_mock/organizations/{orgId}/invitations/{id}/accept``: the invitee accepts, as
    m3ter's console would let them; answers the new OrgUser."""
    return access.accept_invitation(backend(), Caller(orgId, "m3ter-mock-admin"), id)


ADMIN_HANDLERS = {"AcceptInvitation": accept_invitation}
