"""Issue 8 for data exports: files never leave --export-dir, every run ends SUCCEEDED or
FAILED (never stuck RUNNING), and export files and download grants are retained only up
to their limits. No test sleeps: the export worker is waited for with ``run_due``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mockserver.app import create_app
from tests.conftest import bearer_for, make_settings

ORG = "org-export-hardening"
BASE = f"/organizations/{ORG}"
ROLE = "arn:aws:iam::123456789012:role/m3ter-export"
GCS = {"projectNumber": "1", "poolId": "p", "providerId": "q"}
OPERATIONAL = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]}


def post(client, auth, path, body):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def every_path(root: Path) -> set[str]:
    return {str(Path(d, n).relative_to(root)) for d, dirs, files in os.walk(root) for n in dirs + files}


def failure_events(client, auth) -> list[dict]:
    found = client.get(f"{BASE}/events?eventName=dataexport.job.failure", headers=auth).json()["data"]
    return [e["m3terEvent"]["eventData"]["newDto"] for e in found]


def job_of(client, auth, job_id):
    return client.get(f"{BASE}/dataexports/jobs/{job_id}", headers=auth).json()


def job_error(client, job_id):
    return client.get(f"/_mock/organizations/{ORG}/dataexports/jobs/{job_id}").json().get("error")


# -- confinement: names refused over the API -------------------------------------------------

HOSTILE = [
    ({"bucketName": "../../x"}, "bucketName"), ({"bucketName": "/abs"}, "bucketName"),
    ({"bucketName": "a/../../b"}, "bucketName"), ({"bucketName": ".."}, "bucketName"),
    ({"bucketName": "..."}, "bucketName"), ({"bucketName": "a\\..\\b"}, "bucketName"),
    ({"bucketName": "abc\n"}, "bucketName"), ({"bucketName": "Upper-Case"}, "bucketName"),
    ({"bucketName": "192.168.5.4"}, "bucketName"), ({"bucketName": "a..b"}, "bucketName"),
    ({"bucketName": "my_bucket"}, "bucketName"),  # underscores: GCS only
    ({"bucketName": "xn--exports"}, "bucketName"), ({"bucketName": "exports.mrap"}, "bucketName"),
    ({"bucketName": "acme", "prefix": "../../../../x"}, "prefix"), ({"bucketName": "acme", "prefix": "/abs"}, "prefix"),
    ({"bucketName": "acme", "prefix": "a/../../b"}, "prefix"), ({"bucketName": "acme", "prefix": ".."}, "prefix"),
    ({"bucketName": "acme", "prefix": "a//b"}, "prefix"), ({"bucketName": "acme", "prefix": "a\\b"}, "prefix"),
    ({"bucketName": "acme", "prefix": "a/./b"}, "prefix"), ({"bucketName": "acme", "prefix": "x\x00y"}, "prefix"),
]


@pytest.mark.parametrize(("names", "field"), HOSTILE)
def test_hostile_names_are_a_400_naming_the_field_on_create_and_update(client, auth, names, field):
    created = client.post(f"{BASE}/dataexports/destinations", headers=auth, json={**names, "iamRoleArn": ROLE})
    assert created.status_code == 400 and created.json()["message"].startswith(f"{field}: "), created.text
    kept = post(client, auth, "dataexports/destinations", {"bucketName": "acme-exports", "iamRoleArn": ROLE})
    updated = client.put(f"{BASE}/dataexports/destinations/{kept['id']}", headers=auth,
                         json={**names, "iamRoleArn": ROLE, "version": kept["version"]})
    assert updated.status_code == 400 and updated.json()["message"].startswith(f"{field}: "), updated.text
    stored = client.get(f"{BASE}/dataexports/destinations", headers=auth).json()["data"]
    assert [(d["id"], d["version"]) for d in stored] == [(kept["id"], 1)]


@pytest.mark.parametrize(("names", "field"), [
    ({"bucketName": "goog-exports"}, "bucketName"), ({"bucketName": "my-g00gle-exports"}, "bucketName"),
    ({"bucketName": "../x_y"}, "bucketName"), ({"bucketName": "acme", "prefix": "../x"}, "prefix"),
])
def test_hostile_gcs_names_are_a_400_naming_the_field(client, auth, names, field):
    response = client.post(f"{BASE}/dataexports/destinations", headers=auth,
                           json={"destinationType": "GCS", **names, **GCS})
    assert response.status_code == 400 and response.json()["message"].startswith(f"{field}: "), response.text


@pytest.mark.parametrize("body", [
    {"bucketName": "acme-m3ter-exports", "prefix": "billing/2026 Q1", "iamRoleArn": ROLE},
    {"bucketName": "my.exports-1", "prefix": "billing/", "iamRoleArn": ROLE},
    {"bucketName": "abc", "prefix": "", "iamRoleArn": ROLE},
    {"bucketName": "my_exports", **GCS},
    {"destinationType": "GCS", "bucketName": "acme.exports_2", "prefix": "a/b.c/..d", **GCS},
])
def test_valid_names_are_accepted(client, auth, body):
    created = post(client, auth, "dataexports/destinations", body)
    assert (created["bucketName"], created.get("prefix")) == (body["bucketName"], body.get("prefix"))


# -- confinement: the path is checked again when the file is written ----------------------

@pytest.fixture(scope="module")
def export_root(tmp_path_factory):
    return tmp_path_factory.mktemp("export-root")


@pytest.fixture(scope="module")
def exporting_app(export_root):
    # Deep inside the temporary root, so every "../" spelling still lands inside the root.
    return create_app(make_settings(export_dir=str(export_root / "a" / "b" / "c" / "exports")))


@pytest.fixture
def exporting(exporting_app, export_root):
    """(client, auth, DIR, root): an emptied app whose --export-dir is DIR under root."""
    exporting_app.backend.reset()
    for child in export_root.iterdir():
        shutil.rmtree(child)
    export_dir = export_root / "a" / "b" / "c" / "exports"
    export_dir.mkdir(parents=True)
    client = exporting_app.test_client()
    return client, bearer_for(client), export_dir, export_root


def stored_destination(app, bucket, prefix=None):
    """A destination put straight into the store, as if the API had let it through."""
    destination = {"id": "hostile-destination", "version": 1, "bucketName": bucket,
                   "destinationType": "S3", "iamRoleArn": ROLE, "name": "hostile", "partitionOrder": "TIME_FIRST",
                   **({"prefix": prefix} if prefix is not None else {})}
    with app.backend.store.lock:
        app.backend.store.collection(ORG, "dataexportdestinations").put(destination)
    return destination


def outside(export_dir: Path, root: Path) -> set[str]:
    inside = str(export_dir.relative_to(root))
    return {p for p in every_path(root) if p != inside and not p.startswith(inside + os.sep)} - {"a", "a/b", "a/b/c"}


@pytest.mark.parametrize(("bucket", "prefix"), [
    ("../../x", None), ("ABSOLUTE", None), ("..", None), ("a/../../b", None), ("acme", "../../../../x"),
])
def test_hostile_stored_destination_fails_ad_hoc_and_scheduled_runs_and_writes_nothing_outside(
        exporting_app, exporting, bucket, prefix):
    client, auth, export_dir, root = exporting
    if bucket == "ABSOLUTE":
        bucket = str(root / "abs")
    destination = stored_destination(exporting_app, bucket, prefix)
    adhoc = post(client, auth, "dataexports/adhoc", {**OPERATIONAL, "destinationIds": [destination["id"]]})["jobId"]
    exporting_app.backend.run_due()
    assert client.post("/_mock/clock", json={"freeze": True, "at": "2026-01-01T00:00:00Z"}).status_code == 200
    daily = post(client, auth, "dataexports/schedules", {
        **OPERATIONAL, "scheduleType": "DAY", "period": 1, "offset": 2, "name": "n", "code": "n",
        "destinationIds": [destination["id"]]})
    assert client.post("/_mock/clock", json={"advanceSeconds": 3 * 3600}).status_code == 200
    scheduled = client.get(f"{BASE}/dataexports/jobs?scheduleId={daily['id']}", headers=auth).json()["data"]
    assert [j["status"] for j in scheduled] == ["FAILED"]
    assert job_of(client, auth, adhoc)["status"] == "FAILED"
    for job_id in (adhoc, scheduled[0]["id"]):
        assert "leads outside the export directory" in job_error(client, job_id)
    assert sorted(e["jobId"] for e in failure_events(client, auth)) == sorted([adhoc, scheduled[0]["id"]])
    assert outside(export_dir, root) == set()
    assert every_path(export_dir) == set()  # nothing half-made inside either


@pytest.mark.parametrize("link_at", ["bucket", "deeper"])
def test_a_symlink_inside_the_export_dir_is_not_followed_out(exporting_app, exporting, link_at):
    client, auth, export_dir, root = exporting
    target = root / "elsewhere"
    target.mkdir()
    if link_at == "bucket":
        (export_dir / "linked-bucket").symlink_to(target, target_is_directory=True)
    else:
        (export_dir / "linked-bucket").mkdir()
        (export_dir / "linked-bucket" / f"orgId={ORG}").symlink_to(target, target_is_directory=True)
    destination = post(client, auth, "dataexports/destinations", {"bucketName": "linked-bucket", "iamRoleArn": ROLE})
    job_id = post(client, auth, "dataexports/adhoc", {**OPERATIONAL, "destinationIds": [destination["id"]]})["jobId"]
    exporting_app.backend.run_due()
    assert job_of(client, auth, job_id)["status"] == "FAILED"
    assert "leads outside the export directory" in job_error(client, job_id)
    assert [e["jobId"] for e in failure_events(client, auth)] == [job_id]
    assert list(target.iterdir()) == []


def test_a_good_destination_still_writes_inside_the_export_dir(exporting_app, exporting):
    client, auth, export_dir, root = exporting
    destination = post(client, auth, "dataexports/destinations",
                       {"bucketName": "acme-exports", "prefix": "billing/", "iamRoleArn": ROLE})
    job_id = post(client, auth, "dataexports/adhoc", {**OPERATIONAL, "destinationIds": [destination["id"]]})["jobId"]
    exporting_app.backend.run_due()
    assert job_of(client, auth, job_id)["status"] == "SUCCEEDED"
    written = [p for p in every_path(export_dir) if p.endswith(".csv.gz")]
    assert len(written) == 1 and written[0].startswith(f"acme-exports/billing/orgId={ORG}/date=")
    assert outside(export_dir, root) == set()


# -- integrity: every run ends SUCCEEDED or FAILED ----------------------------------------

def test_an_export_dir_that_is_a_file_fails_the_job_with_an_event(tmp_path):
    not_a_dir = tmp_path / "exports"
    not_a_dir.write_text("a regular file")
    app = create_app(make_settings(export_dir=str(not_a_dir)))
    client = app.test_client()
    auth = bearer_for(client)
    destination = post(client, auth, "dataexports/destinations", {"bucketName": "acme-exports", "iamRoleArn": ROLE})
    job_id = post(client, auth, "dataexports/adhoc", {**OPERATIONAL, "destinationIds": [destination["id"]]})["jobId"]
    app.backend.run_due()
    assert job_of(client, auth, job_id)["status"] == "FAILED"
    error = job_error(client, job_id)
    assert error.startswith("could not write 'acme-exports/orgId=") and "in the export directory: " in error
    assert "Traceback" not in error and str(tmp_path) not in error
    assert [(e["jobId"], e["error"]) for e in failure_events(client, auth)] == [(job_id, error)]
    assert not_a_dir.read_text() == "a regular file"
    app.backend.reset()


@pytest.mark.parametrize("file_format", ["CSV", "JSONL"])
def test_a_stored_lone_surrogate_fails_the_job_with_an_event(app, client, auth, file_format):
    made = post(client, auth, "compoundaggregations", {
        "name": "fine", "code": "agg", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"})
    # The API refuses invalid Unicode; this is what a store holding it would do.
    with app.backend.store.lock:
        app.backend.store.peek(ORG, "compoundaggregations").get(made["id"])["name"] = "broken \ud800 name"
    job_id = post(client, auth, "dataexports/adhoc", {**OPERATIONAL, "exportFileFormat": file_format})["jobId"]
    app.backend.run_due()
    assert job_of(client, auth, job_id)["status"] == "FAILED"
    error = job_error(client, job_id)
    assert error.startswith(f"row '{made['id']}': field 'name' is not valid Unicode text")
    assert [(e["jobId"], e["error"]) for e in failure_events(client, auth)] == [(job_id, error)]


def test_an_unexpected_error_fails_the_job_without_a_traceback(app, client, auth, monkeypatch):
    from mockserver.domain import export_rendering

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(export_rendering, "render", broken)
    job_id = post(client, auth, "dataexports/adhoc", OPERATIONAL)["jobId"]
    app.backend.run_due()
    assert job_of(client, auth, job_id)["status"] == "FAILED"
    error = job_error(client, job_id)
    assert error == "the export failed unexpectedly (KeyError); the mock's log has the details"
    assert [e["jobId"] for e in failure_events(client, auth)] == [job_id]


# -- bounded memory: export files and download grants -------------------------------------

@pytest.fixture(scope="module")
def retaining_app():
    return create_app(make_settings(retain_export_files=2, retain_download_grants=3))


@pytest.fixture
def retaining(retaining_app):
    retaining_app.backend.reset()
    client = retaining_app.test_client()
    assert client.post("/_mock/clock", json={"freeze": True, "at": "2026-03-01T12:00:00Z"}).status_code == 200
    return client, bearer_for(client)


def run_job(app, client, auth) -> str:
    job_id = post(client, auth, "dataexports/adhoc", OPERATIONAL)["jobId"]
    app.backend.run_due()
    return job_id


def url_path(client, auth, job_id):
    issued = client.get(f"{BASE}/dataexports/jobs/{job_id}/getdownloadurl", headers=auth)
    assert issued.status_code == 200, issued.text
    return "/" + issued.json()["url"].split("/", 3)[3]


def test_only_the_newest_jobs_keep_their_files(retaining_app, retaining):
    client, auth = retaining
    first = run_job(retaining_app, client, auth)
    early_url = url_path(client, auth, first)
    assert client.get(early_url).status_code == 200
    second, third = run_job(retaining_app, client, auth), run_job(retaining_app, client, auth)
    # The oldest job keeps its record, but not its file.
    assert job_of(client, auth, first)["status"] == "SUCCEEDED"
    details = client.get(f"/_mock/organizations/{ORG}/dataexports/jobs/{first}").json()
    assert [f["name"] for f in details["files"]] == [f"{first}_compoundaggregation.csv"]
    refused = client.get(f"{BASE}/dataexports/jobs/{first}/getdownloadurl", headers=auth)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith(f"jobId: the files of export job '{first}' are no longer kept")
    gone = client.get(early_url)  # a URL issued while the file was kept
    assert gone.status_code == 403 and "no longer kept" in gone.json()["message"]
    for job_id in (second, third):
        assert client.get(url_path(client, auth, job_id)).status_code == 200
    # Another organization's jobs count separately.
    other = client.post("/organizations/other-org/dataexports/adhoc", json=OPERATIONAL, headers=auth)
    assert other.status_code == 200
    retaining_app.backend.run_due()
    assert client.get(url_path(client, auth, second)).status_code == 200
    assert client.get(url_path(client, auth, third)).status_code == 200
    other_url = client.get(f"/organizations/other-org/dataexports/jobs/{other.json()['jobId']}/getdownloadurl",
                           headers=auth)
    assert other_url.status_code == 200


def test_download_grants_are_capped_and_purged_when_expired(retaining_app, retaining):
    client, auth = retaining
    job_id = run_job(retaining_app, client, auth)
    urls = [url_path(client, auth, job_id) for _ in range(5)]
    assert [client.get(u).status_code for u in urls] == [403, 403, 200, 200, 200]  # the oldest two dropped
    assert client.post("/_mock/clock", json={"advanceSeconds": 15 * 60}).status_code == 200
    fresh = url_path(client, auth, job_id)  # issuing one purges the three that expired
    assert retaining_app.backend.exports.download_urls_kept() == 1
    assert client.get(fresh).status_code == 200
    assert [client.get(u).status_code for u in urls] == [403] * 5
