"""The pytest plugin (mockserver/pytest_plugin.py, README "Testing with the pytest plugin"),
run as its users run it: test files written into a fresh folder and run by pytest (pytester),
with the plugin loaded from the installed package's entry point."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Testing with the pytest plugin"


def readme_blocks() -> list[str]:
    """The python blocks of the README's plugin section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture(autouse=True, scope="module")
def modules_loaded_here_first(m3ter_mock_server):
    """pytester runs pytest in this process and afterwards unloads the modules the run
    imported; a module with a C part (PyYAML's loader) imported again then no longer matches
    it. So what the runs use is loaded here first, and stays: the app, the SDK's models."""
    with m3ter_mock_server.sdk("warm-up", max_retries=0) as client:
        client.products.list()
    m3ter_mock_server.backend.reset()


def outcomes(result) -> dict:
    return {key: value for key, value in result.parseoutcomes().items() if key in ("passed", "failed", "errors")}


# -- the README's example ---------------------------------------------------------------------

@pytest.mark.allows_server_errors  # its injected 503s, in this process's log
def test_the_readmes_example_test_file_passes(pytester):
    example = readme_blocks()[0]
    assert example.startswith("# test_products.py")
    pytester.makepyfile(test_products=example)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert outcomes(result) == {"passed": 6}, result.stdout.str()


def test_the_readmes_conftest_configures_the_session_mock(pytester):
    conftest = readme_blocks()[1]
    assert conftest.startswith("# conftest.py")
    pytester.makeconftest(conftest)
    pytester.makepyfile("""
        def test_settings(m3ter_mock_server):
            assert m3ter_mock_server.settings.retain_journal == 100_000
            assert m3ter_mock_server.backend.journal.retain == 100_000
            assert m3ter_mock_server.settings.delivery_attempts == 3
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 1}


def test_the_readmes_example_without_pytest_runs():
    [example] = [block for block in readme_blocks() if block.startswith("from mockserver.testing import")]
    run = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


# -- one server, an organization per test -------------------------------------------------------

def test_each_test_has_its_own_organization_on_one_shared_server(pytester):
    pytester.makepyfile("""
        import json

        import httpx

        SEEN = []

        def test_first(m3ter_mock, m3ter_org_id, m3ter_sdk):
            m3ter_sdk.products.create(name="Storage", code="storage")
            assert [p.code for p in m3ter_sdk.products.list()] == ["storage"]
            SEEN.append([m3ter_org_id, m3ter_mock.url, id(m3ter_mock.app)])

        def test_second(m3ter_mock, m3ter_org_id, m3ter_sdk):
            assert list(m3ter_sdk.products.list()) == []
            SEEN.append([m3ter_org_id, m3ter_mock.url, id(m3ter_mock.app)])
            # The first test's organization was emptied after it.
            first_org = SEEN[0][0]
            with m3ter_mock.server.sdk(first_org) as first:
                SEEN.append([p.code for p in first.products.list()])
            token = httpx.post(m3ter_mock.url + "/oauth/token", json={"grant_type": "client_credentials"},
                               auth=(m3ter_mock.client_id, m3ter_mock.client_secret)).json()["access_token"]
            answer = httpx.get(m3ter_mock.api_url + "/products", headers={"Authorization": "Bearer " + token})
            SEEN.append(answer.json())
            SEEN.append(httpx.get(m3ter_mock.api_url + "/products", headers=m3ter_mock.headers()).status_code)
            with open("seen.json", "w") as out:
                json.dump(SEEN, out)
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 2}
    (first_org, first_url, first_app), (second_org, second_url, second_app), left, listed, status = json.loads(
        (pytester.path / "seen.json").read_text())
    assert first_org != second_org
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first_org)
    assert first_url == second_url and re.fullmatch(r"http://127\.0\.0\.1:\d+", first_url)
    assert first_app == second_app
    assert left == []
    assert listed == {"data": []} and status == 200


