"""Accounts, search and access actions (mockserver/backend/actions/access.py) over HTTP with
the in-process app, and a few through the official SDK with strict response validation.
Every answer is validated against the spec by the app itself (``validate_responses``).

Users come from accepted invitations; m3ter's users accept in its console, so the tests
accept through the admin API (``POST /_mock/organizations/{orgId}/invitations/{id}/accept``).
Bills come from bill runs (the billing engine, issue 11): the bill search test stores two
bills directly."""

from __future__ import annotations

import httpx
import m3ter
import pytest

from mockserver.backend.crud import Caller
from tests.conftest import bearer_for

ORG = "org-access"
O = f"/organizations/{ORG}"
NOWHERE = "00000000-0000-4000-8000-00000000dead"
ALLOW_ALL = [{"effect": "ALLOW", "action": ["ALL"], "resource": ["*"]}]


class Api:
    def __init__(self, app):
        self.backend = app.backend
        self.client = app.test_client()
        self.headers = bearer_for(self.client)

    def call(self, method: str, path: str, body=None, params=None, status: int = 200):
        response = self.client.request(method, O + path, json=body, params=params, headers=self.headers)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def get(self, path, params=None, status=200):
        return self.call("GET", path, params=params, status=status)

    def post(self, path, body=None, status=200, params=None):
        return self.call("POST", path, body, params=params, status=status)

    def put(self, path, body=None, status=200):
        return self.call("PUT", path, body, status=status)

    def message(self, method, path, body=None, params=None, status=400) -> str:
        return self.call(method, path, body, params=params, status=status)["message"]

    def accept(self, invitation_id: str, status: int = 200) -> dict:
        """The invitee accepts (the admin API's call: m3ter's users accept in its console)."""
        response = self.client.post(f"/_mock{O}/invitations/{invitation_id}/accept")
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    # -- fixtures of the tests --------------------------------------------------------
    def account(self, name, code, **fields):
        return self.post("/accounts", {"name": name, "code": code, "emailAddress": f"{code}@example.com", **fields})

    def user(self, email="ada@example.com", **fields):
        invitation = self.post("/invitations", {"firstName": "Ada", "lastName": "Lovelace", "email": email, **fields})
        return self.accept(invitation["id"])

    def policy(self, name="Everything", statements=ALLOW_ALL):
        return self.post("/permissionpolicies", {"name": name, "permissionPolicy": statements})

    def group(self, group_type="user", name="Team"):
        return self.post(f"/resourcegroups/{group_type}", {"name": name})


@pytest.fixture
def api(app):
    return Api(app)


def _ids(page):
    return [item["id"] for item in page["data"]]


# -- search ------------------------------------------------------------------------------

def test_account_search_applies_terms_operator_order_and_offset_pages(api):
    a = api.account("Premium Online", "prem", currency="USD")
    b = api.account("Acme Premium Online", "acme", currency="GBP")
    c = api.account("Premiums Ltd", "prems", currency="USD")
    d = api.account("Basic", "basic", currency="USD", parentAccountId=a["id"])

    assert _ids(api.get("/accounts/search", {"searchQuery": "name~Premium On"})) == [a["id"], b["id"]]
    assert _ids(api.get("/accounts/search", {"searchQuery": "name~premium on$currency:USD"})) == [a["id"]]
    assert _ids(api.get("/accounts/search", {"searchQuery": "name~basic$currency:GBP", "operator": "OR"})) \
        == [b["id"], d["id"]]
    assert _ids(api.get("/accounts/search", {"searchQuery": "codes:basic,prems"})) == [c["id"], d["id"]]
    assert _ids(api.get("/accounts/search", {"searchQuery": f"ids:{b['id']},{NOWHERE}"})) == [b["id"]]
    assert _ids(api.get("/accounts/search", {"searchQuery": f"parentAccountId:{a['id']}"})) == [d["id"]]
    everything = api.get("/accounts/search")
    assert _ids(everything) == [a["id"], b["id"], c["id"], d["id"]] and "nextToken" not in everything

    first = api.get("/accounts/search", {"sortBy": "name", "sortOrder": "DESC", "pageSize": 3})
    assert _ids(first) == [c["id"], a["id"], d["id"]] and first["nextToken"] == "3"
    rest = api.get("/accounts/search", {"sortBy": "name", "sortOrder": "DESC", "pageSize": 3,
                                        "fromDocument": first["nextToken"]})
    assert _ids(rest) == [b["id"]] and "nextToken" not in rest


