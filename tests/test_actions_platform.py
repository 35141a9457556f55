"""The platform operations that are not plain CRUD, through HTTP: the data of Lookup Table
Revisions (items, lookup keys, status moves, copy, download and upload URLs, jobs),
integration runs and the integration catalogue, external mapping look-ups, and Balance
transactions with their summary and schedule previews. Every JSON answer is checked against
the operation's response schema in the spec; a few operations are driven by the official SDK."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from openapi_schema_validator import OAS30Validator

from mockserver.app import load_spec
from mockserver.backend.crud import Caller
from tests.conftest import bearer_for

METHODS = ("get", "put", "post", "delete", "patch")
ORG = "org-platform"
BASE = f"/organizations/{ORG}"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _operation_ids(spec: dict) -> dict[str, tuple[str, str, dict]]:
    return {op["operationId"]: (method, path, op) for path, item in spec["paths"].items()
            for method, op in item.items() if method in METHODS and "operationId" in op}


SPEC = load_spec()
OPERATIONS = _operation_ids(SPEC)


@pytest.fixture
def api(app):
    app.backend.clock.freeze(START)
    yield Api(app)
    # The app is shared by the whole session: the delivery seam some tests set must not
    # answer for the next test's real receivers.
    app.backend.deliveries.local_answer = None


class Api:
    def __init__(self, app):
        self.app = app
        self.backend = app.backend
        self.client = app.test_client()
        self.headers = bearer_for(self.client)

    def call(self, operation_id: str, status: int = 200, body=None, query: dict | None = None, **path) -> object:
        """Calls the operation; checks the status and, for a 200, the body against its schema."""
        method, template, op = OPERATIONS[operation_id]
        url = template.replace("{orgId}", ORG)
        for name, value in path.items():
            url = url.replace("{" + name + "}", value)
        assert "{" not in url, url
        kwargs = {"headers": self.headers, "params": query or {}}
        if body is not None:
            kwargs["json"] = body
        response = self.client.request(method.upper(), url, **kwargs)
        assert response.status_code == status, (operation_id, response.status_code, response.text)
        payload = response.json()
        if status == 200:
            check_schema(op, payload)
        else:
            assert set(payload) == {"message"}
        return payload

    def post(self, path: str, body: dict) -> dict:
        response = self.client.post(f"{BASE}/{path}", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str, status: int = 200, **query) -> dict:
        response = self.client.get(f"{BASE}/{path}", params=query, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json()

    def advance(self, **delta) -> None:
        """Moves the mock's clock; a new token, since the old one may have expired."""
        self.backend.advance_to(self.backend.clock.now() + timedelta(**delta))
        self.headers = bearer_for(self.client)


def check_schema(op: dict, payload) -> None:
    response = op["responses"]["200"]
    schema = response["content"]["application/json"]["schema"]
    OAS30Validator({**schema, "components": SPEC["components"]}).validate(payload)
    assert "null" not in json.dumps(payload), payload


# -- Lookup Table Revision data -------------------------------------------------------------------

FIELDS = [{"name": "customer", "type": "STRING"}, {"name": "region", "type": "STRING"},
          {"name": "rate", "type": "NUMBER"}, {"name": "note", "type": "STRING"}]
KEYS = ["customer", "region"]


def table_and_revision(api: Api, fields=None, keys=None, name="Rates 2026"):
    table = api.post("lookuptables", {"name": "Rates", "code": f"rates_{uuid.uuid4().hex[:8]}"})
    revision = api.post(f"lookuptables/{table['id']}/revisions",
                        {"name": name, "fields": fields or FIELDS, "keys": keys or KEYS})
    return table["id"], revision["id"]


def ids(table_id: str, revision_id: str) -> dict:
    return {"lookupTableId": table_id, "lookupTableRevisionId": revision_id}


def revision_of(api: Api, table_id: str, revision_id: str) -> dict:
    return api.get(f"lookuptables/{table_id}/revisions/{revision_id}")


def test_data_is_upserted_by_lookup_key_and_read_back(api):
    table, revision = table_and_revision(api)
    put = api.call("PutLookupTableRevisionData", body={"items": [
        {"customer": "acme", "region": "EU", "rate": 1.5},
        {"customer": "acme", "region": "US", "rate": 2, "note": None}]},
        query={"additional": "lookupKey"}, **ids(table, revision))
    assert put["items"] == [{"customer": "acme", "region": "EU", "rate": 1.5, "lookupKey": "acme,EU"},
                            {"customer": "acme", "region": "US", "rate": 2, "lookupKey": "acme,US"}]
    assert put["version"] == 1 and put["createdBy"] == "test-client"
    # A second write replaces the item with the same key and adds the other.
    again = api.call("PutLookupTableRevisionData", body={"version": 1, "items": [
        {"customer": "acme", "region": "EU", "rate": 3}, {"customer": "zeta", "region": "EU", "rate": 4}]},
        **ids(table, revision))
    assert again["version"] == 2
    read = api.call("GetLookupTableRevisionData", **ids(table, revision))
    assert read["items"] == [{"customer": "acme", "region": "EU", "rate": 3},
                             {"customer": "acme", "region": "US", "rate": 2},
                             {"customer": "zeta", "region": "EU", "rate": 4}]
    assert read["version"] == 2
    assert api.call("GetLookupTableRevisionData", query={"limit": 1, "additional": "lookupKey"},
                    **ids(table, revision))["items"] == [{"customer": "acme", "region": "EU", "rate": 3,
                                                          "lookupKey": "acme,EU"}]
    assert revision_of(api, table, revision)["itemCount"] == 3