def test_the_suite_itself_runs_on_the_plugins_server(app, live_app, live_url, m3ter_mock_server):
    assert app is live_app is m3ter_mock_server.app
    assert live_url == m3ter_mock_server.url


# -- the controls -----------------------------------------------------------------------------

def test_the_clock_controller_moves_the_clock_and_is_put_back(pytester):
    pytester.makepyfile("""
        import datetime

        UTC = datetime.timezone.utc

        def test_moves(m3ter_clock, m3ter_sdk):
            assert m3ter_clock.freeze("2030-01-01T00:00:00Z") == datetime.datetime(2030, 1, 1, tzinfo=UTC)
            assert m3ter_clock.frozen
            assert m3ter_clock.advance(90, hours=1) == datetime.datetime(2030, 1, 1, 1, 1, 30, tzinfo=UTC)
            assert m3ter_sdk.products.create(name="S", code="s").dt_created == datetime.datetime(
                2030, 1, 1, 1, 1, 30, tzinfo=UTC)
            assert m3ter_clock.advance_to(datetime.datetime(2030, 2, 1)) == datetime.datetime(2030, 2, 1, tzinfo=UTC)
            assert m3ter_clock.now == datetime.datetime(2030, 2, 1, tzinfo=UTC)
            m3ter_clock.unfreeze()
            assert not m3ter_clock.frozen and m3ter_clock.now >= datetime.datetime(2030, 2, 1, tzinfo=UTC)

        def test_back_on_real_time(m3ter_clock):
            assert not m3ter_clock.frozen
            assert m3ter_clock.now < datetime.datetime(2030, 1, 1, tzinfo=UTC)

        def test_it_only_moves_forward(m3ter_clock):
            import pytest
            from mockserver.domain.errors import MockError

            m3ter_clock.freeze("2030-01-01T00:00:00Z")
            with pytest.raises(MockError, match="only moves forward"):
                m3ter_clock.advance_to("2029-12-31T00:00:00Z")
            with pytest.raises(ValueError, match="only moves forward"):
                m3ter_clock.advance(-1)
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 3}


def test_a_clock_frozen_before_the_test_is_frozen_there_again_after_it(pytester):
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(scope="session", autouse=True)
        def frozen(m3ter_mock_server):
            m3ter_mock_server.clock.freeze("2024-06-01T00:00:00Z")
    """)
    pytester.makepyfile("""
        import datetime

        def test_moves(m3ter_clock):
            m3ter_clock.advance(days=2)

        def test_sees_it_where_it_was(m3ter_clock):
            assert m3ter_clock.frozen
            assert m3ter_clock.now == datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone.utc)
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 2}


def test_run_due_lets_queued_work_finish(pytester):
    pytester.makepyfile("""
        def test_export(m3ter_sdk, m3ter_clock):
            m3ter_sdk.products.create(name="S", code="s")
            started = m3ter_sdk.data_exports.create_adhoc(source_type="OPERATIONAL",
                                                          operational_data_types=["PRODUCTS"])
            m3ter_clock.run_due()
            assert m3ter_sdk.data_exports.jobs.retrieve(started.job_id).status == "SUCCEEDED"
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 1}


