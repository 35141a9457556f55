"""Named snapshots and restore, the reset of one organization, and the state file
(``--state-file``): what a restore brings back (entities, ids, versions, creation order,
measurements), what it leaves alone (the other organizations), what happens to the workers'
queued work, and a state file that survives a restart, is written atomically and is never
used or overwritten when it is not whole."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mockserver import cli
from mockserver.app import create_app
from mockserver.backend import state as state_module
from mockserver.backend.deliveries import MAX_WAITING
from mockserver.backend.state import StateFileError, read_state_file
from mockserver.settings import Settings
from tests.conftest import bearer_for, make_settings

A, B = "org-state-a", "org-state-b"
MAX_SNAPSHOTS = 3


@pytest.fixture(scope="module")
def state_app():
    # An app of its own: snapshots outlive resets, and this one keeps at most 3.
    return create_app(make_settings(max_snapshots=MAX_SNAPSHOTS))


@pytest.fixture
def mock(state_app):
    state_app.backend.reset()
    for kept in state_app.backend.state.list():
        state_app.backend.state.delete(kept["name"])
    client = state_app.test_client()
    return Mock(state_app, client, bearer_for(client))


class Mock:
    def __init__(self, app, client, auth):
        self.app, self.client, self.auth = app, client, auth

    def call(self, method, org, path, body=None, **query):
        kwargs = {"headers": self.auth, "params": query}
        if body is not None:
            kwargs["json"] = body
        return getattr(self.client, method)(f"/organizations/{org}/{path}", **kwargs)

    def ok(self, method, org, path, body=None, **query):
        response = self.call(method, org, path, body, **query)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        return response.json()

    def admin(self, method, path, status=200, **kwargs):
        response = getattr(self.client, method)(f"/_mock/{path}", **kwargs)
        assert response.status_code == status, (path, response.status_code, response.text)
        return response.json()

    def clock(self, **change):
        self.admin("post", "clock", json=change)

    def product(self, org, code):
        return self.ok("post", org, "products", {"name": code.title(), "code": code})

    def usage_total(self, org, meter_id):
        body = self.ok("post", org, "usage/query", {
            "startDate": "2024-03-01T00:00:00Z", "endDate": "2024-04-01T00:00:00Z",
            "aggregations": [{"meterId": meter_id, "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"}]})
        return body["data"][0]["gb_sum"] if body["data"] else None

    def usage_world(self, org):
        """A meter with a MEASURE field ``gb``, an account, and 2 measurements (6 GB) in March 2024."""
        meter = self.ok("post", org, "meters", {"name": "Disk", "code": "disk", "derivedFields": [], "dataFields": [
            {"category": "MEASURE", "code": "gb", "name": "GB"}]})
        account = self.ok("post", org, "accounts", {"name": "Acme", "code": "acme", "emailAddress": "a@example.com"})
        self.ingest(org, ("m1", "2024-03-02T00:00:00Z", 1), ("m2", "2024-03-03T00:00:00Z", 5))
        return meter, account

    def ingest(self, org, *rows):
        measurements = [{"uid": uid, "meter": "disk", "account": "acme", "ts": ts, "measure": {"gb": gb}}
                        for uid, ts, gb in rows]
        assert self.ok("post", org, "measurements", {"measurements": measurements}) == {"result": "accepted"}

    def export_jobs(self, org):
        return self.ok("get", org, "dataexports/jobs", pageSize=100)["data"]

    def hourly_schedule(self, org):
        return self.ok("post", org, "dataexports/schedules", {
            "sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS"], "scheduleType": "HOUR", "period": 1,
            "name": "hourly", "code": "hourly"})


# -- snapshots and restore ---------------------------------------------------------------

def test_restore_brings_back_entities_ids_versions_order_and_measurements(mock):
    mock.clock(freeze=True, at="2024-03-10T00:00:00Z")
    first, second, third = (mock.product(A, code) for code in ("first", "second", "third"))
    meter, account = mock.usage_world(A)
    page = mock.ok("get", A, "products", pageSize=1)
    assert page["data"] == [first]
    taken = mock.admin("post", "snapshots", 201, json={"name": "before"})
    assert taken["name"] == "before" and taken["scope"] == "store" and "orgId" not in taken
    assert taken["measurements"] == 2 and taken["takenAt"] == "2024-03-10T00:00:00.000Z"
    assert mock.usage_total(A, meter["id"]) == 6

    # Everything changes: an update, a delete, a create, more measurements, another organization.
    mock.ok("put", A, f"products/{first['id']}", {"name": "Renamed", "code": "first", "version": 1})
    mock.ok("delete", A, f"products/{second['id']}")
    added = mock.product(A, "added")
    mock.ingest(A, ("m3", "2024-03-04T00:00:00Z", 100))
    mock.product(B, "elsewhere")
    assert mock.usage_total(A, meter["id"]) == 106

    assert mock.admin("post", "snapshots/before/restore") == taken
    for _ in range(2):  # a snapshot stays, and can be restored again
        assert mock.ok("get", A, f"products/{first['id']}") == first  # name, version 1, audit fields
        assert mock.ok("get", A, f"products/{second['id']}") == second
        assert mock.call("get", A, f"products/{added['id']}").status_code == 404
        assert mock.ok("get", A, f"accounts/{account['id']}") == account
        assert mock.usage_total(A, meter["id"]) == 6
        # the same creation order: a cursor issued before the snapshot reads on where it stood
        assert mock.ok("get", A, "products", pageSize=1, nextToken=page["nextToken"])["data"] == [second]
        assert [p["id"] for p in mock.ok("get", A, "products")["data"]] == [first["id"], second["id"], third["id"]]
        assert mock.ok("get", B, "products")["data"] == []  # did not exist then
        mock.ok("put", A, f"products/{first['id']}", {"name": "Again", "code": "first", "version": 1})
        mock.admin("post", "snapshots/before/restore")
    # a code freed by the restore's delete is taken again, and versions count on from 1
    assert mock.call("post", A, "products", {"name": "Dup", "code": "added"}).status_code == 200
    assert mock.call("post", A, "products", {"name": "Dup", "code": "first"}).status_code == 409


def test_an_organizations_snapshot_leaves_the_other_organizations_alone(mock):
    kept_a = mock.product(A, "kept")
    before_b = mock.product(B, "b")
    taken = mock.admin("post", "snapshots", 201, json={"name": "only-a", "orgId": A})
    assert (taken["scope"], taken["orgId"], taken["organizations"]) == ("organization", A, 1)
    added_a = mock.product(A, "added")
    added_b = mock.product(B, "added")
    changed_b = mock.ok("put", B, f"products/{before_b['id']}", {"name": "B2", "code": "b", "version": 1})

    mock.admin("post", "snapshots/only-a/restore")
    assert [p["id"] for p in mock.ok("get", A, "products")["data"]] == [kept_a["id"]]
    assert mock.call("get", A, f"products/{added_a['id']}").status_code == 404
    assert mock.ok("get", B, "products")["data"] == [changed_b, added_b]


def test_an_organization_snapshotted_empty_is_emptied_by_its_restore(mock):
    mock.product(B, "b")
    taken = mock.admin("post", "snapshots", 201, json={"name": "fresh", "orgId": A})
    assert (taken["organizations"], taken["items"], taken["measurements"]) == (0, 0, 0)
    mock.product(A, "later")
    mock.admin("post", "snapshots/fresh/restore")
    assert mock.ok("get", A, "products")["data"] == []
    assert len(mock.ok("get", B, "products")["data"]) == 1


def test_snapshots_are_listed_replaced_deleted_and_bounded(mock):
    for name in ("s1", "s2", "s3"):
        mock.admin("post", "snapshots", 201, json={"name": name})
    refused = mock.admin("post", "snapshots", 409, json={"name": "s4"})
    assert refused["message"].startswith(f"name: {MAX_SNAPSHOTS} snapshots are kept already")
    assert [s["name"] for s in mock.admin("get", "snapshots")["data"]] == ["s1", "s2", "s3"]
    mock.product(A, "p")
    replaced = mock.admin("post", "snapshots", 201, json={"name": "s1", "orgId": A})  # a name is reused
    assert replaced["orgId"] == A
    assert [s["name"] for s in mock.admin("get", "snapshots")["data"]] == ["s2", "s3", "s1"]
    assert mock.admin("delete", "snapshots/s2")["name"] == "s2"
    mock.admin("post", "snapshots", 201, json={"name": "s4"})
    assert mock.admin("delete", "snapshots/s2", 404) == {"message": "No snapshot named 's2'"}
    assert mock.admin("post", "snapshots/nope/restore", 404) == {"message": "No snapshot named 'nope'"}
    # a reset leaves the snapshots
    mock.admin("post", "reset")
    assert len(mock.admin("get", "snapshots")["data"]) == MAX_SNAPSHOTS


def test_twenty_snapshots_are_kept_by_default(capsys):
    assert Settings().max_snapshots == 20
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    described = " ".join(capsys.readouterr().out.split())
    assert "--max-snapshots N named snapshots kept at once (POST /_mock/snapshots); one more is refused (default 20)" \
        in described


@pytest.mark.parametrize("body, field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": ".hidden"}, "name"), ({"name": "a/b"}, "name"),
    ({"name": "x" * 65}, "name"), ({"name": "ok", "orgId": "no spaces"}, "orgId"),
    ({"name": "ok", "extra": 1}, "extra"),
])
def test_a_bad_snapshot_request_is_a_400_naming_the_field(mock, body, field):
    message = mock.admin("post", "snapshots", 400, json=body)["message"]
    assert field in message
    assert mock.admin("get", "snapshots")["data"] == []


# -- the workers' queued work ----------------------------------------------------------------

def test_a_restored_schedule_fires_once_from_now_and_a_deleted_one_fires_again(mock):
    mock.clock(freeze=True, at="2024-03-01T00:00:00Z")
    schedule = mock.hourly_schedule(A)
    mock.admin("post", "snapshots", 201, json={"name": "scheduled", "orgId": A})
    mock.clock(advanceSeconds=3600)
    assert [j["dateCreated"] for j in mock.export_jobs(A)] == ["2024-03-01T01:00:00.000Z"]

    mock.admin("post", "snapshots/scheduled/restore")
    assert mock.export_jobs(A) == []  # as it was; the clock stays at 01:00
    mock.clock(advanceSeconds=3600)
    assert [j["dateCreated"] for j in mock.export_jobs(A)] == ["2024-03-01T02:00:00.000Z"]  # once, not twice

    # deleted after the snapshot (its queued fire would find it gone): restored, it runs again
    mock.ok("delete", A, f"dataexports/schedules/{schedule['id']}")
    mock.clock(advanceSeconds=3600)
    mock.admin("post", "snapshots/scheduled/restore")
    mock.clock(advanceSeconds=3600)
    assert [(j["dateCreated"], j["scheduleId"]) for j in mock.export_jobs(A)] == [
        ("2024-03-01T04:00:00.000Z", schedule["id"])]


def test_a_restored_pending_bill_job_runs_again(mock):
    mock.clock(freeze=True, at="2024-04-02T00:00:00Z")
    job = mock.ok("post", A, "billjobs", {"lastDateInBillingPeriod": "2024-03-31", "billingFrequency": "MONTHLY"})
    assert job["status"] == "PENDING"
    mock.admin("post", "snapshots", 201, json={"name": "pending", "orgId": A})
    mock.clock(advanceSeconds=1)
    assert mock.ok("get", A, f"billjobs/{job['id']}")["status"] == "COMPLETE"
    mock.admin("post", "snapshots/pending/restore")
    assert mock.ok("get", A, f"billjobs/{job['id']}")["status"] == "PENDING"
    mock.clock(advanceSeconds=1)  # its usual second, counted from the restore
    assert mock.ok("get", A, f"billjobs/{job['id']}")["status"] == "COMPLETE"


def test_restoring_one_organization_keeps_the_others_queued_work(mock):
    mock.clock(freeze=True, at="2024-03-01T00:00:00Z")
    mock.hourly_schedule(B)
    mock.admin("post", "snapshots", 201, json={"name": "a", "orgId": A})
    mock.admin("post", "snapshots/a/restore")
    mock.admin("post", "reset", params={"orgId": A})
    mock.clock(advanceSeconds=3600)
    assert len(mock.export_jobs(B)) == 1


# -- the reset of one organization -----------------------------------------------------------

def test_resetting_one_organization_empties_it_only(mock):
    mock.clock(freeze=True, at="2024-03-01T00:00:00Z")
    in_a = mock.product(A, "a")
    in_b = mock.product(B, "b")
    mock.hourly_schedule(A)
    mock.admin("post", "snapshots", 201, json={"name": "kept"})
    assert mock.admin("post", "reset", params={"orgId": A}) == {"message": f"organization '{A}' is empty"}
    assert mock.call("get", A, f"products/{in_a['id']}").status_code == 404
    assert mock.ok("get", A, "products")["data"] == []
    assert mock.ok("get", A, "events")["data"] == []
    assert mock.ok("get", B, "products")["data"] == [in_b]
    mock.clock(advanceSeconds=3600)
    assert mock.export_jobs(A) == []
    assert [s["name"] for s in mock.admin("get", "snapshots")["data"]] == ["kept"]
    assert mock.admin("get", "clock")["now"] == "2024-03-01T01:00:00.000Z"
    # without orgId: every organization, as before
    assert mock.admin("post", "reset") == {"message": "every organization is empty"}
    assert mock.ok("get", B, "products")["data"] == []


# -- the state file --------------------------------------------------------------------------

def file_app(path, **settings):
    """An app saving to ``path``; unless a test says otherwise, only when told to (flush,
    close), so that no background save races the test."""
    settings.setdefault("state_save_delay_seconds", 3600)
    return create_app(make_settings(state_file=str(path), **settings))


def test_the_state_file_carries_the_store_across_two_app_instances(tmp_path):
    path = tmp_path / "mock.state"
    first = file_app(path)
    one = Mock(first, first.test_client(), None)
    one.auth = bearer_for(one.client)
    one.clock(freeze=True, at="2024-03-10T00:00:00Z")
    product = one.product(A, "storage")
    product = one.ok("put", A, f"products/{product['id']}", {"name": "Storage", "code": "storage", "version": 1})
    meter, account = one.usage_world(A)
    one.hourly_schedule(A)
    one.clock(advanceSeconds=3600)  # one export job
    one.product(B, "other")
    first.backend.state.close()  # as at shutdown
    assert os.listdir(tmp_path) == ["mock.state"]  # nothing else is left beside it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds webhook secrets: for its owner only

    # The clock is not in the file: the new instance starts on its own (here frozen at 01:30).
    second = file_app(path, frozen_clock=datetime(2024, 3, 10, 1, 30, tzinfo=timezone.utc))
    two = Mock(second, second.test_client(), None)
    two.auth = bearer_for(two.client)  # a token of the first instance is not valid here
    assert second.backend.store.contents() == first.backend.store.contents()
    assert two.ok("get", A, f"products/{product['id']}") == product  # version 2, as saved
    assert two.ok("get", A, f"accounts/{account['id']}") == account
    assert two.usage_total(A, meter["id"]) == 6
    # the queued work comes back from the state: the schedule runs on in the new instance
    two.clock(advanceSeconds=1800)
    assert [j["dateCreated"] for j in two.export_jobs(A)] == ["2024-03-10T01:00:00.000Z", "2024-03-10T02:00:00.000Z"]
    second.backend.state.close()


def test_changes_are_saved_without_a_call_for_it_requests_and_workers_alike(tmp_path):
    path = tmp_path / "mock.state"
    app = file_app(path, state_save_delay_seconds=0)
    mock = Mock(app, app.test_client(), None)
    mock.auth = bearer_for(mock.client)
    saver = app.backend.state.file
    mock.clock(freeze=True, at="2024-04-02T00:00:00Z")

    def saved_status(job_id):
        """The job's status in the file, once the saver has caught up."""
        assert saver.wait_saved()
        return read_state_file(path)[A].collections["billjobs"].get(job_id)["status"]

    job = mock.ok("post", A, "billjobs", {"lastDateInBillingPeriod": "2024-03-31", "billingFrequency": "MONTHLY"})
    assert saved_status(job["id"]) == "PENDING"
    # the job completes on the worker, the clock moved from Python: no request at all
    app.backend.change_clock(advance_seconds=1)
    assert saved_status(job["id"]) == "COMPLETE"
    app.backend.state.close()