def test_a_new_revision_has_no_data_and_no_version(api):
    table, revision = table_and_revision(api)
    assert api.call("GetLookupTableRevisionData", **ids(table, revision)) == {"items": []}


@pytest.mark.parametrize("item, message", [
    ({"customer": "acme", "region": "EU", "rate": "high"}, "items[0].rate: 'high' is not a number (a NUMBER field)"),
    ({"customer": "acme", "region": "EU", "rate": True}, "items[0].rate: True is not a number (a NUMBER field)"),
    ({"customer": "acme", "region": 7}, "items[0].region: 7 is not a string (a STRING field)"),
    ({"customer": "acme", "rate": 1}, "items[0].region: required (a key field of this revision)"),
    ({"customer": "acme", "region": "EU", "colour": "red"},
     "items[0].colour: not a field of this revision (its fields: customer, region, rate, note)"),
    ({"customer": "a,b", "region": "EU"},
     "items[0].customer: a key field's value cannot contain ',' (it separates the values of a lookup key)"),
])
def test_an_item_that_breaks_the_revision_schema_is_a_400_naming_the_field(api, item, message):
    table, revision = table_and_revision(api)
    before = api.backend.store.contents()
    error = api.call("PutLookupTableRevisionData", 400, body={"items": [{"customer": "ok", "region": "EU"}, item]},
                     **ids(table, revision))
    assert error["message"] == message.replace("items[0]", "items[1]")
    assert api.backend.store.contents() == before


def test_a_lookup_key_given_twice_in_one_write_is_a_400(api):
    table, revision = table_and_revision(api)
    error = api.call("PutLookupTableRevisionData", 400, body={"items": [
        {"customer": "acme", "region": "EU", "rate": 1}, {"customer": "acme", "region": "EU", "rate": 2}]},
        **ids(table, revision))
    assert error["message"] == "items[1]: lookup key 'acme,EU' is given twice (also items[0])"


def test_additional_takes_only_lookup_key(api):
    table, revision = table_and_revision(api)
    error = api.call("GetLookupTableRevisionData", 400, query={"additional": "colour"}, **ids(table, revision))
    assert error["message"] == "additional: 'colour' is not one of ['lookupKey']"


def test_a_stale_data_version_is_a_409_and_changes_nothing(api):
    table, revision = table_and_revision(api)
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "a", "region": "EU"}]}, **ids(table, revision))
    before = api.backend.store.contents()
    error = api.call("PutLookupTableRevisionDataEntry", 409, body={"version": 7, "item": {"rate": 1}},
                     lookupKey="b,EU", **ids(table, revision))
    assert error["message"].startswith("version 7 is stale: the data of Lookup Table Revision")
    assert api.backend.store.contents() == before


def test_entries_by_lookup_key(api):
    table, revision = table_and_revision(api, fields=[{"name": "tier", "type": "NUMBER"},
                                                      {"name": "zone", "type": "STRING"},
                                                      {"name": "price", "type": "NUMBER"}],
                                         keys=["tier", "zone"])
    # The key fields may be left out of the item: the path's lookup key gives them.
    put = api.call("PutLookupTableRevisionDataEntry", body={"item": {"price": 9.5}}, query={"additional": "lookupKey"},
                   lookupKey="2,north", **ids(table, revision))
    assert put["items"] == [{"tier": 2, "zone": "north", "price": 9.5, "lookupKey": "2,north"}]
    assert api.call("GetLookupTableRevisionDataEntry", lookupKey="2,north", **ids(table, revision))["items"] == [
        {"tier": 2, "zone": "north", "price": 9.5}]
    mismatch = api.call("PutLookupTableRevisionDataEntry", 400, body={"item": {"tier": 3, "price": 1}},
                        lookupKey="2,north", **ids(table, revision))
    assert mismatch["message"] == "item: its key fields give the lookup key '3,north', not '2,north' as the path says"
    wrong_count = api.call("GetLookupTableRevisionDataEntry", 400, lookupKey="2", **ids(table, revision))
    assert wrong_count["message"].startswith("lookupKey: '2' has 1 value(s); this revision has 2 key field(s)")
    deleted = api.call("DeleteLookupTableRevisionDataEntry", body={"version": 1}, lookupKey="2,north",
                       **ids(table, revision))
    assert deleted["items"] == [{"tier": 2, "zone": "north", "price": 9.5}] and deleted["version"] == 2
    missing = api.call("GetLookupTableRevisionDataEntry", 404, lookupKey="2,north", **ids(table, revision))
    assert missing["message"] == "No LookupTableRevisionData item with lookupKey '2,north'"
    assert revision_of(api, table, revision)["itemCount"] == 0


def test_deleting_the_data_empties_it_and_restarts_its_version(api):
    table, revision = table_and_revision(api)
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "a", "region": "EU"},
                                                           {"customer": "b", "region": "EU"}]}, **ids(table, revision))
    assert api.call("DeleteLookupTableRevisionData", **ids(table, revision)) == {
        "result": f"deleted 2 data item(s) of Lookup Table Revision {revision}"}
    assert api.call("GetLookupTableRevisionData", **ids(table, revision)) == {"items": []}
    assert api.call("PutLookupTableRevisionData", body={"items": [{"customer": "c", "region": "EU"}]},
                    **ids(table, revision))["version"] == 1
    assert revision_of(api, table, revision)["itemCount"] == 1


