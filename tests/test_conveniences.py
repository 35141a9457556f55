"""The everyday conveniences of issue 12: ``m3ter-mock --version``, ``GET /_mock/health``,
CORS for browser clients (``--cors``), every serve flag from an ``M3TER_MOCK_*`` variable, and
JSON log lines (``--log-format json``). Expected values are the README's and pyproject's."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from mockserver import cli
from mockserver.app import create_app
from mockserver.domain.cors import CorsPolicy, parse_origin
from mockserver.logs import JsonFormatter
from tests.conftest import basic, bearer_for, make_settings
from tests.support import leaks
from tests.support.processes import free_port, serving_line, wait_until_listening
from tests.support.receiver import receiving

VERSION = "0.1.0"  # pyproject.toml
ADMIN_TOKEN = "conveniences-admin-secret-91c2"
ORG = "org-conveniences"
BASE = f"/organizations/{ORG}"
APP_ORIGIN = "http://localhost:3000"
OTHER_ORIGIN = "https://app.example.com:8443"


@pytest.fixture(scope="module")
def guarded_app():
    """An admin token and CORS for two origins."""
    return create_app(make_settings(admin_token=ADMIN_TOKEN, cors_origins=(APP_ORIGIN, OTHER_ORIGIN)))


@pytest.fixture
def guarded(guarded_app):
    guarded_app.backend.reset()
    return guarded_app.test_client()


ADMIN = {"X-m3ter-mock-admin-token": ADMIN_TOKEN}


# -- m3ter-mock --version ------------------------------------------------------------------

def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"m3ter-mock {VERSION}\n"


# -- GET /_mock/health ---------------------------------------------------------------------

def test_health_answers_without_the_admin_token_and_says_nothing_else(guarded):
    response = guarded.get("/_mock/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": VERSION, "idle": True, "nextDueAt": None}
    assert ADMIN_TOKEN not in response.text
    # The rest of the admin API still needs the token.
    assert guarded.get("/_mock/clock").status_code == 401
    assert guarded.get("/_mock/clock", headers=ADMIN).status_code == 200


def test_health_on_the_default_mock(client):
    assert client.get("/_mock/health").json() == {"status": "ok", "version": VERSION, "idle": True,
                                                  "nextDueAt": None}


def linked_receiver(client, auth, url):
    hook = client.post(f"{BASE}/integrationdestinations/webhooks", headers=auth, json={
        "name": "Receiver", "description": "d", "url": url,
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "hook-secret-value-k4"}}).json()
    rule = client.post(f"{BASE}/notifications/configurations", headers=auth, json={
        "name": "Rule", "code": "rule", "description": "d", "eventName": "configuration.commitment.updated",
        "alwaysFireEvent": True}).json()
    config = client.post(f"{BASE}/integrationconfigs", headers=auth, json={
        "entityType": "Notification", "entityId": rule["id"], "destination": "Webhook", "destinationId": hook["id"]})
    assert config.status_code == 200, config.text


EVENT = {"orgId": ORG, "eventName": "configuration.commitment.updated", "newDto": {"id": "c1"}}


def test_health_is_not_idle_while_a_delivery_runs(guarded):
    auth = bearer_for(guarded)
    hold = threading.Event()
    with receiving(hold=hold) as receiver:
        linked_receiver(guarded, auth, receiver.url)
        assert guarded.post("/_mock/events", headers=ADMIN, json=EVENT).status_code == 200
        try:
            assert receiver.wait_for(1)  # the delivery is in flight: the receiver holds it
            assert guarded.get("/_mock/health").json()["idle"] is False
        finally:
            hold.set()
        guarded.get(f"/_mock/deliveries?orgId={ORG}&wait=true", headers=ADMIN)
        assert guarded.get("/_mock/health").json()["idle"] is True


def test_health_says_when_the_next_retry_falls_due_on_the_mock_clock(guarded):
    guarded.post("/_mock/clock", headers=ADMIN, json={"freeze": True, "at": "2030-01-01T00:00:00Z"})
    auth = bearer_for(guarded)
    with receiving([500]) as receiver:
        linked_receiver(guarded, auth, receiver.url)
        assert guarded.post("/_mock/events?wait=true", headers=ADMIN, json=EVENT).status_code == 200
        # The first attempt failed; the retry comes 1 s later (README: 1 s, doubling).
        assert guarded.get("/_mock/health").json() == {"status": "ok", "version": VERSION, "idle": True,
                                                       "nextDueAt": "2030-01-01T00:00:01.000Z"}
        guarded.post("/_mock/clock", headers=ADMIN, json={"advanceSeconds": 1})
        assert len(receiver.requests) == 2
        assert guarded.get("/_mock/health").json()["nextDueAt"] is None


# -- CORS ------------------------------------------------------------------------------------

def preflight(client, path, origin, method="POST", headers="authorization, content-type, x-stainless-lang"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


def test_a_preflight_from_an_allowed_origin_lists_the_paths_methods_and_the_headers(guarded):
    response = preflight(guarded, f"{BASE}/compoundaggregations", APP_ORIGIN)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-methods"] == "GET, OPTIONS, POST"
    allowed = [h.strip() for h in response.headers["access-control-allow-headers"].split(",")]
    assert {"authorization", "content-type", "x-stainless-lang"} <= set(allowed)
    assert "Origin" in response.headers["vary"]
    one = preflight(guarded, f"{BASE}/compoundaggregations/some-id", OTHER_ORIGIN, method="PUT")
    assert one.headers["access-control-allow-origin"] == OTHER_ORIGIN
    assert one.headers["access-control-allow-methods"] == "DELETE, GET, OPTIONS, PUT"
    token = preflight(guarded, "/oauth/token", APP_ORIGIN)
    assert token.status_code == 204 and token.headers["access-control-allow-origin"] == APP_ORIGIN


def test_answers_to_an_allowed_origin_carry_the_header_refusals_too(guarded):
    auth = bearer_for(guarded)
    ok = guarded.get(f"{BASE}/compoundaggregations", headers={**auth, "Origin": APP_ORIGIN})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "Retry-After" in ok.headers["access-control-expose-headers"]
    for response in (guarded.get(f"{BASE}/compoundaggregations", headers={"Origin": APP_ORIGIN}),  # 401
                     guarded.get("/no/such/path", headers={"Origin": APP_ORIGIN}),  # 404
                     guarded.delete(f"{BASE}/compoundaggregations", headers={**auth, "Origin": APP_ORIGIN})):  # 405
        assert response.status_code in (401, 404, 405)
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    token = guarded.post("/oauth/token", json={"grant_type": "client_credentials"},
                         headers={**basic("test-client", "test-secret"), "Origin": APP_ORIGIN})
    assert token.status_code == 200 and token.headers["access-control-allow-origin"] == APP_ORIGIN


def test_an_origin_not_listed_gets_no_cors_headers(guarded):
    auth = bearer_for(guarded)
    for origin in ("https://evil.example", "http://localhost:3001", "https://localhost:3000"):
        answer = preflight(guarded, f"{BASE}/compoundaggregations", origin)
        assert not [h for h in answer.headers if h.startswith("access-control-")], origin
        plain = guarded.get(f"{BASE}/compoundaggregations", headers={**auth, "Origin": origin})
        assert plain.status_code == 200
        assert "access-control-allow-origin" not in plain.headers


def test_cors_never_applies_to_the_admin_api(guarded):
    for path in ("/_mock/clock", "/_mock/health", "/_mock/reset"):
        answer = preflight(guarded, path, APP_ORIGIN)
        assert not [h for h in answer.headers if h.startswith("access-control-")], path
    clock = guarded.get("/_mock/clock", headers={**ADMIN, "Origin": APP_ORIGIN})
    assert clock.status_code == 403 and "access-control-allow-origin" not in clock.headers


def test_a_web_page_of_another_origin_cannot_drive_an_open_mocks_admin_api(client, auth):
    """A cross-site form POST needs no preflight, so CORS cannot stop it: the Origin header does."""
    created = client.post(f"{BASE}/compoundaggregations", headers=auth, json={
        "name": "kept", "code": "kept", "calculation": "1", "quantityPerUnit": 1, "rounding": "NONE", "unit": "GiB"})
    assert created.status_code == 200, created.text
    for origin in ("https://attacker.example", "null", "http://testserver.attacker.example"):
        refused = client.post("/_mock/reset", content=b"x", headers={"Origin": origin, "Content-Type": "text/plain"})
        assert refused.status_code == 403, origin
        assert refused.json() == {"message": "the admin API does not answer requests from another origin's web page"}
    assert client.get(f"{BASE}/compoundaggregations/{created.json()['id']}", headers=auth).status_code == 200
    # the mock's own pages (same origin), tools that send no Origin, and download URLs still work
    assert client.get("/_mock/clock", headers={"Origin": "http://testserver"}).status_code == 200
    assert client.get("/_mock/clock").status_code == 200
    assert client.get("/_mock/health", headers={"Origin": "https://attacker.example"}).status_code == 200


def test_cors_is_off_by_default(client, auth):
    answer = preflight(client, f"{BASE}/compoundaggregations", APP_ORIGIN)
    assert answer.status_code == 204
    assert not [h for h in answer.headers if h.startswith("access-control-")]
    plain = client.get(f"{BASE}/compoundaggregations", headers={**auth, "Origin": APP_ORIGIN})
    assert "access-control-allow-origin" not in plain.headers


@pytest.fixture(scope="module")
def any_origin():
    return create_app(make_settings(cors_origins=("*",))).test_client()


def test_a_star_lets_every_origin_read_and_answers_star(any_origin):
    auth = bearer_for(any_origin)
    answer = preflight(any_origin, f"{BASE}/compoundaggregations", "https://anything.example", method="GET")
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-allow-methods"] == "GET, OPTIONS, POST"
    plain = any_origin.get(f"{BASE}/compoundaggregations", headers={**auth, "Origin": "null"})
    assert plain.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in plain.headers


@pytest.mark.parametrize("given, origin", [
    ("http://localhost:3000", "http://localhost:3000"),
    ("HTTP://LocalHost:3000/", "http://localhost:3000"),
    ("http://example.com:80", "http://example.com"),
    ("https://example.com:443", "https://example.com"),
    ("https://example.com:8443", "https://example.com:8443"),
    ("http://[::1]:8080", "http://[::1]:8080"),
    ("*", "*"),
])
def test_an_origin_is_compared_as_a_browser_sends_it(given, origin):
    assert parse_origin(given) == origin
    assert CorsPolicy.from_values([given]).allow_origin(origin) == origin


@pytest.mark.parametrize("given", ["localhost:3000", "ftp://example.com", "http://example.com/app",
                                   "http://example.com?x=1", "http://user@example.com", "http://example.com:0",
                                   "http://example.com:70000", "http://", ""])
def test_anything_else_is_not_an_origin(given):
    with pytest.raises(ValueError, match="is not an origin"):
        parse_origin(given)


# -- every serve flag from an M3TER_MOCK_* variable -----------------------------------------

@pytest.fixture
def served_args(monkeypatch):
    """``cli.main([...])`` with no M3TER_MOCK_* variable but those a test sets; returns the
    arguments the mock would be served with (nothing is served)."""
    for name in list(os.environ):
        if name.startswith("M3TER_MOCK_"):
            monkeypatch.delenv(name)
    captured = []
    monkeypatch.setattr(cli, "serve_forever", lambda args: captured.append(vars(args)) or 0)

    def run(argv, environ=None):
        with monkeypatch.context() as patch:
            for name, value in (environ or {}).items():
                patch.setenv(name, value)
            status = cli.main(["serve", *argv])
        assert status == 0
        return captured.pop()

    return run


EVERY_FLAG = [  # the README's serve flags, each with its variable
    ("M3TER_MOCK_HOST", "0.0.0.0", ["--host", "0.0.0.0"]),
    ("M3TER_MOCK_PORT", "4011", ["--port", "4011"]),
    ("M3TER_MOCK_CLIENTS", "ci:ci-pass ro:ro-pass:org-a,org-b", ["--client", "ci:ci-pass", "--client",
                                                                  "ro:ro-pass:org-a,org-b"]),
    ("M3TER_MOCK_QUIET", "true", ["--quiet"]),
    ("M3TER_MOCK_DELIVERY_ATTEMPTS", "3", ["--delivery-attempts", "3"]),
    ("M3TER_MOCK_DELIVERY_BACKOFF", "0.5", ["--delivery-backoff", "0.5"]),
    ("M3TER_MOCK_EXPORT_DIR", "/tmp/exports", ["--export-dir", "/tmp/exports"]),
    ("M3TER_MOCK_ADMIN_TOKEN", "env-admin-secret", ["--admin-token", "env-admin-secret"]),
    ("M3TER_MOCK_WEBHOOK_ALLOW", "10.0.0.0/8, hooks.example", ["--webhook-allow", "10.0.0.0/8",
                                                                "--webhook-allow", "hooks.example"]),
    ("M3TER_MOCK_MAX_BODY_BYTES", "2048", ["--max-body-bytes", "2048"]),
    ("M3TER_MOCK_RETAIN_EVENTS", "5", ["--retain-events", "5"]),
    ("M3TER_MOCK_RETAIN_DELIVERIES", "6", ["--retain-deliveries", "6"]),
    ("M3TER_MOCK_RETAIN_EXPORT_FILES", "7", ["--retain-export-files", "7"]),
    ("M3TER_MOCK_CORS", "http://localhost:3000 https://app.example", ["--cors", "http://localhost:3000",
                                                                       "--cors", "https://app.example"]),
    ("M3TER_MOCK_LOG_FORMAT", "json", ["--log-format", "json"]),
    ("M3TER_MOCK_LENIENT", "yes", ["--lenient"]),
]


@pytest.mark.parametrize("variable, value, flags", EVERY_FLAG, ids=[row[0] for row in EVERY_FLAG])
def test_a_variable_sets_what_its_flag_sets(served_args, variable, value, flags):
    leaks.remember("env-admin-secret")
    from_flags = served_args(flags)
    assert from_flags != served_args([])  # the flag changes something
    assert served_args([], {variable: value}) == from_flags


@pytest.mark.parametrize("variable, value, flags, dest, expected", [
    ("M3TER_MOCK_PORT", "4011", ["--port", "4012"], "port", 4012),
    ("M3TER_MOCK_ADMIN_TOKEN", "env-admin-secret", ["--admin-token", "flag-admin-secret"], "admin_token",
     "flag-admin-secret"),
    ("M3TER_MOCK_QUIET", "no", ["--quiet"], "quiet", True),
    ("M3TER_MOCK_CLIENTS", "env:env-pass", ["--client", "flag:flag-pass"], "client", ["flag:flag-pass"]),
    ("M3TER_MOCK_CORS", "*", ["--cors", "http://localhost:3000"], "cors", ["http://localhost:3000"]),
    ("M3TER_MOCK_LOG_FORMAT", "json", ["--log-format", "text"], "log_format", "text"),
    # a flag given with its default value still wins
    ("M3TER_MOCK_RETAIN_EXPORT_FILES", "7", ["--retain-export-files", "100"], "retain_export_files", 100),
])
def test_the_flag_wins_over_its_variable(served_args, variable, value, flags, dest, expected):
    leaks.remember("env-admin-secret")
    leaks.remember("flag-admin-secret")
    assert served_args(flags, {variable: value})[dest] == expected


def test_an_empty_variable_counts_as_unset(served_args):
    assert served_args([], {"M3TER_MOCK_PORT": "", "M3TER_MOCK_ADMIN_TOKEN": " "}) == served_args([])


@pytest.mark.parametrize("variable, value, complaint", [
    ("M3TER_MOCK_PORT", "http", "m3ter-mock: M3TER_MOCK_PORT: 'http' is not a port number"),
    ("M3TER_MOCK_PORT", "70000", "m3ter-mock: M3TER_MOCK_PORT: 70000 is out of range; a port is 1-65535"),
    ("M3TER_MOCK_MAX_BODY_BYTES", "0", "m3ter-mock: M3TER_MOCK_MAX_BODY_BYTES: 0 must be at least 1"),
    ("M3TER_MOCK_DELIVERY_ATTEMPTS", "five", "m3ter-mock: M3TER_MOCK_DELIVERY_ATTEMPTS: 'five' is not"),
    ("M3TER_MOCK_QUIET", "maybe", "m3ter-mock: M3TER_MOCK_QUIET: 'maybe' is not a yes or no"),
    ("M3TER_MOCK_LOG_FORMAT", "xml", "m3ter-mock: M3TER_MOCK_LOG_FORMAT: 'xml' is not one of text, json"),
    ("M3TER_MOCK_CORS", "localhost:3000", "m3ter-mock: M3TER_MOCK_CORS: 'localhost:3000' is not an origin"),
    ("M3TER_MOCK_CLIENTS", "ci:ci-pass lonely", "m3ter-mock: M3TER_MOCK_CLIENTS: client 'lonely': expected ID:SECRET"),
])
def test_a_bad_value_is_refused_naming_its_variable(served_args, capsys, monkeypatch, variable, value, complaint):
    monkeypatch.setenv(variable, value)
    assert cli.main(["serve"]) == 2  # refused before anything is served
    err = capsys.readouterr().err
    assert err.startswith(complaint) and err.count("\n") == 1, err
    assert "ci-pass" not in err  # a client's secret is never echoed


def test_serve_help_names_the_variable_of_every_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = capsys.readouterr().out
    flags = set(re.findall(r"--[a-z][a-z-]*", text)) - {"--help"}
    assert {"--port", "--cors", "--log-format"} <= flags
    for flag in flags:
        variable = "M3TER_MOCK_CLIENTS" if flag == "--client" else "M3TER_MOCK_" + flag[2:].upper().replace("-", "_")
        assert variable in text, flag


# -- JSON log lines ----------------------------------------------------------------------------

def test_an_access_line_as_json_has_the_fields_of_the_text_line_and_no_secret(client, auth):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("m3ter_mock.access")
    access.addHandler(handler)
    try:
        client.get(f"{BASE}/compoundaggregations?pageSize=5&codes=secret-code", headers=auth)
        client.get(f"{BASE}/compoundaggregations", headers={"Authorization": "Bearer forged-token-value"})
    finally:
        access.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message", "method", "path", "status", "durationMs"}
    assert (first["method"], first["path"], first["status"]) == ("GET", f"{BASE}/compoundaggregations", 200)
    assert first["level"] == "INFO" and first["logger"] == "m3ter_mock.access"
    assert first["message"].startswith(f"GET {BASE}/compoundaggregations 200 ")
    assert isinstance(first["durationMs"], float) and first["time"].endswith("Z")
    assert second["status"] == 401
    text = stream.getvalue()
    assert "secret-code" not in text and "pageSize" not in text and "forged-token-value" not in text
    assert auth["Authorization"].split()[1] not in text


def test_a_traceback_stays_on_one_json_line():
    try:
        raise RuntimeError("first line\nsecond line")
    except RuntimeError:
        record = logging.getLogger("m3ter_mock").makeRecord(
            "m3ter_mock", logging.ERROR, __file__, 1, "worker failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "worker failed" and "RuntimeError: first line\nsecond line" in entry["exception"]


# -- all of it, served as users run it ---------------------------------------------------------

ENV_TOKEN = "env-served-admin-secret-4410"
FLAG_CLIENT_SECRET = "flag-client-secret-0b7e"
ENV_CLIENT_SECRET = "env-client-secret-6d21"


def test_served_from_variables_with_flags_winning_and_json_lines():
    port, unused = free_port(), free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("M3TER_MOCK_")}
    environ.update({"M3TER_MOCK_PORT": str(unused), "M3TER_MOCK_ADMIN_TOKEN": ENV_TOKEN,
                    "M3TER_MOCK_LOG_FORMAT": "json", "M3TER_MOCK_CORS": APP_ORIGIN,
                    "M3TER_MOCK_CLIENTS": f"env-client:{ENV_CLIENT_SECRET}"})
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", str(port),
         "--client", f"flag-client:{FLAG_CLIENT_SECRET}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ,
        cwd=Path(__file__).resolve().parent.parent)
    try:
        line = serving_line(process)
        assert f"serving on http://127.0.0.1:{port} " in json.loads(line)["message"]  # the flag's port
        wait_until_listening(port, process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False) as http:
            assert http.get("/_mock/health").json() == {"status": "ok", "version": VERSION, "idle": True,
                                                        "nextDueAt": None}
            assert http.get("/_mock/clock").status_code == 401
            assert http.get("/_mock/clock", headers={"Authorization": f"Bearer {ENV_TOKEN}"}).status_code == 200
            token = {"grant_type": "client_credentials"}
            assert http.post("/oauth/token", json=token,
                             headers=basic("flag-client", FLAG_CLIENT_SECRET)).status_code == 200
            assert http.post("/oauth/token", json=token,
                             headers=basic("env-client", ENV_CLIENT_SECRET)).status_code == 401
            answer = http.options(f"{BASE}/compoundaggregations", headers={
                "Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"})
            assert answer.headers["access-control-allow-origin"] == APP_ORIGIN
        with socket.socket() as probe:  # nothing on the variable's port
            assert probe.connect_ex(("127.0.0.1", unused)) != 0
    finally:
        process.terminate()
        log, _ = process.communicate(timeout=10)
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is JSON
    access = [e for e in entries if e["logger"] == "m3ter_mock.access"]
    assert {"method": "GET", "path": "/_mock/health", "status": 200} in [
        {k: e[k] for k in ("method", "path", "status")} for e in access]
    assert ENV_TOKEN not in log and FLAG_CLIENT_SECRET not in log and ENV_CLIENT_SECRET not in log
