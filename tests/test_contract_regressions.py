"""Regression tests for what the contract suite (``contracts/``) found in the mock and the
spec; each test names the finding. See ``contracts/README.md``."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.app import load_spec
from mockserver.backend.resources.webhooks import check_url

SPEC = load_spec()
SCHEMAS = SPEC["components"]["schemas"]
BASE = "/organizations/org-contract-findings"
WEBHOOK = {"name": "Alerts", "description": "d", "url": "https://hooks.example.com/a",
           "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "s3cr3t-value"}}


# Finding: integers beyond `format: int64` (a Java long at m3ter) were accepted, e.g. a
# `version` of 2**63 on create, which m3ter cannot even parse. Now a 400 naming the field.
@pytest.mark.parametrize("version", [2**63, -(2**63) - 1])
def test_an_int64_field_out_of_range_is_a_400(client, auth, version):
    body = {"name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a", "version": version}
    response = client.post(f"{BASE}/compoundaggregations", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json()["message"] == f"version: {version} is not a 'int64'"


def test_int64_bounds_themselves_are_accepted(client, auth):
    webhook = {**WEBHOOK, "credentials": {**WEBHOOK["credentials"], "version": 2**63 - 1}}
    assert client.post(f"{BASE}/integrationdestinations/webhooks", json=webhook, headers=auth).status_code == 200


def test_an_int32_field_out_of_range_is_a_400(client, auth):
    body = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["BILLS"], "scheduleType": "DAY",
            "period": 2**31, "offset": 2}
    response = client.post(f"{BASE}/dataexports/schedules", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json()["message"] == f"period: {2**31} is not a 'int32'"


# Finding: update schemas inherited their create schema's example (through allOf), which
# has no `version`, so the example Schemathesis sends for PUT was invalid against the PUT
# schema. (The schedule's update schema composes a oneOf with a discriminator and inherits
# no example.) `m3ter-mock validate` now checks inherited examples (tests/test_validate.py).
@pytest.mark.parametrize("name", [n for n in SCHEMAS if n.endswith("UpdateRequest") and n != "DataExportScheduleUpdateRequest"])
def test_every_update_schema_has_an_example_with_a_version(name):
    assert SCHEMAS[name]["example"]["version"] == 1


# Finding: the webhook `url` was any string, so a schema-valid URL could be rejected (400).
# The spec now has the mock's rule as a pattern; every URL it allows, the mock accepts.
URL_PATTERN = SCHEMAS["WebhookDestinationRequest"]["properties"]["url"]["pattern"]


@settings(max_examples=300, deadline=None)
@given(st.from_regex(URL_PATTERN, fullmatch=True))
def test_every_url_the_pattern_allows_the_mock_accepts(url):
    check_url(url)


@pytest.mark.parametrize("url", ["https://hooks.example.com/a\x1cb", "http://host:65536/", "ftp://host/",
                                 "https://[::1/", "https://héllo.example/"])
def test_urls_outside_the_pattern_are_rejected_by_the_spec(client, auth, url):
    assert not re.search(URL_PATTERN, url)
    response = client.post(f"{BASE}/integrationdestinations/webhooks", json={**WEBHOOK, "url": url}, headers=auth)
    assert response.status_code == 400
    assert response.json()["message"].startswith("url: ")


# Finding: `POST /notifications/evaluate` with neither `eventName` nor `eventId` was
# schema-valid and answered 400; the schema now requires one of them.
def test_evaluate_requires_an_event_name_or_id_in_the_schema():
    assert SCHEMAS["EvaluateCalculationRequest"]["anyOf"] == [{"required": ["eventName"]}, {"required": ["eventId"]}]


def test_evaluate_without_event_is_a_400(client, auth):
    response = client.post(f"{BASE}/notifications/evaluate", json={"calculation": "true"}, headers=auth)
    assert response.status_code == 400


# The stateful phase needs links: every CRUD family's create response links to its
# retrieve, update (with the version), list and delete.
CREATES = {"PostCompoundAggregation": "CompoundAggregation", "PostDestination": "ExportDestination",
           "CreateSchedule": "ExportSchedule", "CreateNotification": "Notification",
           "CreateWebhookDestination": "WebhookDestination", "PostIntegrationConfig": "IntegrationConfig"}


@pytest.mark.parametrize("operation_id", sorted(CREATES))
def test_every_create_links_to_the_rest_of_its_family(operation_id):
    operation = next(op for item in SPEC["paths"].values() for op in item.values()
                     if isinstance(op, dict) and op.get("operationId") == operation_id)
    links = operation["responses"]["200"]["links"]
    for name in ("Retrieve", "Update", "List", "Delete"):
        assert links[name] == {"$ref": f"#/components/links/{CREATES[operation_id]}{name}"}
    update = SPEC["components"]["links"][f"{CREATES[operation_id]}Update"]
    assert update["requestBody"] == {"version": "$response.body#/version"}