def test_data_needs_its_revision_and_table(api):
    table, revision = table_and_revision(api)
    nowhere = str(uuid.uuid4())
    assert api.call("GetLookupTableRevisionData", 404, lookupTableId=table,
                    lookupTableRevisionId=nowhere)["message"] == f"No LookupTableRevision with id {nowhere!r}"
    assert api.call("GetLookupTableRevisionData", 404, lookupTableId=nowhere,
                    lookupTableRevisionId=revision)["message"] == f"No LookupTable with id {nowhere!r}"


def test_deleting_a_revision_drops_its_data_and_jobs(api):
    table, revision = table_and_revision(api)
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "a", "region": "EU"}]}, **ids(table, revision))
    started = api.call("TriggerLookupTableRevisionDataDownloadJob", body={"contentType": "text/csv"},
                       **ids(table, revision))
    job = api.call("GetLookupTableRevisionDataJobResponse", id=started["jobId"], **ids(table, revision))
    response = api.client.delete(f"{BASE}/lookuptables/{table}/revisions/{revision}", headers=api.headers)
    assert response.status_code == 200, response.text
    left = [name for name in api.backend.store.org(ORG).collections if f"/revisions/{revision}/" in name]
    assert left == []
    assert api.client.get(job["downloadUrl"].replace("http://testserver", "")).status_code == 403


def test_publishing_archives_the_published_revision(api):
    table, first = table_and_revision(api)
    second = api.post(f"lookuptables/{table}/revisions", {"name": "Rates v2", "fields": FIELDS, "keys": KEYS})["id"]
    published = api.call("UpdateLookupTableRevisionStatus", body={"status": "PUBLISHED"}, lookupTableId=table, id=first)
    assert published["status"] == "PUBLISHED"
    api.call("UpdateLookupTableRevisionStatus", body={"status": "PUBLISHED"}, lookupTableId=table, id=second)
    assert revision_of(api, table, first)["status"] == "ARCHIVED"
    assert revision_of(api, table, second)["status"] == "PUBLISHED"
    jobs = api.call("ListLookupTableRevisionDataJobs", **ids(table, first))["data"]
    assert [(j["type"], j["status"]) for j in jobs] == [("ARCHIVE", "SUCCEEDED")]
    assert api.call("ListLookupTableRevisionDataJobs", **ids(table, second))["data"] == []


def test_a_status_only_moves_forward(api):
    table, revision = table_and_revision(api)
    api.call("UpdateLookupTableRevisionStatus", body={"status": "ARCHIVED"}, lookupTableId=table, id=revision)
    error = api.call("UpdateLookupTableRevisionStatus", 400, body={"status": "DRAFT"}, lookupTableId=table, id=revision)
    assert error["message"] == ("status: a ARCHIVED revision cannot go back to DRAFT "
                                "(a status only moves forward: DRAFT -> PUBLISHED -> ARCHIVED)")
    stale = api.call("UpdateLookupTableRevisionStatus", 409, body={"status": "ARCHIVED", "version": 5},
                     lookupTableId=table, id=revision)
    assert stale["message"].startswith("version 5 is stale")


def test_only_a_draft_revisions_data_changes(api):
    table, revision = table_and_revision(api)
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "a", "region": "EU"}]}, **ids(table, revision))
    api.call("UpdateLookupTableRevisionStatus", body={"status": "PUBLISHED"}, lookupTableId=table, id=revision)
    before = api.backend.store.contents()
    for operation, extra in [("PutLookupTableRevisionData", {"body": {"items": [{"customer": "b", "region": "EU"}]}}),
                             ("PutLookupTableRevisionDataEntry", {"body": {"item": {}}, "lookupKey": "b,EU"}),
                             ("DeleteLookupTableRevisionDataEntry", {"body": {}, "lookupKey": "a,EU"}),
                             ("DeleteLookupTableRevisionData", {}),
                             ("GenerateLookupTableDataUploadUrl",
                              {"body": {"fileName": "a.csv", "contentType": "text/csv", "contentLength": 10}})]:
        error = api.call(operation, 409, **extra, **ids(table, revision))
        assert error["message"].startswith(f"Lookup Table Revision {revision!r} is PUBLISHED: only a DRAFT")
    assert api.backend.store.contents() == before
    assert api.call("GetLookupTableRevisionData", **ids(table, revision))["items"] == [
        {"customer": "a", "region": "EU"}]


def test_copy_to_a_new_revision(api):
    table, revision = table_and_revision(api)
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "a", "region": "EU", "rate": 1}]},
             **ids(table, revision))
    api.call("UpdateLookupTableRevisionStatus", body={"status": "PUBLISHED"}, lookupTableId=table, id=revision)
    copied = api.call("CopyLookupTableRevisionData", body={}, **ids(table, revision))
    new = revision_of(api, table, copied["revisionId"])
    assert (new["name"], new["status"], new["fields"], new["keys"], new["itemCount"]) == (
        "Rates 2026 Copy", "DRAFT", FIELDS, KEYS, 1)
    assert api.call("GetLookupTableRevisionData", **ids(table, new["id"]))["items"] == [
        {"customer": "a", "region": "EU", "rate": 1}]
    job = api.call("GetLookupTableRevisionDataJobResponse", id=copied["jobId"], **ids(table, revision))
    assert (job["type"], job["status"], job["destinationLookupTableRevisionId"]) == ("COPY", "SUCCEEDED", new["id"])


