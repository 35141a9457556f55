"""``m3ter-mock serve`` as a user runs it: a subprocess on a free loopback port, logging one
line per request, and never a secret."""

from __future__ import annotations

import base64
import subprocess
import sys

import httpx
import pytest

from tests.support.processes import free_port, serving_line, wait_until_listening
from tests.support.receiver import receiving

SECRET = "cli-webhook-secret-4c1d"
CLIENT_SECRET = "cli-client-secret-77aa"


@pytest.fixture
def served():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--client", f"cli:{CLIENT_SECRET}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        serving_line(process)  # the first log line says it is about to serve
        wait_until_listening(port)
        with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
            yield client, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_logs_requests_and_never_secrets(served):
    client, process = served
    basic = base64.b64encode(f"cli:{CLIENT_SECRET}".encode()).decode()
    token = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                        headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    org = "/organizations/cli-org"
    with receiving() as receiver:
        hook = client.post(f"{org}/integrationdestinations/webhooks", headers=auth, json={
            "name": "h", "description": "d", "url": receiver.url,
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": SECRET}}).json()
        assert hook["credentials"]["secret"] == SECRET
        note = client.post(f"{org}/notifications/configurations", headers=auth, json={
            "name": "n", "code": "n", "description": "d", "alwaysFireEvent": True,
            "eventName": "configuration.compoundaggregation.created"}).json()
        client.post(f"{org}/integrationconfigs", headers=auth, json={
            "entityType": "Notification", "entityId": note["id"], "destination": "Webhook", "destinationId": hook["id"]})
        client.post(f"{org}/compoundaggregations", headers=auth, json={
            "name": "s", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"})
        assert receiver.wait_for(1)
        client.get(f"{org}/integrationdestinations/webhooks/{hook['id']}", headers=auth)
        client.get(f"{org}/integrationdestinations/webhooks/{hook['id']}/nope", headers=auth)
        denied = client.get(f"{org}/compoundaggregations", headers={"Authorization": "Bearer forged"})
        assert denied.status_code == 401
    process.terminate()
    log, _ = process.communicate(timeout=10)
    assert f"POST {org}/integrationdestinations/webhooks 200" in log
    assert f"GET {org}/compoundaggregations 401" in log
    assert SECRET not in log and CLIENT_SECRET not in log and token not in log


@pytest.mark.parametrize("argv, complaint", [
    (["--port", "70000"], "--port: 70000 is out of range; a port is 1-65535"),
    (["--port", "0"], "--port: 0 is out of range; a port is 1-65535"),
    (["--port", "-1"], "--port: -1 is out of range; a port is 1-65535"),
    (["--port", "http"], "--port: 'http' is not a port number"),
    (["--max-body-bytes", "0"], "--max-body-bytes: 0 must be at least 1"),
    (["--webhook-allow", "10.0.0.0/33"], "webhook allow list: '10.0.0.0/33' is not a HOST or CIDR"),
])
def test_serve_refuses_bad_settings_with_one_line_and_exit_2(argv, complaint):
    finished = subprocess.run([sys.executable, "-m", "mockserver", "serve", *argv],
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert complaint in finished.stderr
    assert "Traceback" not in finished.stderr
    assert "listen" not in finished.stderr.lower()


def test_serve_accepts_the_highest_port():
    # 65535 is inside the range: the parser must not refuse it (it may be taken; the
    # process is stopped as soon as it has logged where it serves).
    process = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", "65535"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "http://127.0.0.1:65535" in serving_line(process)
    finally:
        process.terminate()
        process.wait(timeout=10)
