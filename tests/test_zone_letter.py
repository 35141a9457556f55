"""RFC 3339, and so the spec's ``date-time`` format, lets the zone letter be written ``z`` as
well as ``Z``. Python reads only ``Z``: every date-time the mock parses goes through
``clock.from_iso``, so a lower-case ``z`` is the same instant wherever a date-time is read."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mockserver.domain.clock import from_iso

ORG = "org-zone-letter"
BASE = f"/organizations/{ORG}"


def post(client, auth, path, body):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("text", ["2026-03-01T01:00:00Z", "2026-03-01T01:00:00z", "2026-03-01t01:00:00z",
                                  "2026-03-01T02:00:00+01:00"])
def test_from_iso_reads_either_zone_letter(text):
    assert from_iso(text).astimezone(timezone.utc) == datetime(2026, 3, 1, 1, tzinfo=timezone.utc)


def test_from_iso_leaves_a_time_without_a_zone_naive_and_refuses_what_is_not_a_date_time():
    assert from_iso("2026-03-01T01:00:00").tzinfo is None
    with pytest.raises(ValueError):
        from_iso("2026-02-30T01:00:00z")


def test_measurements_and_the_usage_query_read_a_lower_case_zone_letter(client, auth):
    meter = post(client, auth, "meters", {"name": "API", "code": "api", "derivedFields": [], "dataFields": [
        {"category": "MEASURE", "code": "n", "name": "Calls"}]})
    post(client, auth, "accounts", {"name": "Acme", "code": "acme", "emailAddress": "a@example.com"})
    sent = {"measurements": [{"meter": "api", "account": "acme", "ts": "2026-09-01T10:00:00.5z",
                              "ets": "2026-09-01T11:00:00z", "measure": {"n": 4}}]}
    assert post(client, auth, "measurements", sent) == {"result": "accepted"}
    body = post(client, auth, "usage/query", {"startDate": "2026-09-01T10:00:00.5z",
                                              "endDate": "2026-09-01T10:00:00.501z", "meterIds": [meter["id"]]})
    assert [(row["ts"], row["n"]) for row in body["data"]] == [("2026-09-01T10:00:00.500Z", 4)]