def test_copy_to_a_revision_replaces_its_data_when_the_schemas_match(api):
    table, source = table_and_revision(api)
    target = api.post(f"lookuptables/{table}/revisions", {"name": "Target", "fields": FIELDS, "keys": KEYS})["id"]
    other = api.post(f"lookuptables/{table}/revisions", {"name": "Other", "fields": FIELDS[:3], "keys": KEYS})["id"]
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "s", "region": "EU"}]}, **ids(table, source))
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "t", "region": "EU"}]}, **ids(table, target))
    assert api.call("CopyLookupTableRevisionData", body={"revisionId": target},
                    **ids(table, source))["revisionId"] == target
    assert api.call("GetLookupTableRevisionData", **ids(table, target))["items"] == [{"customer": "s", "region": "EU"}]
    mismatch = api.call("CopyLookupTableRevisionData", 400, body={"revisionId": other}, **ids(table, source))
    assert mismatch["message"] == (
        f"revisionId: Lookup Table Revision {other!r} has other fields or keys than the source")
    nowhere = str(uuid.uuid4())
    missing = api.call("CopyLookupTableRevisionData", 400, body={"revisionId": nowhere}, **ids(table, source))
    assert missing["message"] == f"revisionId: no LookupTableRevision with id {nowhere!r} in Lookup Table {table!r}"


def test_a_download_job_serves_the_data_until_its_url_expires(api):
    table, revision = table_and_revision(api)
    api.call("PutLookupTableRevisionData", body={"items": [
        {"customer": "acme", "region": "EU", "rate": 1.5, "note": "a, quoted"},
        {"customer": "zeta", "region": "US", "rate": 2}]}, **ids(table, revision))
    started = api.call("TriggerLookupTableRevisionDataDownloadJob", body={"contentType": "text/csv"},
                       **ids(table, revision))
    job = api.call("GetLookupTableRevisionDataJobResponse", id=started["jobId"], **ids(table, revision))
    assert (job["type"], job["status"], job["fileName"]) == ("DOWNLOAD", "SUCCEEDED", f"{revision}.csv")
    assert job["downloadUrlExpiry"] == "2026-03-01T01:00:00.000Z"
    path = job["downloadUrl"].replace("http://testserver", "")
    response = api.client.get(path)  # no bearer token: the URL is the credential
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text == 'customer,region,rate,note\nacme,EU,1.5,"a, quoted"\nzeta,US,2,\n'
    api.advance(hours=1)
    assert api.client.get(path).status_code == 403


def test_only_an_archived_revision_has_an_archived_data_url(api):
    table, revision = table_and_revision(api)
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "acme", "region": "EU", "rate": 1}]},
             **ids(table, revision))
    error = api.call("GetLookupTableRevisionArchivedDataUrl", 409, body={"contentType": "application/jsonl"},
                     **ids(table, revision))
    assert error["message"].startswith(f"Lookup Table Revision {revision!r} is DRAFT: only an ARCHIVED")
    api.call("UpdateLookupTableRevisionStatus", body={"status": "ARCHIVED"}, lookupTableId=table, id=revision)
    answer = api.call("GetLookupTableRevisionArchivedDataUrl", body={"contentType": "application/jsonl"},
                      **ids(table, revision))
    assert answer["expiry"] == "2026-03-01T01:00:00.000Z"
    response = api.client.get(answer["url"].replace("http://testserver", ""))
    assert response.status_code == 200
    assert response.text == '{"customer":"acme","region":"EU","rate":1}\n'