def test_the_journal_holds_this_tests_organizations_calls_only(pytester):
    pytester.makepyfile("""
        import httpx
        import m3ter
        import pytest

        FIRST = {}

        def test_calls(m3ter_mock, m3ter_sdk, m3ter_journal):
            with m3ter_mock.server.sdk(m3ter_mock.server.new_org_id()) as elsewhere:
                elsewhere.products.list()  # another organization's call
            m3ter_sdk.products.create(name="Storage", code="storage")
            m3ter_sdk.products.list()
            with pytest.raises(m3ter.NotFoundError):
                m3ter_sdk.products.retrieve("no-such-product")
            assert m3ter_journal.operations() == ["PostProduct", "ListProducts", "GetProduct"]
            assert m3ter_journal.counts() == {"PostProduct": 1, "ListProducts": 1, "GetProduct": 1}
            assert m3ter_journal.count() == 3
            assert m3ter_journal.count("ListProducts") == 1
            assert m3ter_journal.count(status="4xx") == 1 and m3ter_journal.count(status=404) == 1
            assert m3ter_journal.count(method="post") == 1
            assert m3ter_journal.statuses() == [200, 200, 404]
            [created] = m3ter_journal.entries("PostProduct")
            assert (created["orgId"], created["request"]["body"]["code"]) == (m3ter_mock.org_id, "storage")
            assert created["request"]["headers"]["authorization"] == "Bearer [REDACTED]"
            assert m3ter_journal.clear() == 3
            assert m3ter_journal.entries() == []
            m3ter_sdk.products.list()
            assert m3ter_journal.operations() == ["ListProducts"]
            FIRST["org"] = m3ter_mock.org_id

        def test_after(m3ter_mock):
            # The first test's organization's entries were forgotten after it.
            answer = httpx.get(m3ter_mock.url + "/_mock/journal/count", params={"orgId": FIRST["org"]})
            assert answer.json() == {"count": 0}
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 2}


def test_snapshots_are_of_this_organization_and_deleted_after_the_test(pytester):
    pytester.makepyfile("""
        import httpx

        def test_take_and_restore(m3ter_mock, m3ter_sdk, m3ter_snapshots):
            m3ter_sdk.products.create(name="Storage", code="storage")
            taken = m3ter_snapshots.take("baseline")
            assert (taken["name"], taken["scope"], taken["orgId"], taken["organizations"]) == (
                "baseline", "organization", m3ter_mock.org_id, 1)
            m3ter_sdk.products.create(name="Compute", code="compute")
            with m3ter_mock.server.sdk(m3ter_mock.server.new_org_id()) as other:
                other.products.create(name="Other", code="other")
                m3ter_snapshots.restore("baseline")
                assert [p.code for p in m3ter_sdk.products.list()] == ["storage"]
                assert [p.code for p in other.products.list()] == ["other"]  # not this organization's
            assert [s["name"] for s in m3ter_snapshots.list()] == ["baseline"]
            m3ter_snapshots.take("second")
            assert m3ter_snapshots.delete("second")["name"] == "second"
            assert [s["name"] for s in m3ter_snapshots.list()] == ["baseline"]

        def test_gone_after(m3ter_mock, m3ter_snapshots):
            assert m3ter_snapshots.list() == []
            assert httpx.get(m3ter_mock.url + "/_mock/snapshots").json() == {"data": []}
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 2}