@pytest.mark.parametrize("params, message", [
    ({"searchQuery": "nme:Acme"}, "searchQuery: 'nme' is not a searchable field of Account (searchable: code, codes, "
                                  "createdBy, currency, dtCreated, id, ids, lastModifiedBy, name, parentAccountId, "
                                  "purchaseOrderNumber)"),
    ({"searchQuery": "emailAddress:x@example.com"}, "searchQuery: 'emailAddress' is not a searchable field"),
    ({"searchQuery": "name"}, "searchQuery: 'name' is not a term <field><comparator><value>"),
    ({"searchQuery": "dtCreated~2024"}, "searchQuery: '~' applies to text fields only, not to 'dtCreated'"),
    ({"sortBy": "colour"}, "sortBy: 'colour' is not a field of Account"),
    ({"sortBy": "address"}, "sortBy: Account cannot be sorted on 'address'"),
    # The spec's own bound (minimum 0): the request validation answers before the search does.
    ({"fromDocument": -1}, "fromDocument: -1 is less than the minimum of 0"),
])
def test_a_bad_search_is_a_400_naming_what_is_wrong(api, params, message):
    api.account("Acme", "acme")
    assert api.message("GET", "/accounts/search", params=params).startswith(message)


def test_commitment_search_compares_dates_and_matches_a_product_in_the_list(api):
    account = api.account("Acme", "acme")
    other = api.account("Other", "other")
    product = api.post("/products", {"name": "Storage", "code": "storage"})

    def commitment(account_id, start, end, **fields):
        return api.post("/commitments", {"accountId": account_id, "amount": 100, "currency": "USD",
                                         "startDate": start, "endDate": end, **fields})

    early = commitment(account["id"], "2023-06-01", "2024-06-01")
    late = commitment(account["id"], "2024-02-01", "2025-02-01", productIds=[product["id"]])
    elsewhere = commitment(other["id"], "2024-03-01", "2025-03-01")
    query = f"startDate>2024-01-01$accountId:{account['id']}"
    assert _ids(api.get("/commitments/search", {"searchQuery": query})) == [late["id"]]
    assert _ids(api.get("/commitments/search", {"searchQuery": "endDate<=2025-02-01"})) == [early["id"], late["id"]]
    assert _ids(api.get("/commitments/search", {"searchQuery": f"productId:{product['id']}"})) == [late["id"]]
    assert _ids(api.get("/commitments/search", {"sortBy": "startDate", "sortOrder": "DESC"})) \
        == [elsewhere["id"], late["id"], early["id"]]


def test_bill_search_reads_booleans_and_dates(api):
    account = api.account("Acme", "acme")
    collection = api.backend.store.collection(ORG, "bills")
    for bill_id, locked, bill_date in (("b-1", True, "2024-02-01"), ("b-2", False, "2024-03-01")):
        collection.put({"id": bill_id, "version": 1, "accountId": account["id"], "locked": locked,
                        "billDate": bill_date, "startDate": "2024-01-01", "endDate": bill_date,
                        "billingFrequency": "MONTHLY"})
    assert _ids(api.get("/bills/search", {"searchQuery": "locked:true"})) == ["b-1"]
    assert _ids(api.get("/bills/search", {"searchQuery": "billDate>=2024-02-15$billingFrequency:MONTHLY"})) == ["b-2"]
    assert api.message("GET", "/bills/search", params={"searchQuery": "locked:maybe"}) \
        == "searchQuery: 'locked' is true or false, not 'maybe'"
    assert api.message("GET", "/bills/search", params={"searchQuery": "name:x"}).startswith(
        "searchQuery: 'name' is not a searchable field of Bill")


# -- accounts ----------------------------------------------------------------------------

def test_account_children_are_the_direct_children_a_page_at_a_time(api):
    parent = api.account("Parent", "parent")
    first = api.account("First", "first", parentAccountId=parent["id"])
    second = api.account("Second", "second", parentAccountId=parent["id"])
    api.account("Grandchild", "grand", parentAccountId=first["id"])
    api.account("Unrelated", "unrelated")
    page = api.get(f"/accounts/{parent['id']}/children", {"pageSize": 1})
    assert _ids(page) == [first["id"]]
    following = api.get(f"/accounts/{parent['id']}/children", {"pageSize": 1, "nextToken": page["nextToken"]})
    assert _ids(following) == [second["id"]] and "nextToken" not in following
    assert api.get(f"/accounts/{second['id']}/children") == {"data": []}
    assert api.message("GET", f"/accounts/{NOWHERE}/children", status=404) == f"No Account with id '{NOWHERE}'"


