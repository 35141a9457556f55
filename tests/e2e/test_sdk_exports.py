"""The official SDK runs an ad-hoc export and downloads its file through the URL it is given."""

from __future__ import annotations

import csv
import io

import httpx


def test_sdk_adhoc_export_and_download(sdk, live_app):
    made = [sdk.compound_aggregations.create(name=f"Agg {n}", code=f"agg_{n}", rounding="NEAREST",
                                             quantity_per_unit=1, unit="GB", calculation="a") for n in range(3)]
    started = sdk.data_exports.create_adhoc(source_type="OPERATIONAL", operational_data_types=["COMPOUND_AGGREGATIONS"])
    live_app.backend.run_due()  # the export worker has finished what was due
    job = sdk.data_exports.jobs.retrieve(started.job_id)
    assert (job.status, job.source_type) == ("SUCCEEDED", "OPERATIONAL")
    assert [j.id for j in sdk.data_exports.jobs.list(status="SUCCEEDED")] == [job.id]

    link = sdk.data_exports.jobs.get_download_url(started.job_id)
    assert link.expiration_time is not None
    response = httpx.get(link.url, trust_env=False)  # no bearer token, like a pre-signed URL
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == [m.id for m in made]