@pytest.mark.allows_server_errors  # the injected 503s, in this process's log
def test_fault_rules_fire_for_this_organization_only_and_are_deleted_after_the_test(pytester):
    pytester.makepyfile("""
        import httpx
        import m3ter
        import pytest

        def test_faults(m3ter_mock, m3ter_faults):
            rule = m3ter_faults.add("PostProduct", status=503, retry_after=2)
            assert {k: rule[k] for k in ("action", "operationId", "orgId", "status", "retryAfter")} == {
                "action": "status", "operationId": "PostProduct", "orgId": m3ter_mock.org_id,
                "status": 503, "retryAfter": 2}
            delay = m3ter_faults.add("ListProducts", delay_seconds=0.01, times=1)
            assert (delay["action"], delay["delaySeconds"], delay["times"]) == ("delay", 0.01, 1)
            # A rule for every organization, made through the admin API: deleted after the test too.
            httpx.post(m3ter_mock.url + "/_mock/faults", json={"operationId": "GetProduct", "action": "drop"})
            with m3ter_mock.sdk(max_retries=0) as client:
                with pytest.raises(m3ter.InternalServerError) as raised:
                    client.products.create(name="Storage", code="storage")
                assert raised.value.status_code == 503
            with m3ter_mock.server.sdk(m3ter_mock.server.new_org_id(), max_retries=0) as other:
                assert other.products.create(name="Storage", code="storage").code == "storage"
            assert [r["fired"] for r in m3ter_faults.list()] == [1, 0]
            assert m3ter_faults.get(rule["id"])["matched"] == 1
            assert m3ter_faults.delete(delay["id"])["id"] == delay["id"]
            assert [r["id"] for r in m3ter_faults.list()] == [rule["id"]]

        def test_no_rule_is_left(m3ter_mock, m3ter_sdk):
            assert httpx.get(m3ter_mock.url + "/_mock/faults").json() == {"data": []}
            assert m3ter_sdk.products.create(name="Storage", code="storage").code == "storage"

        def test_clear(m3ter_faults):
            m3ter_faults.add("PostProduct", status=429)
            m3ter_faults.add(action="drop", times=1)
            assert m3ter_faults.clear() == 2
            assert m3ter_faults.list() == []
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 3}


# -- options, switching off, the cost of loading ------------------------------------------------

def test_ini_options_validate_responses_and_guard_the_admin_api(pytester):
    pytester.makeini("""
        [pytest]
        m3ter_mock_validate_responses = true
        m3ter_mock_admin_token = plugin-admin-token
    """)
    pytester.makepyfile("""
        import httpx

        def test_options(m3ter_mock, m3ter_clock, m3ter_sdk):
            assert m3ter_mock.server.settings.validate_responses is True
            assert httpx.get(m3ter_mock.url + "/_mock/clock").status_code == 401
            headers = m3ter_mock.server.admin_headers
            assert headers == {"Authorization": "Bearer plugin-admin-token"}
            assert httpx.get(m3ter_mock.url + "/_mock/clock", headers=headers).status_code == 200
            m3ter_clock.freeze("2030-01-01T00:00:00Z")  # the fixtures need no token
            assert list(m3ter_sdk.products.list()) == []
    """)
    assert outcomes(pytester.runpytest("-p", "no:cacheprovider")) == {"passed": 1}


def test_without_the_sdk_the_sdk_fixture_fails_saying_so(pytester):
    pytester.makeconftest("""
        import sys
        import pytest

        @pytest.fixture(autouse=True)
        def no_sdk(monkeypatch):
            monkeypatch.setitem(sys.modules, "m3ter", None)  # as if it were not installed
    """)
    pytester.makepyfile("""
        def test_needs_it(m3ter_sdk):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert outcomes(result) == {"errors": 1}
    result.stdout.fnmatch_lines(["*the m3ter_sdk fixture: an SDK client needs the official m3ter SDK: "
                                 "pip install m3ter*"])


def test_no_m3ter_mock_switches_the_plugin_off(pytester):
    pytester.makepyfile("""
        def test_uses_it(m3ter_mock):
            pass

        def test_has_it(pytestconfig):
            assert not pytestconfig.pluginmanager.has_plugin("m3ter_mock")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:m3ter_mock")
    assert outcomes(result) == {"passed": 1, "errors": 1}
    result.stdout.fnmatch_lines(["*fixture 'm3ter_mock' not found*"])


def test_loading_the_plugin_imports_neither_the_web_stack_nor_the_sdk(pytester):
    pytester.makepyfile("""
        import sys

        def test_loaded_and_cheap(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("m3ter_mock")
            heavy = ["connexion", "flask", "starlette", "uvicorn", "httpx", "m3ter", "mockserver.app",
                     "mockserver.backend", "mockserver.testing"]
            assert [name for name in heavy if name in sys.modules] == []
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert outcomes(result) == {"passed": 1}, result.stdout.str()


def test_the_plugin_module_imports_nothing_heavy():
    code = ("import sys, mockserver.pytest_plugin; "
            "print([m for m in ('connexion', 'flask', 'uvicorn', 'httpx', 'm3ter', 'mockserver.app') "
            "if m in sys.modules])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