def _plan_for(api, account_id=None):
    product = api.post("/products", {"name": "Storage", "code": f"storage-{account_id or 'shared'}"})
    template = api.post("/plantemplates", {"name": "T", "productId": product["id"], "billFrequency": "MONTHLY",
                                           "currency": "USD", "standingCharge": 0})
    plan = api.post("/plans", {"name": "P", "code": f"plan-{account_id or 'shared'}", "planTemplateId": template["id"],
                               **({"accountId": account_id} if account_id else {})})
    return plan


def test_end_dating_an_accounts_billing_entities(api):
    parent = api.account("Parent", "parent")
    child = api.account("Child", "child", parentAccountId=parent["id"])
    other = api.account("Other", "other")
    own_plan = _plan_for(api, parent["id"])
    shared_plan = _plan_for(api)
    ap = api.post("/accountplans", {"accountId": parent["id"], "planId": shared_plan["id"],
                                    "startDate": "2024-01-01T00:00:00Z"})
    child_ap = api.post("/accountplans", {"accountId": child["id"], "planId": shared_plan["id"],
                                          "startDate": "2024-01-01T00:00:00Z"})
    ended = api.post("/accountplans", {"accountId": parent["id"], "planId": shared_plan["id"],
                                       "startDate": "2023-01-01T00:00:00Z", "endDate": "2023-06-01T00:00:00Z"})
    future = api.post("/accountplans", {"accountId": parent["id"], "planId": shared_plan["id"],
                                        "startDate": "2025-01-01T00:00:00Z"})
    other_ap = api.post("/accountplans", {"accountId": other["id"], "planId": shared_plan["id"],
                                          "startDate": "2024-01-01T00:00:00Z"})
    commitment = api.post("/commitments", {"accountId": parent["id"], "amount": 10, "currency": "USD",
                                           "startDate": "2024-01-01", "endDate": "2025-01-01"})
    band = [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1}]
    pricing = api.post("/pricings", {"planId": own_plan["id"], "startDate": "2024-01-01T00:00:00Z",
                                     "pricingBands": band, "aggregationId": _aggregation(api)})
    shared_pricing = api.post("/pricings", {"planId": shared_plan["id"], "startDate": "2024-01-01T00:00:00Z",
                                            "pricingBands": band, "aggregationId": _aggregation(api, "b")})

    answer = api.put(f"/accounts/{parent['id']}/enddatebillingentities",
                     {"endDate": "2024-07-01T00:00:00Z",
                      "billingEntities": ["ACCOUNTPLAN", "PREPAYMENT", "PRICINGS"]})
    assert answer["updatedEntities"] == {
        "ACCOUNTPLAN": {"empty": False, "ids": [ap["id"]]},
        "PREPAYMENT": {"empty": False, "ids": [commitment["id"]]},
        "PRICINGS": {"empty": False, "ids": [pricing["id"]]},
    }
    assert answer["failedEntities"] == {"ACCOUNTPLAN": {"empty": False, "ids": [future["id"]]},
                                        "PREPAYMENT": {"empty": True, "ids": []},
                                        "PRICINGS": {"empty": True, "ids": []}}
    assert answer["statusMessage"] == ("End date 2024-07-01T00:00:00Z applied to 3 billing entities; "
                                       "1 start on or after it and were left unchanged")
    changed = api.get(f"/accountplans/{ap['id']}")
    assert changed["endDate"] == "2024-07-01T00:00:00Z" and changed["version"] == 2
    # A Commitment's endDate is a date: the end date's UTC day.
    assert api.get(f"/commitments/{commitment['id']}")["endDate"] == "2024-07-01"
    assert api.get(f"/pricings/{pricing['id']}")["version"] == 2
    for untouched in (f"/accountplans/{child_ap['id']}", f"/accountplans/{ended['id']}",
                      f"/accountplans/{future['id']}", f"/accountplans/{other_ap['id']}",
                      f"/pricings/{shared_pricing['id']}"):
        assert api.get(untouched)["version"] == 1, untouched
    # Read through the Event log's service: the events list's answer is another helper's (dtActioned).
    events, _ = api.backend.events.list(Caller(ORG, "test-client"),
                                        {"eventName": "configuration.commitment.updated"}, 10, None)
    assert [(e["m3terEvent"]["eventData"]["oldDto"]["endDate"], e["m3terEvent"]["eventData"]["newDto"]["endDate"])
            for e in events] == [("2025-01-01", "2024-07-01")]

    with_children = api.put(f"/accounts/{parent['id']}/enddatebillingentities",
                            {"endDate": "2024-05-01T00:00:00Z", "billingEntities": ["ACCOUNTPLAN"],
                             "applyToChildren": True})
    assert with_children["updatedEntities"]["ACCOUNTPLAN"]["ids"] == [ap["id"], child_ap["id"]]
    assert api.get(f"/accountplans/{ap['id']}")["endDate"] == "2024-05-01T00:00:00Z"