def test_export_downloads_still_work_beside_lookup_data_downloads(api):
    job = api.post("dataexports/adhoc", {"sourceType": "OPERATIONAL",
                                         "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]})
    api.backend.run_due()
    url = api.get(f"dataexports/jobs/{job['jobId']}/getdownloadurl")["url"]
    response = api.client.get(url.replace("http://testserver", ""))
    assert response.status_code == 200 and response.text.startswith("id,")


def upload_url(api, table, revision, content: bytes, content_type="text/csv"):
    return api.call("GenerateLookupTableDataUploadUrl", body={
        "fileName": "rates.csv", "contentType": content_type, "contentLength": len(content)}, **ids(table, revision))


def put_file(api, url: str, content: bytes, content_type="text/csv"):
    return api.client.put(url.replace("http://testserver", ""), content=content,
                          headers={"Content-Type": content_type})


def test_an_uploaded_file_is_upserted_into_the_data(api):
    table, revision = table_and_revision(api)
    api.call("PutLookupTableRevisionData", body={"items": [{"customer": "acme", "region": "EU", "rate": 1}]},
             **ids(table, revision))
    content = b"customer,region,rate\nacme,EU,5\nzeta,US,2.25\n"
    answer = upload_url(api, table, revision, content)
    assert answer["headers"] == {"Content-Type": "text/csv"}
    pending = api.call("GetLookupTableRevisionDataJobResponse", id=answer["jobId"], **ids(table, revision))
    assert (pending["type"], pending["status"], pending["fileName"]) == ("UPLOAD", "PENDING", "rates.csv")
    response = put_file(api, answer["url"], content)
    assert response.status_code == 200, response.text
    job = api.call("GetLookupTableRevisionDataJobResponse", id=answer["jobId"], **ids(table, revision))
    assert job["status"] == "SUCCEEDED"
    assert api.call("GetLookupTableRevisionData", **ids(table, revision))["items"] == [
        {"customer": "acme", "region": "EU", "rate": 5}, {"customer": "zeta", "region": "US", "rate": 2.25}]
    # An upload URL is used once.
    assert put_file(api, answer["url"], content).status_code == 403


def test_a_bad_file_fails_its_job_and_leaves_the_data(api):
    table, revision = table_and_revision(api)
    content = b'{"customer":"acme","region":"EU"}\n{"customer":"zeta","rate":"x"}\n'
    answer = upload_url(api, table, revision, content, "application/jsonl")
    response = put_file(api, answer["url"], content, "application/jsonl")
    assert response.status_code == 200, response.text
    job = api.call("GetLookupTableRevisionDataJobResponse", id=answer["jobId"], **ids(table, revision))
    assert (job["status"], job["failureReason"]) == ("FAILED", "line 2.rate: 'x' is not a number (a NUMBER field)")
    assert api.call("GetLookupTableRevisionData", **ids(table, revision)) == {"items": []}


def test_an_upload_url_takes_only_its_file_and_lasts_a_minute(api):
    table, revision = table_and_revision(api)
    content = b"customer,region\nacme,EU\n"
    answer = upload_url(api, table, revision, content)
    short = put_file(api, answer["url"], content[:-1])
    assert (short.status_code, short.json()["message"]) == (
        400, f"Content-Length: this URL takes a file of {len(content)} bytes (got {len(content) - 1})")
    wrong_type = put_file(api, answer["url"], content, "application/jsonl")
    assert wrong_type.status_code == 400
    api.advance(seconds=60)
    assert put_file(api, answer["url"], content).status_code == 403
    job = api.call("GetLookupTableRevisionDataJobResponse", id=answer["jobId"], **ids(table, revision))
    assert job["status"] == "PENDING"


def test_data_jobs_are_listed_and_deleted_per_revision(api):
    table, revision = table_and_revision(api)
    first = api.call("TriggerLookupTableRevisionDataDownloadJob", body={"contentType": "text/csv"},
                     **ids(table, revision))["jobId"]
    second = api.call("TriggerLookupTableRevisionDataDownloadJob", body={"contentType": "application/jsonl"},
                      **ids(table, revision))["jobId"]
    page = api.call("ListLookupTableRevisionDataJobs", query={"pageSize": 1}, **ids(table, revision))
    assert [j["id"] for j in page["data"]] == [first]
    rest = api.call("ListLookupTableRevisionDataJobs", query={"pageSize": 1, "nextToken": page["nextToken"]},
                    **ids(table, revision))
    assert [j["id"] for j in rest["data"]] == [second] and "nextToken" not in rest
    assert api.call("DeleteLookupTableRevisionDataJobResponse", id=first, **ids(table, revision))["id"] == first
    api.call("GetLookupTableRevisionDataJobResponse", 404, id=first, **ids(table, revision))


# -- integration runs ------------------------------------------------------------------------------

def delivered_notification(api: Api, answer: int = 200):
    """A notification linked to a webhook, fired once; its delivery answered ``answer``."""
    api.backend.deliveries.local_answer = lambda url, headers, body: answer
    hook = api.post("integrationdestinations/webhooks", {
        "name": "Receiver", "description": "test", "url": "https://hooks.example.com/m3ter",
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "s3cr3t-secret-value"}})
    rule = api.post("notifications/configurations", {"name": "Rule", "code": "rule", "description": "d",
                                                      "eventName": "configuration.compoundaggregation.created"})
    config = api.post("integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                             "destination": "Webhook", "destinationId": hook["id"]})
    api.post("compoundaggregations", {"name": "Storage", "code": "storage", "rounding": "UP", "quantityPerUnit": 1,
                                      "unit": "GB", "calculation": "a"})
    api.backend.run_due()
    return hook, rule, config


def test_no_run_before_a_delivery(api):
    api.backend.deliveries.local_answer = lambda url, headers, body: 200
    hook = api.post("integrationdestinations/webhooks", {
        "name": "Receiver", "description": "test", "url": "https://hooks.example.com/m3ter",
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "s3cr3t-secret-value"}})
    rule = api.post("notifications/configurations", {"name": "Rule", "code": "rule", "description": "d",
                                                      "eventName": "configuration.compoundaggregation.created"})
    config = api.post("integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                             "destination": "Webhook", "destinationId": hook["id"]})
    assert api.call("GetIntegrationRun", 404, id=config["id"])["message"] == (
        f"No IntegrationRun with id {config['id']!r}")
    assert api.call("ListIntegrationRuns", entityType="Notification", entityId=rule["id"]) == {"data": []}
    api.call("GetIntegrationRunLatest", 404, entityType="Notification", id=rule["id"])


def test_a_delivery_is_the_configurations_run(api):
    hook, rule, config = delivered_notification(api)
    run = api.call("GetIntegrationRun", id=config["id"])
    assert (run["entityType"], run["entityId"], run["destination"], run["destinationId"], run["status"]) == (
        "Notification", rule["id"], "Webhook", hook["id"], "COMPLETE")
    assert run["dtStarted"] == run["dtCompleted"] == "2026-03-01T00:00:00.000Z"
    assert api.call("ListIntegrationRuns", entityType="notification", entityId=rule["id"])["data"] == [run]
    assert api.call("ListIntegrationRunsByDestinationId", destinationId=hook["id"],
                    query={"destination": "webhook", "status": "COMPLETE"})["data"] == [run]
    assert api.call("ListIntegrationRunsByDestinationId", destinationId=hook["id"],
                    query={"status": "ERROR"})["data"] == []
    assert api.call("ListIntegrationRuns", entityType="Notification", entityId=rule["id"],
                    query={"startDate": "2026-03-01T00:00:00Z"})["data"] == []  # started after: exclusive
    assert api.call("ListIntegrationRuns", entityType="Notification", entityId=rule["id"],
                    query={"endDate": "2026-03-01T00:00:00Z"})["data"] == [run]  # before or on: inclusive
    assert api.call("GetIntegrationRunLatest", entityType="Notification", id=rule["id"]) == run
    assert api.call("GetIntegrationRunLatestForIds", entityType="Notification", query={"ids": rule["id"]}) == run
    api.call("GetIntegrationRunLatestForIds", 404, entityType="Bill", query={"ids": rule["id"]})
    log = base64.b64decode(api.call("GetIntegrationRunLogs", id=config["id"])["Payload"]).decode()
    assert log.splitlines()[1:] == [
        "2026-03-01T00:00:00.000Z attempt 1: POST https://hooks.example.com/m3ter -> HTTP 200, delivered",
        "status COMPLETE"]


def test_a_failing_delivery_shows_in_its_run(api):
    hook, rule, config = delivered_notification(api, answer=500)
    run = api.call("GetIntegrationRun", id=config["id"])
    assert (run["status"], run["error"]) == ("AWAITING_RETRY", "HTTP 500")
    log = base64.b64decode(api.call("GetIntegrationRunLogs", id=config["id"])["Payload"]).decode()
    assert "attempt 1: POST https://hooks.example.com/m3ter -> HTTP 500, retrying" in log


def test_a_run_list_dates_must_be_dates(api):
    error = api.call("ListIntegrationRuns", 400, entityType="Notification", entityId="x",
                     query={"startDate": "yesterday"})
    assert error["message"] == "startDate: 'yesterday' is not a 'date-time'"


# -- the integration catalogue -----------------------------------------------------------------------

def test_the_integration_catalogue_is_the_webhook_for_notifications(api):
    assert api.call("GetAvailableSystems") == [{"identifier": "Webhook", "displayName": "Webhook",
                                                "validationSupported": False,
                                                "supportedAuthTypes": ["M3TER_SIGNED_REQUEST"]}]
    assert api.call("GetAvailableSystems", query={"entityType": "Bill"}) == []
    assert api.call("GetAvailableSystemEntities", systemName="webhook") == [
        {"entityType": "Notification", "readableName": "Notification"}]
    assert api.call("GetAvailableAuthForSystemAndEntityType", systemName="Webhook",
                    entityType="Notification") == {"empty": True}
    assert api.call("GetAvailableSystemEntities", 404, systemName="Stripe")["message"] == (
        "No integration system 'Stripe' (the mock integrates with: Webhook)")
    api.call("GetAvailableAuthForSystemAndEntityType", 404, systemName="Webhook", entityType="Bill")
    api.call("GetConfigOptionValues", 404, systemName="Webhook", configOption="region")
    config = api.call("GetAvailableConfig")
    assert list(config["supportedEntities"]) == ["Notification"]
    assert [d["destination"] for d in config["supportedEntities"]["Notification"]["destinations"]] == ["Webhook"]
    assert api.call("GetAvailableConfig", query={"entityType": "Bill"})["supportedEntities"] == {}


def test_no_marketplace_usage_is_reported(api):
    assert api.call("GetUsageReport", query={"accountId": "a"}) == {"data": []}
    error = api.call("GetUsageReport", 400, query={"nextToken": "forged.token"})
    assert error["message"].startswith("nextToken: not a token issued by this list")


# -- external mappings ---------------------------------------------------------------------------------

def mapping(api, m3ter_id, external_id, system="Stripe", table="Customer", entity="Account"):
    return api.post("externalmappings", {"m3terEntity": entity, "m3terId": m3ter_id, "externalSystem": system,
                                         "externalTable": table, "externalId": external_id})


def test_mappings_by_m3ter_entity_and_by_external_entity(api):
    first = mapping(api, "acc-1", "cus_1")
    second = mapping(api, "acc-1", "cus_2", system="Xero", table="Contact")
    third = mapping(api, "acc-2", "cus_1")
    mapping(api, "acc-1", "prod_1", entity="Product", table="Product")
    page = api.call("ListExternalMappingsForM3terEntity", entity="account", m3terId="acc-1", query={"pageSize": 1})
    assert [m["id"] for m in page["data"]] == [first["id"]]
    rest = api.call("ListExternalMappingsForM3terEntity", entity="account", m3terId="acc-1",
                    query={"pageSize": 1, "nextToken": page["nextToken"]})
    assert [m["id"] for m in rest["data"]] == [second["id"]] and "nextToken" not in rest
    external = api.call("ListExternalMappingsForExternalSystemAndEntity", system="stripe", externalTable="customer",
                        externalId="cus_1")
    assert [m["id"] for m in external["data"]] == [first["id"], third["id"]]
    # A token belongs to the list that issued it.
    api.call("ListExternalMappingsForM3terEntity", 400, entity="Account", m3terId="acc-2",
             query={"nextToken": page["nextToken"]})


def test_the_external_mapping_configuration(api):
    config = api.call("GetExternalMappingConfiguration")
    assert "Account" in config["m3terEntities"]
    assert {"name": "Stripe", "tables": [], "allowCustomExternalTables": True} in config["externalSystems"]
    assert api.call("GetExternalMappingOptionsForDestination", destination="Stripe", entityType="Account") == []
    assert api.call("GetExternalMappingOptionsForDestinationForCredentialsId", destination="Stripe",
                    entityType="Account", integrationCredentialsId="c-1") == []


# -- Balances ------------------------------------------------------------------------------------------

def balance(api, **extra):
    account = api.post("accounts", {"name": "Acme", "code": f"acme_{uuid.uuid4().hex[:6]}",
                                    "emailAddress": "billing@acme.example"})
    return api.post("balances", {"name": "Credit", "code": f"credit_{uuid.uuid4().hex[:6]}",
                                 "accountId": account["id"], "currency": "USD",
                                 "startDate": "2026-01-01T00:00:00Z", "endDate": "2027-01-01T00:00:00Z", **extra})


def test_a_transaction_moves_the_balance_amount_exactly(api):
    held = balance(api)
    first = api.call("PostBalanceTransaction", body={"amount": 0.1, "description": "top-up"}, balanceId=held["id"])
    assert (first["amount"], first["entityType"], first["entityId"]) == (0.1, "SERVICE_USER", "test-client")
    api.call("PostBalanceTransaction", body={"amount": 0.2}, balanceId=held["id"])
    assert api.get(f"balances/{held['id']}")["amount"] == 0.3
    # Read from the event log itself: GET /events is another part's (its schema wants dtActioned).
    updated, _ = api.backend.events.list(Caller(ORG, "test-client"), {"eventName": "billing.balance.updated"},
                                         10, None)
    assert [e["m3terEvent"]["eventData"]["newDto"]["amount"] for e in updated] == [0.3, 0.1]
    listed = api.get(f"balances/{held['id']}/transactions", entityType="SERVICE_USER")["data"]
    assert [t["amount"] for t in listed] == [0.1, 0.2]


def test_a_transaction_needs_its_balance_and_transaction_type(api):
    nowhere = str(uuid.uuid4())
    assert api.call("PostBalanceTransaction", 404, body={"amount": 1},
                    balanceId=nowhere)["message"] == f"No Balance with id {nowhere!r}"
    held = balance(api)
    before = api.backend.store.contents()
    error = api.call("PostBalanceTransaction", 400, body={"amount": 1, "transactionTypeId": nowhere},
                     balanceId=held["id"])
    assert error["message"] == f"transactionTypeId: no TransactionType with id {nowhere!r}"
    assert api.backend.store.contents() == before


def test_the_transactions_summary(api):
    held = balance(api, rolloverAmount=10)
    for amount in (100, 25.5, -40.25):
        api.call("PostBalanceTransaction", body={"amount": amount}, balanceId=held["id"])
    assert api.call("GetBalanceTransactionsSummary", balanceId=held["id"]) == {
        "totalCreditAmount": 125.5, "totalDebitAmount": 40.25, "initialCreditAmount": 100,
        "expiredBalanceAmount": 0, "rolloverConsumed": 0, "balanceConsumed": 40.25}
    api.advance(days=306)  # to 2027-01-01, the Balance's end
    # Ended: 85.25 remains, 10 of it rolls over.
    assert api.call("GetBalanceTransactionsSummary", balanceId=held["id"])["expiredBalanceAmount"] == 75.25


def test_a_transaction_schedule_preview_is_not_stored(api):
    held = balance(api)
    kind = api.post("picklists/transactiontypes", {"name": "Top-up", "code": "topup"})
    preview = api.call("PreviewBalanceTransactionSchedule", balanceId=held["id"], body={
        "name": "Monthly top-up", "code": "monthly", "amount": 50, "transactionDescription": "top-up",
        "transactionTypeId": kind["id"], "startDate": "2026-01-31T00:00:00Z", "endDate": "2026-12-31T00:00:00Z",
        "frequency": "MONTHLY", "frequencyInterval": 1})
    # Runs on Jan 31, Feb 28, Mar 31...; the clock stands at Mar 1.
    assert (preview["previousRun"], preview["nextRun"]) == ("2026-02-28T00:00:00.000Z", "2026-03-31T00:00:00.000Z")
    assert (preview["balanceId"], preview["amount"], preview["version"]) == (held["id"], 50, 1)
    assert api.get(f"balances/{held['id']}/balancetransactionschedules")["data"] == []
    missing = api.call("PreviewBalanceTransactionSchedule", 400, balanceId=held["id"], body={
        "name": "x", "code": "x", "amount": 1, "transactionDescription": "d",
        "transactionTypeId": str(uuid.UUID(int=1)),
        "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-02-01T00:00:00Z", "frequency": "DAILY",
        "frequencyInterval": 1})
    assert missing["message"].startswith("transactionTypeId: no TransactionType with id")
    backwards = api.call("PreviewBalanceTransactionSchedule", 400, balanceId=held["id"], body={
        "name": "x", "code": "x", "amount": 1, "transactionDescription": "d", "transactionTypeId": kind["id"],
        "startDate": "2026-02-01T00:00:00Z", "endDate": "2026-02-01T00:00:00Z", "frequency": "DAILY",
        "frequencyInterval": 1})
    assert backwards["message"] == "endDate: must be after startDate (the end is exclusive)"


CHARGE = {"name": "Fee", "code": "fee", "currency": "USD", "chargeDescription": "Platform fee",
          "servicePeriodStartDate": "2026-01-15T00:00:00Z", "servicePeriodEndDate": "2026-04-01T00:00:00Z",
          "billFrequency": "MONTHLY", "billFrequencyInterval": 1, "billInAdvance": False}


def test_a_charge_schedule_preview(api):
    held = balance(api)
    arrears = api.call("PreviewScheduledCharge", balanceId=held["id"], body={**CHARGE, "units": 3, "unitPrice": 0.1})
    # Periods start Jan 15, Feb 15, Mar 15; in arrears each charge comes at the period's end.
    assert (arrears["amount"], arrears["previousRun"], arrears["nextRun"]) == (
        0.3, "2026-02-15T00:00:00.000Z", "2026-03-15T00:00:00.000Z")
    advance = api.call("PreviewScheduledCharge", balanceId=held["id"],
                       body={**CHARGE, "amount": 20, "billInAdvance": True})
    assert (advance["previousRun"], advance["nextRun"]) == ("2026-02-15T00:00:00.000Z", "2026-03-15T00:00:00.000Z")
    api.advance(days=30)  # Mar 31: the last period (Mar 15 - Apr 1) is charged at its end, in arrears
    assert api.call("PreviewScheduledCharge", balanceId=held["id"], body={**CHARGE, "amount": 20})["nextRun"] == (
        "2026-04-01T00:00:00.000Z")
    assert "nextRun" not in api.call("PreviewScheduledCharge", balanceId=held["id"],
                                     body={**CHARGE, "amount": 20, "billInAdvance": True})


@pytest.mark.parametrize("extra, message", [
    ({}, "amount: required (or units and unitPrice)"),
    ({"amount": 5, "units": 1, "unitPrice": 2}, "amount: leave it out when units and unitPrice are given"),
    ({"unitPrice": 2}, "units: required with unitPrice"),
    ({"units": 2}, "unitPrice: required with units"),
])
def test_a_charge_is_an_amount_or_units_at_a_unit_price(api, extra, message):
    held = balance(api)
    assert api.call("PreviewScheduledCharge", 400, balanceId=held["id"], body={**CHARGE, **extra})["message"] == message


# -- the official SDK ------------------------------------------------------------------------------------

@pytest.fixture
def sdk(live_app, live_url):
    import m3ter

    live_app.backend.reset()
    with m3ter.M3ter(base_url=live_url, api_key="sdk-client", api_secret="sdk-secret", org_id=ORG,
                     max_retries=0, _strict_response_validation=True) as client:
        yield client


def test_the_sdk_writes_and_reads_revision_data(sdk):
    table = sdk.lookup_tables.create(name="Rates", code="rates")
    revision = sdk.lookup_tables.lookup_table_revisions.create(
        table.id, name="v1", fields=[{"name": "sku", "type": "STRING"}, {"name": "price", "type": "NUMBER"}],
        keys=["sku"])
    data = sdk.lookup_tables.lookup_table_revision_data
    data.update(revision.id, lookup_table_id=table.id, items=[{"sku": "A-1", "price": 10}])
    data.update_key("B-2", lookup_table_id=table.id, lookup_table_revision_id=revision.id, item={"price": 12.5})
    read = data.retrieve(revision.id, lookup_table_id=table.id, additional=["lookupKey"])
    assert read.items == [{"sku": "A-1", "price": 10, "lookupKey": "A-1"},
                          {"sku": "B-2", "price": 12.5, "lookupKey": "B-2"}]
    assert read.version == 2
    assert data.retrieve_key("B-2", lookup_table_id=table.id, lookup_table_revision_id=revision.id).items == [
        {"sku": "B-2", "price": 12.5}]
    job = data.lookup_table_revision_data_jobs.download(revision.id, lookup_table_id=table.id,
                                                        content_type="text/csv")
    listed = list(data.lookup_table_revision_data_jobs.list(revision.id, lookup_table_id=table.id))
    assert [(j.id, j.type, j.status) for j in listed] == [(job.job_id, "DOWNLOAD", "SUCCEEDED")]


def test_the_sdk_posts_transactions_and_reads_the_summary(sdk):
    account = sdk.accounts.create(name="Acme", code="acme", email_address="billing@acme.example")
    held = sdk.balances.create(account_id=account.id, code="credit", name="Credit", currency="USD",
                               start_date="2026-01-01T00:00:00Z", end_date="2027-01-01T00:00:00Z")
    sdk.balances.transactions.create(held.id, amount=70.5)
    sdk.balances.transactions.create(held.id, amount=-20)
    summary = sdk.balances.transactions.summary(held.id)
    assert (summary.total_credit_amount, summary.total_debit_amount, summary.balance_consumed) == (70.5, 20, 20)
    assert sdk.balances.retrieve(held.id).amount == 50.5


def test_the_sdk_lists_mappings_by_entity(sdk):
    created = sdk.external_mappings.create(m3ter_entity="Account", m3ter_id="acc-9", external_system="Stripe",
                                           external_table="Customer", external_id="cus_9")
    by_m3ter = list(sdk.external_mappings.list_by_m3ter_entity("acc-9", entity="Account"))
    by_external = list(sdk.external_mappings.list_by_external_entity("cus_9", system="Stripe",
                                                                     external_table="Customer"))
    assert [m.id for m in by_m3ter] == [m.id for m in by_external] == [created.id]
