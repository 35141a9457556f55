"""``m3ter-mock serve`` and its admin token, as a user runs it: in strict mode (``--client``)
a token is generated and printed once on stdout, and ``/_mock`` needs it; a token given by
the environment is required and never printed."""

from __future__ import annotations

import base64
import os
import re
import selectors
import subprocess
import sys
import tempfile

import httpx

from tests.support.processes import free_port, wait_until_listening

CLIENT_SECRET = "admin-cli-client-secret-3b9d"
GIVEN_TOKEN = "given-admin-secret-token-81c2"
TOKEN_LINE = re.compile(r"^m3ter-mock: admin token for /_mock .*: (\S+)$")


def serve(*arguments: str, env: dict | None = None):
    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", str(port), *arguments],
                               stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, **(env or {})})
    return process, log, port


def first_line(process, timeout: float = 60) -> str:
    """The first line on stdout, or "" if none comes (so a mock that prints nothing fails
    the test instead of hanging it)."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        return process.stdout.readline().strip() if selector.select(timeout) else ""


def stop(process, log) -> tuple[str, str]:
    process.terminate()
    out, _ = process.communicate(timeout=10)
    log.seek(0)
    return out, log.read()


def test_strict_mode_generates_a_token_prints_it_once_and_requires_it():
    process, log, port = serve("--client", f"cli-admin:{CLIENT_SECRET}",
                               env={"M3TER_MOCK_ADMIN_TOKEN": ""})
    first = token = ""
    try:
        first = first_line(process)
        match = TOKEN_LINE.match(first)
        assert match, first
        token = match.group(1)
        assert len(token) >= 24
        wait_until_listening(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False) as client:
            assert client.post("/_mock/reset").status_code == 401
            assert client.get("/_mock/clock", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get("/_mock/clock", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert client.post("/_mock/reset", headers={"X-m3ter-mock-admin-token": token}).status_code == 200
            basic = base64.b64encode(f"cli-admin:{CLIENT_SECRET}".encode()).decode()
            issued = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                                 headers={"Authorization": f"Basic {basic}"})
            assert issued.status_code == 200  # the m3ter API is not behind the admin token
            # A tenant's bearer token is no admin token.
            bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
            assert client.post("/_mock/reset", headers=bearer).status_code == 401
    finally:
        rest, stderr = stop(process, log)
        printed = first + "\n" + rest
    assert printed.count(token) == 1  # printed once, on stdout
    assert token not in stderr  # never logged
    assert "/_mock admin token required" in stderr


def test_a_token_from_the_environment_is_required_and_not_printed():
    process, log, port = serve(env={"M3TER_MOCK_ADMIN_TOKEN": GIVEN_TOKEN})
    try:
        wait_until_listening(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False) as client:
            assert client.get("/_mock/clock").status_code == 401
            assert client.get("/_mock/clock", headers={"X-m3ter-mock-admin-token": GIVEN_TOKEN}).status_code == 200
    finally:
        stdout, stderr = stop(process, log)
    assert GIVEN_TOKEN not in stdout and GIVEN_TOKEN not in stderr