def _aggregation(api, suffix="a"):
    meter = api.post("/meters", {"name": f"M{suffix}", "code": f"m{suffix}", "derivedFields": [],
                                 "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"}]})
    return api.post("/aggregations", {"name": f"A{suffix}", "meterId": meter["id"], "targetField": "gb",
                                      "aggregation": "SUM", "unit": "GB", "rounding": "NONE",
                                      "quantityPerUnit": 1})["id"]


def test_end_dating_through_a_contract_ends_that_contract_only(api):
    account = api.account("Acme", "acme")
    mine = api.post("/contracts", {"accountId": account["id"], "name": "C1", "startDate": "2024-01-01",
                                   "endDate": "2026-01-01"})
    sibling = api.post("/contracts", {"accountId": account["id"], "name": "C2", "startDate": "2024-01-01",
                                      "endDate": "2026-01-01"})
    answer = api.put(f"/contracts/{mine['id']}/enddatebillingentities",
                     {"endDate": "2025-01-01T12:00:00+02:00", "billingEntities": ["CONTRACT"]})
    assert answer["updatedEntities"] == {"CONTRACT": {"empty": False, "ids": [mine["id"]]}}
    assert api.get(f"/contracts/{mine['id']}")["endDate"] == "2025-01-01"
    assert api.get(f"/contracts/{sibling['id']}")["version"] == 1
    assert api.message("PUT", f"/contracts/{NOWHERE}/enddatebillingentities",
                       {"endDate": "2025-01-01T00:00:00Z", "billingEntities": ["CONTRACT"]},
                       status=404) == f"No Contract with id '{NOWHERE}'"
    assert api.message("PUT", f"/accounts/{NOWHERE}/enddatebillingentities",
                       {"endDate": "2025-01-01T00:00:00Z", "billingEntities": ["CONTRACT"]},
                       status=404) == f"No Account with id '{NOWHERE}'"


def test_replacing_an_account_plan_end_dates_it_and_creates_the_new_one(api):
    account = api.account("Acme", "acme")
    other = api.account("Other", "other")
    plan = _plan_for(api)
    original = api.post("/accountplans", {"accountId": account["id"], "planId": plan["id"],
                                          "startDate": "2024-01-01T00:00:00Z"})
    before = api.backend.store.contents()
    for body, message in (
        ({"accountId": account["id"], "planId": plan["id"], "startDate": "2024-01-01T00:00:00Z"},
         "startDate: must be after the replaced AccountPlan's startDate 2024-01-01T00:00:00Z"),
        ({"accountId": other["id"], "planId": plan["id"], "startDate": "2024-06-01T00:00:00Z"},
         f"accountId: must be the replaced AccountPlan's Account '{account['id']}'"),
        ({"accountId": account["id"], "planId": NOWHERE, "startDate": "2024-06-01T00:00:00Z"},
         f"planId: no Plan with id '{NOWHERE}'"),
    ):
        assert api.message("POST", f"/accountplans/{original['id']}/replace", body) == message
    assert api.backend.store.contents() == before

    answer = api.post(f"/accountplans/{original['id']}/replace",
                      {"accountId": account["id"], "planId": plan["id"], "startDate": "2024-06-01T00:00:00Z"})
    assert answer["originalAccountPlan"]["id"] == original["id"]
    assert answer["originalAccountPlan"]["endDate"] == "2024-06-01T00:00:00Z"
    assert answer["originalAccountPlan"]["version"] == 2
    new = answer["newAccountPlan"]
    assert new["startDate"] == "2024-06-01T00:00:00Z" and new["version"] == 1 and "endDate" not in new
    assert api.get(f"/accountplans/{new['id']}") == new
    assert api.message("POST", f"/accountplans/{original['id']}/replace",
                       {"accountId": account["id"], "planId": plan["id"], "startDate": "2024-07-01T00:00:00Z"}) \
        == "startDate: must be before the replaced AccountPlan's endDate 2024-06-01T00:00:00Z"
    assert api.message("POST", f"/accountplans/{NOWHERE}/replace",
                       {"accountId": account["id"], "startDate": "2024-07-01T00:00:00Z"}, status=404) \
        == f"No AccountPlan with id '{NOWHERE}'"


