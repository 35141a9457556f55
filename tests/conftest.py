from __future__ import annotations

import base64
import logging

import pytest

from mockserver.settings import Settings
from tests.support import leaks


class AccessLogRecorder(logging.Handler):
    """Every request line the mock logs during the run, to check that none was a 5xx."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


ACCESS_LOG = AccessLogRecorder()
# Every log record of the whole run (the mock's, Connexion's, uvicorn's, httpcore's...), at
# every level during the tests under tests/, checked for every form of a secret the tests
# gave the mock (tests/support/leaks.py).
EVERY_LOG = leaks.LeakWatch()


def pytest_configure(config):
    logger = logging.getLogger("m3ter_mock.access")
    logger.setLevel(logging.INFO)
    logger.addHandler(ACCESS_LOG)
    logging.getLogger().addHandler(EVERY_LOG)
    # The secrets the shared fixtures use.
    leaks.remember_client("test-client", "test-secret")
    leaks.remember_client("sdk-client", "sdk-secret")


def pytest_sessionfinish(session, exitstatus):
    if EVERY_LOG.leaks:
        print("\nA secret reached the log during the test run:", *EVERY_LOG.leaks[:5], sep="\n  ")
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def every_log_level():
    """During each test the root and ``m3ter_mock`` loggers pass DEBUG records on, so the
    secret guard sees every level (the contract suite in contracts/ keeps its own levels)."""
    root, mock = logging.getLogger(), logging.getLogger("m3ter_mock")
    levels = root.level, mock.level
    root.setLevel(logging.DEBUG)
    mock.setLevel(logging.DEBUG)
    yield
    root.setLevel(levels[0])
    mock.setLevel(levels[1])


@pytest.fixture(autouse=True)
def no_server_errors(request):
    """No request in the suite may get a 5xx (501 marks what is documented as not yet
    served), unless a test says it expects one."""
    start = len(ACCESS_LOG.lines)
    yield
    if request.node.get_closest_marker("allows_server_errors"):
        return
    failures = [line for line in ACCESS_LOG.lines[start:]
                if line.split()[2].startswith("5") and line.split()[2] != "501"]
    assert not failures, f"requests answered with a server error: {failures}"


def make_settings(**overrides) -> Settings:
    settings = Settings(validate_responses=True, **overrides)
    leaks.remember(settings.admin_token)
    for client in settings.clients:
        leaks.remember_client(client.client_id, client.secret)
    return settings


# The session's mock is the m3ter_mock pytest plugin's (mockserver/pytest_plugin.py), built
# with this project's settings; the fixtures below are the names this suite's tests use for it.

@pytest.fixture(scope="session")
def m3ter_mock_settings():
    return make_settings()


@pytest.fixture(scope="session")
def m3ter_mock_server(m3ter_mock_server):
    leaks.remember_client(m3ter_mock_server.client_id, m3ter_mock_server.client_secret)
    return m3ter_mock_server


@pytest.fixture
def app(m3ter_mock_server):
    """The session's mock (building one takes most of a second), for in-process calls: emptied
    and with a running clock before each test."""
    backend = m3ter_mock_server.backend
    backend.reset()
    backend.deliveries.local_answer = None  # a test seam one test may have left set
    return m3ter_mock_server.app


@pytest.fixture
def client(app):
    return app.test_client()


def basic(client_id: str, secret: str) -> dict:
    leaks.remember_client(client_id, secret)
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer_for(client, client_id="test-client", secret="test-secret") -> dict:
    response = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                           headers=basic(client_id, secret))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def auth(client):
    return bearer_for(client)


ORG = "e2e-org-0001"


@pytest.fixture
def live_app(m3ter_mock_server):
    """The same app as ``app``, served over HTTP at ``live_url``; not emptied by itself (the
    tests that use it reset it first), but without the test seam an in-process test may have
    left set (deliveries answered without being sent)."""
    m3ter_mock_server.backend.deliveries.local_answer = None
    return m3ter_mock_server.app


@pytest.fixture(scope="session")
def live_url(m3ter_mock_server):
    return m3ter_mock_server.url


@pytest.fixture
def sdk(live_url, live_app, monkeypatch):
    """The official m3ter SDK, configured only by its environment variables, on organization
    ``ORG`` of the emptied session mock."""
    import m3ter

    live_app.backend.reset()
    monkeypatch.setenv("M3TER_BASE_URL", live_url)
    monkeypatch.setenv("M3TER_API_KEY", "sdk-client")
    monkeypatch.setenv("M3TER_API_SECRET", "sdk-secret")
    monkeypatch.setenv("M3TER_ORG_ID", ORG)
    with m3ter.M3ter() as client:
        yield client
