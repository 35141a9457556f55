"""Platform behaviour that mutation testing found unpinned: the integration catalogue narrowed
by system, the marketplace usage list refusing another list's nextToken, the schedule
preview naming the date it cannot read, and the archived-data URL naming a revision's
status."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from mockserver.backend.actions import platform
from mockserver.backend.crud import Caller
from mockserver.domain.errors import MockError
from tests.conftest import bearer_for

ORG = "org-pinned-platform"
BASE = f"/organizations/{ORG}"


class Api:
    def __init__(self, app):
        self.backend = app.backend
        self.client = app.test_client()
        self.auth = bearer_for(self.client)

    def get(self, path: str, status: int = 200, **query):
        response = self.client.get(f"{BASE}/{path}", params=query, headers=self.auth)
        assert response.status_code == status, response.text
        return response.json()

    def post(self, path: str, body: dict, status: int = 200):
        response = self.client.post(f"{BASE}/{path}", json=body, headers=self.auth)
        assert response.status_code == status, response.text
        return response.json()

    def put(self, path: str, body: dict, status: int = 200):
        response = self.client.put(f"{BASE}/{path}", json=body, headers=self.auth)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def api(app):
    app.backend.clock.freeze(datetime(2026, 3, 1, tzinfo=timezone.utc))
    return Api(app)


# -- the integration catalogue -------------------------------------------------------------

@pytest.mark.parametrize("system", ["Webhook", "webhook", "WEBHOOK"])
def test_the_catalogue_narrowed_to_a_system_in_any_case_is_that_systems_released_entities(api, system):
    config = api.get("integrationconfigs/available", systemName=system)
    assert list(config["supportedEntities"]) == ["Notification"]
    notification = config["supportedEntities"]["Notification"]
    assert notification["released"] is True
    assert [(d["destination"], d["released"]) for d in notification["destinations"]] == [("Webhook", True)]
    assert api.get("integrationconfigs/available", systemName="Stripe")["supportedEntities"] == {}


# -- marketplace usage --------------------------------------------------------------------

def test_the_marketplace_usage_list_refuses_a_next_token_another_list_issued(api):
    for code in ("first", "second"):
        api.post("accounts", {"name": code.title(), "code": code, "emailAddress": f"{code}@example.com"})
    token = api.get("accounts", pageSize=1)["nextToken"]
    error = api.get("integrationdestinations/marketplace/usageReport", 400, nextToken=token)
    assert error["message"].startswith("nextToken: not a token issued by this list")


# -- balance transaction schedule previews ---------------------------------------------------

def test_a_schedule_preview_names_the_date_it_cannot_read(api):
    account = api.post("accounts", {"name": "Acme", "code": "acme", "emailAddress": "billing@acme.example"})
    held = api.post("balances", {"name": "Credit", "code": "credit", "accountId": account["id"], "currency": "USD",
                                 "startDate": "2026-01-01T00:00:00Z", "endDate": "2027-01-01T00:00:00Z"})
    kind = api.post("picklists/transactiontypes", {"name": "Top-up", "code": "topup"})
    body = {"name": "Monthly top-up", "code": "monthly", "amount": 50, "transactionDescription": "top-up",
            "transactionTypeId": kind["id"], "startDate": "2026-01-31T00:00:00Z", "endDate": "2026-12-31T00:00:00Z",
            "frequency": "MONTHLY", "frequencyInterval": 1}
    balances = platform.platform(api.backend).balances
    caller = Caller(ORG, "test-client")
    # Over HTTP the spec's date-time format answers first; the service names the field all the same.
    for field in ("startDate", "endDate"):
        with pytest.raises(MockError) as refused:
            balances.preview_transaction_schedule(caller, held["id"], {**body, field: "soon"})
        assert refused.value.status == 400
        assert refused.value.message.startswith(f"{field}: 'soon' ")


# -- lookup table revisions -----------------------------------------------------------------

def test_the_archived_data_url_of_a_published_revision_is_a_409_naming_its_status(api):
    table = api.post("lookuptables", {"name": "Rates", "code": f"rates_{uuid.uuid4().hex[:8]}"})
    revision = api.post(f"lookuptables/{table['id']}/revisions",
                        {"name": "Rates 2026", "keys": ["customer"],
                         "fields": [{"name": "customer", "type": "STRING"}, {"name": "rate", "type": "NUMBER"}]})
    api.put(f"lookuptables/{table['id']}/revisions/{revision['id']}/status", {"status": "PUBLISHED"})
    error = api.post(f"lookuptables/{table['id']}/revisions/{revision['id']}/data/archived",
                     {"contentType": "application/jsonl"}, status=409)
    assert error["message"].startswith(f"Lookup Table Revision {revision['id']!r} is PUBLISHED: only an ARCHIVED")
