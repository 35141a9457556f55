"""State behaviour that mutation testing found unpinned: what a whole-store snapshot counts
(organizations, everything stored) and takes back (download URLs), the service's own refusals
of a snapshot name and of one snapshot too many, a bill job restored while RUNNING that goes
on from where it stood, the garbage collector left as it was, the state file's header (when it
was saved, how many organizations), the saver that writes by itself once the delay has passed,
what start-up and shutdown log about the file, the hidden temporary file a save renames, a
header line that never ends, a state file naming a function of the mock's own packages, a
directory that cannot be written to, a closed state file that takes no more changes, and the
save at interpreter exit (in a child process: it runs after every in-process test)."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mockserver.app import create_app
from mockserver.backend import state as state_module
from mockserver.backend.state import StateFileError, read_state_file
from mockserver.domain.errors import MockError
from tests.conftest import bearer_for, make_settings

ORG, OTHER = "org-pinned-state", "org-pinned-state-2"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def own_app():
    # An app of its own: a test below adds a change listener, which must not outlive the module.
    return create_app(make_settings())


class Mock:
    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.auth = bearer_for(self.client)

    def ok(self, method, path, body=None, org=ORG, **query):
        kwargs = {"headers": self.auth, "params": query}
        if body is not None:
            kwargs["json"] = body
        response = getattr(self.client, method)(f"/organizations/{org}{path}", **kwargs)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        return response.json()

    def billing_world(self, accounts: int) -> None:
        """A monthly plan with a standing charge of 10 for ``accounts`` accounts."""
        product = self.ok("post", "/products", {"name": "Storage", "code": "storage"})
        template = self.ok("post", "/plantemplates", {"name": "Standard", "productId": product["id"],
                                                      "billFrequency": "MONTHLY", "currency": "USD",
                                                      "standingCharge": 10})
        plan = self.ok("post", "/plans", {"name": "Standard", "code": "standard", "planTemplateId": template["id"]})
        for n in range(accounts):
            account = self.ok("post", "/accounts", {"name": f"A{n}", "code": f"a{n:02d}",
                                                    "emailAddress": f"a{n}@example.com"})
            self.ok("post", "/accountplans", {"accountId": account["id"], "planId": plan["id"],
                                              "startDate": "2024-01-01T00:00:00Z"})


def file_app(path, **settings):
    """An app saving to ``path``; unless a test says otherwise, only when told to (flush,
    close), so that no background save races the test."""
    settings.setdefault("state_save_delay_seconds", 3600)
    return create_app(make_settings(state_file=str(path), **settings))


def header_of(path: Path) -> dict:
    data = path.read_bytes()
    assert data.startswith(state_module.MAGIC)
    return json.loads(data[len(state_module.MAGIC):data.index(b"\n", len(state_module.MAGIC))])


@pytest.fixture
def fresh(own_app):
    """The module's app, emptied, with no snapshot kept."""
    own_app.backend.reset()
    for kept in own_app.backend.state.list():
        own_app.backend.state.delete(kept["name"])
    return Mock(own_app)


def admin(mock: Mock, method: str, path: str, status: int, **kwargs) -> dict:
    response = getattr(mock.client, method)(f"/_mock/{path}", **kwargs)
    assert response.status_code == status, (path, response.status_code, response.text)
    return response.json()


# -- snapshots and restore ----------------------------------------------------------------------

