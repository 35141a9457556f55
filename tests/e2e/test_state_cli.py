"""``m3ter-mock serve --state-file PATH`` as a user runs it: the store survives a restart (saved
at shutdown), and a file that is not a state file stops start-up with one line naming it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from contextlib import closing

import httpx

from tests.support.processes import free_port, serving_line, wait_until_listening


def serve(path, port):
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--state-file", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert serving_line(process), process.communicate(timeout=10)[0]
    wait_until_listening(port, process)
    return process


def client_for(port):
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False)
    basic = base64.b64encode(b"cli:cli-secret").decode()
    token = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                        headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_an_acknowledged_create_survives_a_restart(tmp_path):
    path = tmp_path / "mock.state"
    port = free_port()
    process = serve(path, port)
    try:
        with closing(client_for(port)) as client:
            created = client.post("/organizations/cli-org/products", json={"name": "Kept", "code": "kept"})
            assert created.status_code == 200
    finally:
        process.terminate()  # SIGTERM: uvicorn shuts down, the mock saves
        log, _ = process.communicate(timeout=30)
    assert f"state saved to {str(path)!r}" in log
    assert os.listdir(tmp_path) == ["mock.state"]

    process = serve(path, port)
    try:
        with closing(client_for(port)) as client:  # a new token: the old one was the other process's
            again = client.get(f"/organizations/cli-org/products/{created.json()['id']}")
            assert again.status_code == 200 and again.json() == created.json()
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_file_that_is_not_a_state_file_stops_start_up_with_one_line_and_exit_2(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my notes, not a state file\n")
    finished = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--port", str(free_port()),
                               "--state-file", str(path)], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert finished.stderr.splitlines() == [
        f"m3ter-mock: state file {str(path)!r}: does not start with the m3ter-mock state file header, so it is not "
        f"a state file this mock wrote; it was left as it is (move it away to start afresh)"]
    assert path.read_text() == "my notes, not a state file\n"
    assert os.listdir(tmp_path) == ["notes.txt"]