# -- users and invitations ---------------------------------------------------------------------

def test_an_invitation_lasts_30_days_unless_it_says_otherwise(api):
    api.backend.change_clock(freeze=True, at="2025-01-01T00:00:00Z")
    invitation = api.post("/invitations", {"firstName": "Ada", "lastName": "L", "email": "ada@example.com"})
    assert invitation["dtExpiry"] == "2025-01-31T00:00:00.000Z" and invitation["accepted"] is False
    own = api.post("/invitations", {"firstName": "Bo", "lastName": "L", "email": "bo@example.com",
                                    "dtExpiry": "2025-01-02T00:00:00Z"})
    assert own["dtExpiry"] == "2025-01-02T00:00:00Z"
    assert api.message("POST", "/invitations", {"firstName": "Cy", "lastName": "L", "email": "cy@example.com",
                                                "dtExpiry": "2024-12-31T00:00:00Z"}) \
        == "dtExpiry: must be a date-time after now (2025-01-01T00:00:00.000Z)"

    api.backend.change_clock(at="2025-01-02T00:00:00Z")
    assert api.accept(own["id"], status=409)["message"] \
        == f"OrgUserInvitation '{own['id']}' expired at 2025-01-02T00:00:00Z"


def test_an_accepted_invitation_is_a_user_with_its_policies(api):
    policy = api.policy()
    invitation = api.post("/invitations", {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
                                           "contactNumber": "+44 1", "permissionPolicyIds": [policy["id"]],
                                           "dtEndAccess": "2030-01-01T00:00:00Z"})
    user = api.accept(invitation["id"])
    assert {k: user[k] for k in ("firstName", "lastName", "email", "contactNumber", "organizations",
                                 "supportUser", "dtEndAccess", "version")} == {
        "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "contactNumber": "+44 1",
        "organizations": [ORG], "supportUser": False, "dtEndAccess": "2030-01-01T00:00:00Z", "version": 1}
    assert api.get(f"/users/{user['id']}") == user
    assert _ids(api.get("/users")) == [user["id"]]
    assert api.get(f"/invitations/{invitation['id']}")["accepted"] is True
    assert api.get(f"/users/{user['id']}/permissions") == {"id": user["id"], "permissionPolicy": ALLOW_ALL}

    assert api.accept(invitation["id"], status=409)["message"] \
        == f"OrgUserInvitation '{invitation['id']}' was accepted already"
    assert api.message("POST", "/invitations", {"firstName": "A", "lastName": "L", "email": "ADA@example.com"},
                       status=409) == f"email: 'ADA@example.com' is already OrgUser '{user['id']}'"


def test_updating_a_user_keeps_who_it_is_and_follows_the_version_rules(api):
    user = api.user()
    statements = [{"effect": "DENY", "action": ["CONFIG_DELETE"], "resource": ["config:meter/item/*"]}]
    # A 400 naming `version` (from the request schema, or the engine's rule where it does not require it).
    assert "version" in api.message("PUT", f"/users/{user['id']}", {"permissionPolicy": statements})
    updated = api.put(f"/users/{user['id']}", {"permissionPolicy": statements, "version": 1,
                                               "dtEndAccess": "2031-01-01T00:00:00Z"})
    assert updated["version"] == 2 and updated["permissionPolicy"] == statements
    assert (updated["firstName"], updated["email"], updated["dtEndAccess"]) == \
        ("Ada", "ada@example.com", "2031-01-01T00:00:00Z")
    assert updated["createdBy"] == "m3ter-mock-admin" and updated["lastModifiedBy"] == "test-client"
    assert api.message("PUT", f"/users/{user['id']}", {"version": 1}, status=409).startswith("version 1 is stale")
    cleared = api.put(f"/users/{user['id']}", {"version": 2})
    assert "permissionPolicy" not in cleared and "dtEndAccess" not in cleared and cleared["lastName"] == "Lovelace"
    assert api.message("PUT", f"/users/{NOWHERE}", {"version": 1}, status=404) == f"No OrgUser with id '{NOWHERE}'"