def test_a_whole_store_snapshot_counts_organizations_and_everything_stored_and_takes_back_urls(fresh):
    fresh.app.backend.change_clock(freeze=True, at="2026-03-01T00:00:00Z")
    fresh.ok("post", "/products", {"name": "P", "code": "p"})
    fresh.ok("post", "/products", {"name": "Q", "code": "q"})
    fresh.ok("post", "/products", {"name": "R", "code": "r"}, org=OTHER)
    before = admin(fresh, "post", "snapshots", 201, json={"name": "before"})
    # The 3 products and their 3 created Events.
    assert before == {"name": "before", "scope": "store", "takenAt": "2026-03-01T00:00:00.000Z", "organizations": 2,
                      "items": 6, "measurements": 0}
    started = fresh.ok("post", "/dataexports/adhoc",
                       {"sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS"]})
    fresh.app.backend.change_clock(advance_seconds=5)
    url = fresh.ok("get", f"/dataexports/jobs/{started['jobId']}/getdownloadurl")["url"]
    assert fresh.client.get(urlsplit(url).path).status_code == 200
    # Also the export job, its file, and the download URL (kept outside every organization).
    after = fresh.app.backend.state.take("after", "")  # an empty orgId (from Python) is the whole store
    assert (after["scope"], after["organizations"], after["items"]) == ("store", 2, 9)
    admin(fresh, "post", "snapshots/before/restore", 200)
    assert fresh.client.get(urlsplit(url).path).status_code == 403
    # What a restore put back is snapshotted again as it was taken.
    again = admin(fresh, "post", "snapshots", 201, json={"name": "again"})
    assert (again["organizations"], again["items"]) == (2, 6)
    fresh.ok("post", "/products", {"name": "S", "code": "s"}, org=OTHER)
    admin(fresh, "post", "snapshots/again/restore", 200)
    assert [p["code"] for p in fresh.ok("get", "/products", org=OTHER)["data"]] == ["r"]


def test_a_whole_store_restore_queues_again_the_work_of_every_organization_whatever_their_order(fresh):
    fresh.app.backend.change_clock(freeze=True, at="2026-03-01T00:00:00Z")
    # A download URL first (kept outside every organization), then the organization emptied
    # and written again: the store now holds that space before the organization.
    started = fresh.ok("post", "/dataexports/adhoc",
                       {"sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS"]})
    fresh.app.backend.change_clock(advance_seconds=5)
    fresh.ok("get", f"/dataexports/jobs/{started['jobId']}/getdownloadurl")
    admin(fresh, "post", "reset", 200, params={"orgId": ORG})
    job = fresh.ok("post", "/billjobs", {"lastDateInBillingPeriod": "2026-02-28"})
    admin(fresh, "post", "snapshots", 201, json={"name": "pending"})
    fresh.app.backend.change_clock(advance_seconds=1)
    assert fresh.ok("get", f"/billjobs/{job['id']}")["status"] == "COMPLETE"
    admin(fresh, "post", "snapshots/pending/restore", 200)
    assert fresh.ok("get", f"/billjobs/{job['id']}")["status"] == "PENDING"
    fresh.app.backend.change_clock(advance_seconds=1)  # its second, counted from the restore
    assert fresh.ok("get", f"/billjobs/{job['id']}")["status"] == "COMPLETE"


def test_a_snapshot_name_and_the_snapshots_kept_are_refused_saying_why(fresh):
    # The API's validation answers a bad name first over HTTP; the service says the same in words.
    with pytest.raises(MockError) as refused:
        fresh.app.backend.state.take(".hidden")
    assert (refused.value.status, refused.value.message) == (
        400, "name: '.hidden' is not a snapshot name (1-64 letters, digits, '_', '-' or '.', not starting with '.')")
    for n in range(20):  # the default: 20 snapshots at most
        admin(fresh, "post", "snapshots", 201, json={"name": f"s{n}"})
    assert admin(fresh, "post", "snapshots", 409, json={"name": "one-more"}) == {
        "message": "name: 20 snapshots are kept already, the most there may be; delete one "
                   "(DELETE /_mock/snapshots/{name}) or reuse a name"}
    assert admin(fresh, "post", "snapshots", 201, json={"name": "s0", "orgId": ORG})["scope"] == "organization"