def test_a_new_state_file_is_created_and_a_missing_directory_is_an_error(tmp_path):
    path = tmp_path / "new.state"
    app = file_app(path)
    assert not path.exists()
    app.backend.state.close()
    assert read_state_file(path) == {}
    with pytest.raises(StateFileError) as refused:
        file_app(tmp_path / "absent" / "x.state")
    assert str(refused.value) == f"state file {str(tmp_path / 'absent' / 'x.state')!r}: its directory does not exist"


def valid_state_file(tmp_path) -> Path:
    path = tmp_path / "mock.state"
    app = file_app(path)
    client = app.test_client()
    client.post(f"/organizations/{A}/products", json={"name": "P", "code": "p"}, headers=bearer_for(client))
    app.backend.state.close()
    return path


def forged(payload: bytes) -> bytes:
    header = {"format": 1, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
              "savedAt": "2024-01-01T00:00:00.000Z", "organizations": 1}
    return state_module.MAGIC + json.dumps(header).encode() + b"\n" + payload


class RemovesAFile:
    """What a hostile state file could hold: an object whose unpickling calls a function."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.remove, (self.target,)


CORRUPTIONS = {
    "empty": (lambda good, tmp: b"", "is empty, so it is not a state file this mock wrote"),
    "not a state file": (lambda good, tmp: b'{"products": []}\n',
                         "does not start with the m3ter-mock state file header"),
    "cut short": (lambda good, tmp: good[:-10], "is cut short or has bytes added"),
    "one byte changed": (lambda good, tmp: good[:-5] + bytes([good[-5] ^ 1]) + good[-4:],
                         "is damaged (its data does not match its checksum)"),
    "damaged header": (lambda good, tmp: state_module.MAGIC + b"{not json\n" + good[len(state_module.MAGIC):],
                       "its header is damaged"),
    "a newer format": (lambda good, tmp: good.replace(b'"format": 1', b'"format": 2', 1),
                       "written in format 2; this m3ter-mock reads format 1"),
    "a function to call": (lambda good, tmp: forged(pickle.dumps({A: (pickle.dumps(RemovesAFile(str(tmp / "canary"))),
                                                                     pickle.dumps({}))})),
                           "it names posix.remove, which is not a type a state file may hold"),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_state_file_that_is_not_whole_is_refused_naming_it_and_left_untouched(tmp_path, kind):
    corrupt, reason = CORRUPTIONS[kind]
    canary = tmp_path / "canary"
    canary.write_text("still here")
    path = valid_state_file(tmp_path)
    content = corrupt(path.read_bytes(), tmp_path)
    path.write_bytes(content)
    with pytest.raises(StateFileError) as refused:
        file_app(path)
    message = str(refused.value)
    assert message.startswith(f"state file {str(path)!r}: ")
    assert reason in message
    assert message.endswith("; it was left as it is (move it away to start afresh)")
    assert path.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["canary", "mock.state"]
    assert canary.read_text() == "still here"


def test_an_unreadable_state_file_is_an_error(tmp_path):
    path = tmp_path / "mock.state"
    path.mkdir()
    with pytest.raises(StateFileError) as refused:
        file_app(path)
    assert str(refused.value) == f"state file {str(path)!r}: is a directory, not a file"


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_save_leaves_the_old_file_whole_and_no_partial_file(tmp_path, monkeypatch, caplog, failing):
    path = tmp_path / "mock.state"
    app = file_app(path)
    client = app.test_client()
    auth = bearer_for(client)
    client.post(f"/organizations/{A}/products", json={"name": "P", "code": "p"}, headers=auth)
    assert app.backend.state.file.flush()
    good = path.read_bytes()
    client.post(f"/organizations/{A}/products", json={"name": "Q", "code": "q"}, headers=auth)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if failing == "write":
        real = state_module.os.fdopen

        class HalfWritten:
            def __init__(self, handle, mode):
                self.inner = real(handle, mode)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.inner.close()

            def write(self, data):
                self.inner.write(data[: len(data) // 2])  # half of it reaches the disk, then it fails
                disk_full()

        monkeypatch.setattr(state_module.os, "fdopen", HalfWritten)
    else:
        monkeypatch.setattr(state_module.os, failing, disk_full)
    with caplog.at_level(logging.WARNING, logger="m3ter_mock"):
        assert not app.backend.state.file.flush()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["mock.state"]
    assert f"state file {str(path)!r} could not be saved (No space left on device); kept as it was" in caplog.text
    assert app.backend.state.file.dirty  # tried again later
    monkeypatch.undo()
    assert app.backend.state.file.flush()
    assert {p["code"] for p in read_state_file(path)[A].collections["products"].values()} == {"p", "q"}
    app.backend.state.close()


def test_a_state_file_changed_by_something_else_is_not_overwritten(tmp_path, caplog):
    path = valid_state_file(tmp_path)
    app = file_app(path)
    client = app.test_client()
    path.write_bytes(b"someone else's file")
    client.post(f"/organizations/{A}/products", json={"name": "Q", "code": "q"}, headers=bearer_for(client))
    with caplog.at_level(logging.ERROR, logger="m3ter_mock"):
        assert not app.backend.state.file.flush()
        app.backend.state.close()
    assert path.read_bytes() == b"someone else's file"
    assert (f"state file {str(path)!r} was changed by something else since this mock last read or wrote it; it is "
            f"not overwritten, and the mock's state is no longer saved") in caplog.text


def test_restoring_one_organization_drops_its_waiting_deliveries_only(mock):
    """A delivery waiting for its retry belongs to the state being replaced: the restored
    organization's goes (and no longer counts as waiting), the other's is retried."""
    mock.clock(freeze=True, at="2024-03-01T00:00:00Z")
    deliveries = mock.app.backend.deliveries
    deliveries.local_answer = lambda url, headers, body: 503
    deliveries.max_waiting = 1
    try:
        for org in (A, B):
            hook = mock.ok("post", org, "integrationdestinations/webhooks", {
                "name": "h", "description": "d", "url": "http://127.0.0.1:9/hook",
                "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "state-test-secret"}})
            rule = mock.ok("post", org, "notifications/configurations", {
                "name": "n", "code": "n", "description": "d", "alwaysFireEvent": True,
                "eventName": "configuration.compoundaggregation.created"})
            mock.ok("post", org, "integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                                        "destination": "Webhook", "destinationId": hook["id"]})
        mock.admin("post", "snapshots", 201, json={"name": "wired", "orgId": A})
        aggregation = {"name": "s", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"}
        for org in (A, B):
            mock.ok("post", org, "compoundaggregations", aggregation)
        mock.app.backend.run_due()
        assert [a["outcome"] for a in mock.admin("get", "deliveries", params={"orgId": A})["data"]] == ["retrying"]

        mock.admin("post", "snapshots/wired/restore")
        mock.clock(advanceSeconds=1)
        assert mock.admin("get", "deliveries", params={"orgId": A})["data"] == []
        assert [a["attempt"] for a in mock.admin("get", "deliveries", params={"orgId": B})["data"]] == [1, 2]
        # the dropped one no longer counts against the destination's queue: a new one is sent
        mock.ok("post", A, "compoundaggregations", aggregation)
        mock.app.backend.run_due()
        assert [(a["attempt"], a["outcome"]) for a in mock.admin("get", "deliveries", params={"orgId": A})["data"]] \
            == [(1, "retrying")]
    finally:
        deliveries.local_answer = None
        deliveries.max_waiting = MAX_WAITING


def test_a_lane_workers_discard_takes_due_items_waiting_in_a_lane_and_leaves_the_running_one():
    import threading

    from mockserver.backend.worker import LaneWorker
    from mockserver.domain.clock import Clock

    clock = Clock(frozen_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    started, b_ran, release, ran = threading.Event(), threading.Event(), threading.Event(), []

    def handle(item):
        ran.append(item)
        if item == ("a", 1):
            started.set()
            release.wait(30)
        if item == ("b", 1):
            b_ran.set()

    worker = LaneWorker(clock, "test", handle, lane_of=lambda item: item[0], max_lanes=2)
    worker.schedule(("a", 1), clock.now())
    assert started.wait(30)  # ("a", 1) runs and holds lane "a"
    worker.schedule(("a", 2), clock.now())
    worker.schedule(("b", 1), clock.now())
    worker.schedule(("a", 3), clock.now() + timedelta(hours=1))  # not due yet
    # "b" ran on the other runner, so both due items were handed to their lanes: ("a", 2)
    # waits in lane "a" behind the running one
    assert b_ran.wait(30)
    assert worker.wait_idle(0) is False
    gone = worker.discard(lambda item: item[0] == "a")
    assert sorted(gone) == [("a", 2), ("a", 3)]
    release.set()
    clock.advance(timedelta(hours=2))
    assert worker.wait_idle(30)
    assert ran == [("a", 1), ("b", 1)]
    worker.stop()