def test_me_is_the_calling_client_as_a_service_user(api):
    me = api.get("/users/me")
    assert me["serviceUser"]["name"] == "test-client"
    assert me["organization"] == {"id": ORG, "orgId": ORG, "organizationName": ORG, "status": "ACTIVE"}
    assert "user" not in me
    # The same client in the same organization is the same service user.
    assert api.get("/users/me")["serviceUser"]["id"] == me["serviceUser"]["id"]


def test_resending_a_password_needs_the_user(api):
    user = api.user()
    response = api.client.put(f"{O}/users/{user['id']}/password/resend", headers=api.headers)
    assert response.status_code == 200 and response.content == b""
    assert api.message("PUT", f"/users/{NOWHERE}/password/resend", status=404) == f"No OrgUser with id '{NOWHERE}'"


# -- permission policies -----------------------------------------------------------------------

def test_policies_link_to_users_groups_service_and_support_users(api):
    user = api.user()
    policy = api.policy()
    base = f"/permissionpolicies/{policy['id']}"
    link = api.post(f"{base}/addtouser", {"principalId": user["id"]})
    assert {k: link[k] for k in ("permissionPolicyId", "principalId", "principalType", "version")} == {
        "permissionPolicyId": policy["id"], "principalId": user["id"], "principalType": "USER", "version": 1}
    assert api.post(f"{base}/addtouser", {"principalId": user["id"]}) == link  # already linked: unchanged
    assert api.message("POST", f"{base}/addtouser", {"principalId": NOWHERE}) \
        == f"principalId: no OrgUser with id '{NOWHERE}'"
    assert api.message("POST", f"{base}/addtousergroup", {"principalId": NOWHERE}) \
        == f"principalId: no user ResourceGroup with id '{NOWHERE}'"
    assert api.message("POST", f"/permissionpolicies/{NOWHERE}/addtouser", {"principalId": user["id"]},
                       status=404) == f"No PermissionPolicy with id '{NOWHERE}'"
    service = api.post(f"{base}/addtoserviceuser", {"principalId": "any-service-user"})
    assert service["principalType"] == "SERVICEUSER" and service["principalId"] == "any-service-user"
    support = api.post(f"{base}/addtosupportusers", {})
    assert support["principalType"] == "SUPPORTUSERS" and "principalId" not in support

    assert api.post(f"{base}/removefromuser", {"principalId": user["id"]}) == link
    assert api.message("POST", f"{base}/removefromuser", {"principalId": user["id"]}, status=404) \
        == f"PermissionPolicy '{policy['id']}' is not linked to USER '{user['id']}'"
    assert api.post(f"{base}/removefromsupportusers") == support
    assert api.message("POST", f"{base}/removefromsupportusers", status=404) \
        == f"PermissionPolicy '{policy['id']}' is not linked to SUPPORTUSERS"
    assert api.post(f"{base}/removefromserviceuser", {"principalId": "any-service-user"}) == service