def test_a_bill_job_restored_while_running_goes_on_from_where_it_stood(fresh, own_app):
    mock = fresh
    own_app.backend.change_clock(freeze=True, at="2024-04-02T00:00:00Z")
    mock.billing_world(accounts=3)
    state = own_app.backend.state
    taken = []

    def snapshot_when_running(caller, kind, action, old, new):
        # The moment the job has listed its bills and billed none yet: RUNNING, 3 pending.
        if (not taken and caller.org_id == ORG and kind.key == "billjobs" and new is not None
                and new.get("status") == "RUNNING" and (old or {}).get("status") == "PENDING"):
            taken.append(state.take("running", ORG))

    own_app.backend.add_change_listener(snapshot_when_running)
    job = mock.ok("post", "/billjobs", {"lastDateInBillingPeriod": "2024-03-31"})
    own_app.backend.change_clock(advance_seconds=1)
    assert len(mock.ok("get", "/billjobs/" + job["id"])["billIds"]) == 3
    assert taken and taken[0]["items"] > 0

    assert taken[0]["takenAt"] == "2024-04-02T00:00:01.000Z"
    state.restore("running")  # the job as it stood: RUNNING, no bill made yet
    own_app.backend.run_due()  # due at once: it goes on without the clock moving
    done = mock.ok("get", "/billjobs/" + job["id"])
    assert (done["status"], done["pending"], len(done["billIds"])) == ("COMPLETE", 0, 3)
    assert len(mock.ok("get", "/bills")["data"]) == 3


def test_snapshots_restores_and_saves_leave_the_garbage_collector_on(tmp_path):
    app = file_app(tmp_path / "mock.state")
    mock = Mock(app)
    mock.ok("post", "/products", {"name": "P", "code": "p"})
    assert gc.isenabled()
    app.backend.state.take("gc")
    assert gc.isenabled()
    app.backend.state.restore("gc")
    assert gc.isenabled()
    assert app.backend.state.file.save()
    assert gc.isenabled()
    assert read_state_file(tmp_path / "mock.state")[ORG].collections["products"]
    assert gc.isenabled()
    app.backend.state.close()


# -- the state file ---------------------------------------------------------------------------

def test_the_header_says_when_the_file_was_saved_and_how_many_organizations_it_holds(tmp_path):
    path = tmp_path / "mock.state"
    app = file_app(path)
    app.backend.change_clock(freeze=True, at="2024-03-10T12:34:56.789Z")
    mock = Mock(app)
    mock.ok("post", "/products", {"name": "P", "code": "p"})
    mock.ok("post", "/products", {"name": "Q", "code": "q"}, org=OTHER)
    app.backend.state.close()
    header = header_of(path)
    payload = path.read_bytes().split(b"\n", 2)[2]
    assert header == {"format": 1, "bytes": len(payload), "sha256": header["sha256"],
                      "savedAt": "2024-03-10T12:34:56.789Z", "organizations": 2}
    assert len(header["sha256"]) == 64


def test_the_saver_writes_by_itself_once_the_delay_has_passed(tmp_path):
    path = tmp_path / "mock.state"
    app = file_app(path, state_save_delay_seconds=0.05)
    mock = Mock(app)
    saver = app.backend.state.file
    mock.ok("post", "/products", {"name": "P", "code": "p"})
    # No flush, no close: the background saver writes when the delay is over (a generous bound
    # for a busy machine; it returns as soon as the file is written).
    assert saver.wait_saved(timeout=30)
    assert [p["code"] for p in read_state_file(path)[ORG].collections["products"].values()] == ["p"]
    mock.ok("post", "/products", {"name": "Q", "code": "q"})  # a second change, saved the same way
    assert saver.wait_saved(timeout=30)
    assert [p["code"] for p in read_state_file(path)[ORG].collections["products"].values()] == ["p", "q"]
    app.backend.state.close()


def test_start_up_and_shutdown_say_what_became_of_the_state_file(tmp_path, caplog):
    path = tmp_path / "mock.state"
    with caplog.at_level(logging.INFO, logger="m3ter_mock"):
        first = file_app(path)
        mock = Mock(first)
        mock.ok("post", "/products", {"name": "P", "code": "p"})
        first.backend.state.close()
        file_app(path).backend.state.close()
    shown = repr(str(path))
    assert f"state file {shown}: not there yet; it is written after the first change" in caplog.messages
    assert f"state saved to {shown}" in caplog.messages
    # The product and its created Event, in one organization; no measurement.
    assert f"state file {shown}: loaded 1 organization(s), 2 item(s), 0 measurement(s)" in caplog.messages


