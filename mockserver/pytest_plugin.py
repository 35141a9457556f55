"""pytest fixtures for an in-process m3ter mock (README: "Testing with the pytest plugin").

pytest loads this module in every run wherever m3ter-mock is installed (the ``pytest11`` entry
point ``m3ter_mock``); ``-p no:m3ter_mock`` turns it off. Loading it imports nothing but pytest:
the app, the web stack and the m3ter SDK are imported by the fixtures, when a test first asks
for one. Every name it adds starts with ``m3ter_``, so it cannot shadow a project's fixtures.

One mock serves the whole session (``m3ter_mock_server``: building one takes about a second);
each test gets an organization of its own (``m3ter_mock``), so tests do not see each other's
data, and after the test what it changed of the shared server is put back (see
``mockserver.testing.MockOrganization.close``).
"""

from __future__ import annotations

import pytest

VALIDATE_INI = "m3ter_mock_validate_responses"
ADMIN_TOKEN_INI = "m3ter_mock_admin_token"


def pytest_addoption(parser):
    parser.addini(VALIDATE_INI, type="bool", default=False,
                  help="m3ter-mock: check every answer of the session mock against the spec (slower)")
    parser.addini(ADMIN_TOKEN_INI, default="",
                  help="m3ter-mock: the session mock's admin token (every /_mock call then needs it)")


@pytest.fixture(scope="session")
def m3ter_mock_settings(pytestconfig):
    """The ``mockserver.settings.Settings`` the session mock is built with; override this
    fixture (session-scoped) in a conftest.py to configure it otherwise."""
    from mockserver.settings import Settings

    return Settings(validate_responses=pytestconfig.getini(VALIDATE_INI),
                    admin_token=pytestconfig.getini(ADMIN_TOKEN_INI) or None)


@pytest.fixture(scope="session")
def m3ter_mock_server(m3ter_mock_settings):
    """The session's mock, served on a free 127.0.0.1 port: ``url``, ``app``, ``backend``,
    ``client_id``/``client_secret`` (they get a token), ``admin_headers``."""
    from mockserver.testing import MockServer

    with MockServer(m3ter_mock_settings) as server:
        yield server


@pytest.fixture
def m3ter_mock(m3ter_mock_server):
    """This test's organization on the session mock (``mockserver.testing.MockOrganization``):
    ``org_id``, ``url``, ``api_url``, ``client_id``/``client_secret``, ``headers()``,
    ``sdk(**options)``, ``backend``, and ``clock``, ``journal``, ``snapshots``, ``faults``."""
    with m3ter_mock_server.organization() as organization:
        yield organization


@pytest.fixture
def m3ter_org_id(m3ter_mock) -> str:
    """This test's organization id (a fresh UUID)."""
    return m3ter_mock.org_id


@pytest.fixture
def m3ter_sdk(m3ter_mock):
    """The official m3ter SDK (``m3ter.M3ter``) bound to the session mock and this test's
    organization; the test fails with a clear message when ``m3ter`` is not installed."""
    try:
        client = m3ter_mock.sdk()
    except ModuleNotFoundError as missing:
        pytest.fail(f"the m3ter_sdk fixture: {missing}", pytrace=False)
    with client:
        yield client


@pytest.fixture
def m3ter_clock(m3ter_mock):
    """The mock's clock: ``freeze(at)``, ``advance(seconds, hours=...)``, ``advance_to(at)``,
    ``run_due()``, ``unfreeze()``, ``now``, ``frozen``; put back after the test."""
    return m3ter_mock.clock


@pytest.fixture
def m3ter_journal(m3ter_mock):
    """This test's organization's requests: ``entries(operation_id, status=, method=)``,
    ``count(...)``, ``operations()``, ``counts()``, ``statuses(operation_id)``, ``clear()``."""
    return m3ter_mock.journal


@pytest.fixture
def m3ter_snapshots(m3ter_mock):
    """Snapshots of this test's organization: ``take(name)``, ``restore(name)``, ``list()``,
    ``delete(name)``; those taken are deleted after the test."""
    return m3ter_mock.snapshots


@pytest.fixture
def m3ter_faults(m3ter_mock):
    """Fault rules for this test's organization: ``add(operation_id, status=503, times=1)``,
    ``list()``, ``get(id)``, ``delete(id)``, ``clear()``; deleted after the test."""
    return m3ter_mock.faults