def test_a_users_permissions_come_from_its_own_statements_its_policies_and_its_groups(api):
    own = [{"effect": "ALLOW", "action": ["CONFIG_RETRIEVE"], "resource": ["config:plan/item/*"]}]
    user = api.user()
    api.put(f"/users/{user['id']}", {"version": 1, "permissionPolicy": own})
    direct = api.policy("Direct", [{"effect": "ALLOW", "action": ["CONFIG_CREATE"], "resource": ["config:meter/*"]}])
    via_team = api.policy("Team", [{"effect": "DENY", "action": ["CONFIG_DELETE"], "resource": ["*"]}])
    via_dept = api.policy("Dept", [{"effect": "ALLOW", "action": ["ANALYTICS_QUERY"], "resource": ["*"]}])
    unrelated = api.policy("Other")
    team, dept = api.group("user", "Team"), api.group("user", "Dept")
    api.post(f"/resourcegroups/user/{team['id']}/addresource", {"targetId": user["id"], "targetType": "ITEM"})
    api.post(f"/resourcegroups/user/{dept['id']}/addresource", {"targetId": team["id"], "targetType": "GROUP"})
    api.post(f"/permissionpolicies/{direct['id']}/addtouser", {"principalId": user["id"]})
    api.post(f"/permissionpolicies/{via_team['id']}/addtousergroup", {"principalId": team["id"]})
    api.post(f"/permissionpolicies/{via_dept['id']}/addtousergroup", {"principalId": dept["id"]})
    api.post(f"/permissionpolicies/{unrelated['id']}/addtosupportusers", {})

    permissions = api.get(f"/users/{user['id']}/permissions")
    assert permissions["permissionPolicy"] == own + direct["permissionPolicy"] + via_team["permissionPolicy"] \
        + via_dept["permissionPolicy"]
    assert api.get(f"/users/{user['id']}/usergroups")["id"] == team["id"]

    # Deleting a policy drops its links.
    api.call("DELETE", f"/permissionpolicies/{via_team['id']}")
    assert api.get(f"/users/{user['id']}/permissions")["permissionPolicy"] == \
        own + direct["permissionPolicy"] + via_dept["permissionPolicy"]


def test_a_user_in_no_group_has_no_group_to_show(api):
    user = api.user()
    assert api.message("GET", f"/users/{user['id']}/usergroups", status=404) \
        == f"OrgUser '{user['id']}' is in no user ResourceGroup"
    assert api.message("GET", f"/users/{NOWHERE}/usergroups", status=404) == f"No OrgUser with id '{NOWHERE}'"
    assert api.message("GET", f"/users/{NOWHERE}/permissions", status=404) == f"No OrgUser with id '{NOWHERE}'"


# -- resource groups ------------------------------------------------------------------------------

def test_resource_group_items_and_nested_groups(api):
    fields = {"dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"}], "derivedFields": []}
    meter_a = api.post("/meters", {"name": "A", "code": "a", **fields})
    meter_b = api.post("/meters", {"name": "B", "code": "b", **fields})
    outer, inner = api.group("meter", "Outer"), api.group("meter", "Inner")
    base = f"/resourcegroups/meter/{outer['id']}"

    changed = api.post(f"{base}/addresource", {"targetId": meter_a["id"], "targetType": "ITEM"})
    assert changed["id"] == outer["id"] and changed["version"] == 2
    assert api.post(f"{base}/addresource", {"targetId": meter_a["id"], "targetType": "ITEM"})["version"] == 2
    nested = api.post(f"{base}/addresource", {"targetId": inner["id"], "targetType": "GROUP", "version": 2})
    assert nested["version"] == 3
    assert api.message("POST", f"{base}/addresource", {"targetId": meter_b["id"], "targetType": "ITEM",
                                                       "version": 2}, status=409) \
        == f"version 2 is stale: ResourceGroup '{outer['id']}' is at version 3; fetch it again and resend"
    assert api.message("POST", f"{base}/addresource", {"targetId": NOWHERE, "targetType": "ITEM"}) \
        == f"targetId: no Meter with id '{NOWHERE}'"
    assert api.message("POST", f"/resourcegroups/meter/{inner['id']}/addresource",
                       {"targetId": outer["id"], "targetType": "GROUP"}) \
        == f"targetId: ResourceGroup '{outer['id']}' holds '{inner['id']}' (or is it); nesting it would make a cycle"
    assert api.message("POST", f"{base}/addresource", {"targetId": outer["id"], "targetType": "GROUP"}).endswith(
        "nesting it would make a cycle")
    user_group = api.group("user", "Users")
    assert api.message("POST", f"{base}/addresource", {"targetId": user_group["id"], "targetType": "GROUP"}) \
        == f"targetId: no meter ResourceGroup with id '{user_group['id']}'"
    assert api.message("POST", f"/resourcegroups/meter/{NOWHERE}/addresource",
                       {"targetId": meter_a["id"], "targetType": "ITEM"}, status=404) \
        == f"No ResourceGroup with id '{NOWHERE}'"

    contents = api.post(f"{base}/contents")["data"]
    assert [(c["targetId"], c["targetType"]) for c in contents] == [(meter_a["id"], "ITEM"), (inner["id"], "GROUP")]
    first = api.post(f"{base}/contents", params={"pageSize": 1})
    assert len(first["data"]) == 1 and "nextToken" in first

    removed = api.post(f"{base}/removeresource", {"targetId": meter_a["id"], "targetType": "ITEM"})
    assert removed["version"] == 4
    assert api.message("POST", f"{base}/removeresource", {"targetId": meter_a["id"], "targetType": "ITEM"},
                       status=404) == f"ResourceGroup '{outer['id']}' holds no ITEM '{meter_a['id']}'"
    assert [c["targetId"] for c in api.post(f"{base}/contents")["data"]] == [inner["id"]]

    api.call("DELETE", f"/resourcegroups/meter/{outer['id']}")
    assert api.message("POST", f"{base}/contents", status=404) == f"No ResourceGroup with id '{outer['id']}'"