def test_a_state_file_naming_a_function_of_the_mocks_own_packages_is_refused(tmp_path):
    path = tmp_path / "mock.state"
    payload = pickle.dumps({ORG: (pickle.dumps(state_module.write_state_file), pickle.dumps({}))})
    header = {"format": 1, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
              "savedAt": "2024-01-01T00:00:00.000Z", "organizations": 1}
    path.write_bytes(state_module.MAGIC + json.dumps(header).encode() + b"\n" + payload)
    with pytest.raises(StateFileError) as refused:
        read_state_file(path)
    assert ("it names mockserver.backend.state.write_state_file, which is not a type a state file may hold"
            in str(refused.value))


def test_a_state_file_in_a_directory_that_cannot_be_written_to_is_refused(app, tmp_path):
    path = tmp_path / "gone" / "mock.state"
    with pytest.raises(StateFileError) as refused:
        app.backend.state.open_file(path)
    assert str(refused.value) == f"state file {str(path)!r}: its directory cannot be written to"
    assert app.backend.state.file is None


def test_an_app_left_open_saves_its_state_when_python_exits(tmp_path):
    # The save at interpreter exit runs after every in-process test could look: a child
    # process builds an app, changes the store and exits without closing anything.
    path = tmp_path / "mock.state"
    script = textwrap.dedent(f"""
        import base64
        from mockserver.app import create_app
        from mockserver.settings import Settings
        app = create_app(Settings(state_file={str(path)!r}, state_save_delay_seconds=3600))
        client = app.test_client()
        basic = base64.b64encode(b"test-client:test-secret").decode()
        token = client.post("/oauth/token", json={{"grant_type": "client_credentials"}},
                            headers={{"Authorization": "Basic " + basic}}).json()["access_token"]
        created = client.post("/organizations/{ORG}/products", json={{"name": "P", "code": "at-exit"}},
                              headers={{"Authorization": "Bearer " + token}})
        assert created.status_code == 200, created.text
        """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert [p["code"] for p in read_state_file(path)[ORG].collections["products"].values()] == ["at-exit"]


def test_a_save_writes_a_hidden_temporary_file_beside_the_state_file_then_renames_it(tmp_path, monkeypatch):
    path = tmp_path / "mock.state"
    app = file_app(path)
    Mock(app).ok("post", "/products", {"name": "P", "code": "p"})
    renamed = []
    real = state_module.os.replace

    def replace(source, target):
        renamed.append((Path(source), Path(target), sorted(os.listdir(tmp_path))))
        real(source, target)

    monkeypatch.setattr(state_module.os, "replace", replace)
    assert app.backend.state.file.flush()
    [(source, target, present)] = renamed
    assert target == path and source.parent == tmp_path  # README: `.NAME.*.tmp` beside PATH
    assert source.name.startswith(".mock.state.") and source.name.endswith(".tmp")
    assert present == [source.name]
    assert os.listdir(tmp_path) == ["mock.state"]
    app.backend.state.close()


def test_a_header_line_that_never_ends_is_a_damaged_header(tmp_path):
    path = tmp_path / "mock.state"
    header = {"format": 1, "bytes": 0, "sha256": hashlib.sha256(b"").hexdigest(),
              "savedAt": "2024-01-01T00:00:00.000Z", "organizations": 0}
    path.write_bytes(state_module.MAGIC + json.dumps(header).encode() + b" ")  # no newline after it
    with pytest.raises(StateFileError) as refused:
        read_state_file(path)
    assert str(refused.value) == (f"state file {str(path)!r}: its header is damaged; it was left as it is (move it "
                                  f"away to start afresh)")


def test_once_closed_the_state_file_takes_no_more_changes_and_has_nothing_pending(tmp_path):
    path = tmp_path / "mock.state"
    app = file_app(path, state_save_delay_seconds=0)
    mock = Mock(app)
    mock.ok("post", "/products", {"name": "P", "code": "p"})
    app.backend.state.close()  # as at shutdown: saved
    mock.ok("post", "/products", {"name": "Q", "code": "q"})  # served after the close (a late request)
    assert not app.backend.state.file.dirty
    assert app.backend.state.file.wait_saved(timeout=5)  # nothing pending: at once
    assert [p["code"] for p in read_state_file(path)[ORG].collections["products"].values()] == ["p"]