def test_a_groups_permission_policies(api):
    team = api.group("user", "Team")
    meters = api.group("meter", "Meters")
    linked = api.policy("Linked")
    naming = api.policy("Naming", [{"effect": "ALLOW", "action": ["CONFIG_RETRIEVE"],
                                    "resource": [f"config:meter/group/{meters['id']}"]}])
    api.policy("Neither")
    api.post(f"/permissionpolicies/{linked['id']}/addtousergroup", {"principalId": team["id"]})
    assert _ids(api.get(f"/resourcegroups/user/{team['id']}/permissions")) == [linked["id"]]
    assert _ids(api.get(f"/resourcegroups/meter/{meters['id']}/permissions")) == [naming["id"]]
    assert api.message("GET", f"/resourcegroups/meter/{NOWHERE}/permissions", status=404) \
        == f"No ResourceGroup with id '{NOWHERE}'"


# -- the official SDK, strict --------------------------------------------------------------------

@pytest.fixture
def strict(live_url, live_app):
    live_app.backend.reset()
    with m3ter.M3ter(base_url=live_url, api_key="sdk-client", api_secret="sdk-secret", org_id=ORG,
                     max_retries=0, _strict_response_validation=True) as client:
        yield client


def test_the_sdk_reads_every_answer_of_the_group(strict, live_url):
    account = strict.accounts.create(name="Premium Online", code="prem", email_address="p@example.com")
    child = strict.accounts.create(name="Child", code="child", email_address="c@example.com",
                                   parent_account_id=account.id)
    found = strict.accounts.search(search_query="name~premium", page_size=1)
    assert [a.id for a in found.data] == [account.id] and found.next_token is None
    assert [a.id for a in strict.accounts.list_children(account.id)] == [child.id]
    assert strict.commitments.search(search_query=f"accountId:{account.id}").data == []
    ended = strict.accounts.end_date_billing_entities(account.id, billing_entities=["ACCOUNTPLAN"],
                                                      end_date="2025-01-01T00:00:00Z")
    assert ended.updated_entities.accountplan.empty is True

    me = strict.users.me()
    assert me.service_user.name == "sdk-client" and me.organization.org_id == ORG
    invitation = strict.users.invitations.create(email="ada@example.com", first_name="Ada", last_name="L")
    accepted = httpx.post(f"{live_url}/_mock/organizations/{ORG}/invitations/{invitation.id}/accept")
    assert accepted.status_code == 200, accepted.text
    user = accepted.json()
    policy = strict.permission_policies.create(name="All", permission_policy=ALLOW_ALL)
    link = strict.permission_policies.add_to_user(policy.id, principal_id=user["id"])
    assert link.principal_type == "USER"
    assert strict.users.get_permissions(user["id"]).permission_policy[0].effect == "ALLOW"
    group = strict.resource_groups.create("user", name="Team")
    assert strict.resource_groups.add_resource(group.id, type="user", target_id=user["id"],
                                               target_type="ITEM").version == 2
    assert [i.target_id for i in strict.resource_groups.list_contents(group.id, type="user")] == [user["id"]]
    assert strict.users.get_user_groups(user["id"]).id == group.id
    assert strict.users.update(user["id"], version=1, dt_end_access="2030-01-01T00:00:00Z").first_name == "Ada"
    strict.users.resend_password(user["id"])
