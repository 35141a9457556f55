"""No secret reaches the log, in any form and at any level: the client secret (raw, and as
the base64 of an HTTP Basic header, right or wrong), bearer tokens (valid, forged, expired,
for another organization), the webhook credential's secret (on create, update, delivery,
retry and failure, and in refused bodies), the admin token (right or wrong, in either
header) and download URL tokens. Checked in-process with the root and ``m3ter_mock``
loggers at DEBUG, and in ``python -m mockserver serve`` processes: one logging at DEBUG,
one as users run it."""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import httpx

from mockserver.app import create_app
from mockserver.domain.auth import Client
from tests.conftest import make_settings
from tests.support import leaks
from tests.support.receiver import receiving
from tests.support.processes import free_port, wait_until_listening

ORG = "org-logged"
CLIENT_ID = "log-client"
CLIENT_SECRET = "log-client-pw-5b8e1d"
WRONG_SECRET = "log-wrong-pw-c41f07"
WEBHOOK_SECRET = "hook-signing-key-9d2a61"
WEBHOOK_SECRET_2 = "hook-signing-key-rotated-0e7b"
REFUSED_SECRET = "hook-refused-key-73c5aa"
ADMIN = "log-admin-key-f3a90c"
WRONG_ADMIN = "log-admin-wrong-1b2e"
ROOT = Path(__file__).resolve().parent.parent

leaks.remember(WEBHOOK_SECRET, WEBHOOK_SECRET_2, REFUSED_SECRET, WRONG_ADMIN)
leaks.remember_client(CLIENT_ID, CLIENT_SECRET)
leaks.remember_client(CLIENT_ID, WRONG_SECRET)


def basic_value(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def every_form(tokens=(), extra=()) -> dict[str, str]:
    """Each secret of the flow, by what it is (for the failure message)."""
    forms = {
        "client secret": CLIENT_SECRET, "wrong client secret": WRONG_SECRET,
        "Basic header value": basic_value(CLIENT_ID, CLIENT_SECRET),
        "wrong Basic header value": basic_value(CLIENT_ID, WRONG_SECRET),
        "webhook secret": WEBHOOK_SECRET, "rotated webhook secret": WEBHOOK_SECRET_2,
        "refused webhook secret": REFUSED_SECRET, "wrong admin token": WRONG_ADMIN,
    }
    forms.update({f"token {n}": t for n, t in enumerate(tokens)})
    forms.update(extra)
    return forms


def assert_clean(text: str, forms: dict[str, str]) -> None:
    assert [name for name, value in forms.items() if value in text] == []
    assert leaks.found_in(text) == []


# -- the flow, over any HTTP client --------------------------------------------------------

def hook_body(url, secret, **extra):
    return {"name": "h", "description": "d", "url": url,
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "log-key", "secret": secret}, **extra}


def run_flow(http, admin_headers, advance) -> list[str]:
    """Everything that handles a secret, right and wrong; returns the tokens it saw."""
    base = f"/organizations/{ORG}"
    token_request = {"json": {"grant_type": "client_credentials"}}
    good = http.post("/oauth/token", headers={"Authorization": f"Basic {basic_value(CLIENT_ID, CLIENT_SECRET)}"},
                     **token_request)
    assert good.status_code == 200, good.text
    token = good.json()["access_token"]
    wrong = http.post("/oauth/token", headers={"Authorization": f"Basic {basic_value(CLIENT_ID, WRONG_SECRET)}"},
                      **token_request)
    assert wrong.status_code == 401
    no_colon = base64.b64encode(CLIENT_SECRET.encode()).decode()
    assert http.post("/oauth/token", headers={"Authorization": f"Basic {no_colon}"}, **token_request).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert http.get(f"{base}/compoundaggregations", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert http.get("/organizations/org-elsewhere/compoundaggregations", headers=auth).status_code == 403
    assert http.get(f"{base}/compoundaggregations", headers={"Authorization": f"Basic {basic_value(CLIENT_ID, CLIENT_SECRET)}"}).status_code == 401

    # admin calls: right and wrong token, both headers
    assert http.post("/_mock/clock", headers=admin_headers, json={"freeze": True}).status_code == 200
    assert http.get("/_mock/clock", headers={"X-m3ter-mock-admin-token": admin_headers["Authorization"][7:]}).status_code == 200
    assert http.get("/_mock/clock", headers={"Authorization": f"Bearer {WRONG_ADMIN}"}).status_code == 401
    assert http.get("/_mock/clock", headers={"X-m3ter-mock-admin-token": WRONG_ADMIN}).status_code == 401

    with receiving([500]) as receiver, receiving([500] * 10) as broken:
        hook = http.post(f"{base}/integrationdestinations/webhooks", headers=auth,
                         json=hook_body(receiver.url, WEBHOOK_SECRET))
        assert hook.status_code == 200 and hook.json()["credentials"]["secret"] == WEBHOOK_SECRET
        hook = hook.json()
        dead = http.post(f"{base}/integrationdestinations/webhooks", headers=auth,
                         json=hook_body(broken.url, WEBHOOK_SECRET_2, code="broken")).json()
        # refused bodies that carry a secret
        refused = [
            hook_body("ftp://example.com/x", REFUSED_SECRET),
            hook_body("http://169.254.169.254/latest", REFUSED_SECRET),
            {**hook_body(receiver.url, REFUSED_SECRET), "credentials": {"type": "NOPE", "apiKey": "k",
                                                                         "secret": REFUSED_SECRET}},
            {**hook_body(receiver.url, REFUSED_SECRET), "credentials": {"type": "M3TER_SIGNED_REQUEST",
                                                                         "apiKey": "k", "secret": [REFUSED_SECRET]}},
            {**hook_body(receiver.url, REFUSED_SECRET), "url": 7},
        ]
        for body in refused:
            answer = http.post(f"{base}/integrationdestinations/webhooks", headers=auth, json=body)
            assert answer.status_code == 400 and REFUSED_SECRET not in answer.text, answer.text
        broken_json = ('{"name": "h", "credentials": {"secret": "%s"' % REFUSED_SECRET).encode()
        assert http.post(f"{base}/integrationdestinations/webhooks", content=broken_json,
                         headers={**auth, "Content-Type": "application/json"}).status_code == 400
        assert http.post(f"{base}/integrationdestinations/webhooks", content=REFUSED_SECRET.encode(),
                         headers={**auth, "Content-Type": "text/plain"}).status_code == 415
        stale = http.put(f"{base}/integrationdestinations/webhooks/{hook['id']}", headers=auth,
                         json=hook_body(receiver.url, REFUSED_SECRET, version=99))
        assert stale.status_code == 409

        rule = http.post(f"{base}/notifications/configurations", headers=auth, json={
            "name": "n", "code": "n", "description": "d", "alwaysFireEvent": True,
            "eventName": "configuration.compoundaggregation.created"}).json()
        for destination in (hook, dead):
            assert http.post(f"{base}/integrationconfigs", headers=auth, json={
                "entityType": "Notification", "entityId": rule["id"], "destination": "Webhook",
                "destinationId": destination["id"]}).status_code == 200
        assert http.post(f"{base}/compoundaggregations", headers=auth, json={
            "name": "s", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"}).status_code == 200
        advance(60)  # a retry that succeeds, and five attempts that fail (integration.perform.error)
        assert len(receiver.requests) == 2 and len(broken.requests) == 5
        assert receiver.requests[1].headers["X-m3ter-signature"]

        # rotate the secret, read it back every way, and deliver with the new one
        updated = http.put(f"{base}/integrationdestinations/webhooks/{hook['id']}", headers=auth,
                           json=hook_body(receiver.url, WEBHOOK_SECRET_2, version=hook["version"]))
        assert updated.status_code == 200 and WEBHOOK_SECRET_2 not in updated.text
        assert WEBHOOK_SECRET_2 not in http.get(f"{base}/integrationdestinations/webhooks", headers=auth).text
        assert http.get(f"{base}/integrationdestinations/webhooks/{hook['id']}", headers=auth).status_code == 200
        assert http.post(f"{base}/compoundaggregations", headers=auth, json={
            "name": "t", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"}).status_code == 200
        advance(60)
        assert len(receiver.requests) == 3 and receiver.requests[2].status == 200

    # a download URL (its token is a credential too)
    job = http.post(f"{base}/dataexports/adhoc", headers=auth,
                    json={"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]}).json()
    advance(1)
    issued = http.get(f"{base}/dataexports/jobs/{job['jobId']}/getdownloadurl", headers=auth)
    assert issued.status_code == 200, issued.text
    download = "/" + issued.json()["url"].split("/", 3)[3]
    assert http.get(download).status_code == 200
    # an expired token
    advance(5 * 3600)
    assert http.get(f"{base}/compoundaggregations", headers=auth).status_code == 401
    assert http.get(download).status_code == 403
    return [token, forged, download.rsplit("/", 1)[1]]  # the last one: a download token


# -- in-process, every logger at DEBUG -----------------------------------------------------

class Everything(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record):
        self.records.append(record)

    def text(self) -> str:
        # Formatting adds the exception and stack text of each record.
        return "\n".join(self.format(r) for r in self.records if not leaks.is_client_logger(r.name))


@contextmanager
def logging_everything():
    root, mock = logging.getLogger(), logging.getLogger("m3ter_mock")
    levels = root.level, mock.level
    handler = Everything()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    mock.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        mock.setLevel(levels[1])


def test_no_secret_in_any_log_record_in_process():
    app = create_app(make_settings(clients=[Client(CLIENT_ID, CLIENT_SECRET, frozenset({ORG}))], admin_token=ADMIN))
    http = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}

    def advance(seconds):
        assert http.post("/_mock/clock", headers=admin, json={"advanceSeconds": seconds}).status_code == 200
        app.backend.run_due()

    with logging_everything() as captured:
        tokens = run_flow(http, admin, advance)
    app.backend.reset()
    text = captured.text()
    # The capture did see every level, and the mock's own lines.
    assert {r.levelno for r in captured.records} >= {logging.DEBUG, logging.INFO}
    assert f"POST /organizations/{ORG}/integrationdestinations/webhooks 200" in text
    assert "GET /_mock/downloads/… 200" in text
    assert_clean(text, every_form(tokens, {"admin token": ADMIN}))


# -- served: python -m mockserver serve ----------------------------------------------------

# ``python -m mockserver`` with the root logger at DEBUG (the CLI's own set-up then keeps it).
AT_DEBUG = ("import logging, runpy, sys; "
            "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, "
            "format='%(levelname)s %(name)s %(message)s'); "
            "sys.argv[0] = 'mockserver'; runpy.run_module('mockserver', run_name='__main__', alter_sys=True)")


@contextmanager
def served(tmp_path: Path, argv: list[str], debug: bool):
    """A served mock whose stdout and stderr go to files (a DEBUG log would fill a pipe)."""
    port = free_port()
    prefix = [sys.executable, "-c", AT_DEBUG] if debug else [sys.executable, "-m", "mockserver"]
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("M3TER_MOCK_")}
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen([*prefix, "serve", "--port", str(port), *argv], cwd=ROOT, env=env,
                                   stdout=stdout, stderr=stderr)
    try:
        wait_until_listening(port, process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as http:
            yield http, lambda: (process.terminate(), process.wait(timeout=10),
                                 out.read_text(), err.read_text())[2:]
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def served_flow(http, admin):
    def advance(seconds):
        assert http.post("/_mock/clock", headers=admin, json={"advanceSeconds": seconds}).status_code == 200
        assert http.get("/_mock/deliveries", headers=admin, params={"wait": "true"}).status_code == 200

    tokens = run_flow(http, admin, advance)
    # Secrets where a careless log line would print them: the query string.
    auth_free = http.get(f"/organizations/{ORG}/compoundaggregations",
                         params={"nextToken": WEBHOOK_SECRET, "client_secret": CLIENT_SECRET})
    assert auth_free.status_code == 401
    return tokens


def test_no_secret_in_the_served_log_at_debug(tmp_path):
    argv = ["--client", f"{CLIENT_ID}:{CLIENT_SECRET}:{ORG}", "--admin-token", ADMIN]
    with served(tmp_path, argv, debug=True) as (http, stop):
        tokens = served_flow(http, {"Authorization": f"Bearer {ADMIN}"})
        stdout, stderr = stop()
    assert "DEBUG " in stderr and "INFO m3ter_mock.access POST /oauth/token 401" in stderr
    assert "GET /_mock/downloads/… 200" in stderr
    assert stdout == ""  # a given admin token is never printed
    assert_clean(stderr, every_form(tokens, {"admin token": ADMIN}))


def test_no_secret_in_the_served_log_as_users_run_it(tmp_path):
    """``python -m mockserver serve --client ...`` without an admin token: the generated one
    is printed once on stdout (the one way to learn it) and appears nowhere else."""
    with served(tmp_path, ["--client", f"{CLIENT_ID}:{CLIENT_SECRET}:{ORG}"], debug=False) as (http, stop):
        # The token line is flushed before the mock listens.
        printed = (tmp_path / "stdout.txt").read_text()
        found = re.fullmatch(r"m3ter-mock: admin token for /_mock \(generated; pass --admin-token to choose "
                             r"one\): (\S+)\n", printed)
        assert found, printed
        admin = found.group(1)
        assert http.get("/_mock/clock").status_code == 401
        tokens = served_flow(http, {"Authorization": f"Bearer {admin}"})
        stdout, stderr = stop()
    assert stdout == printed
    assert "m3ter_mock.access POST /oauth/token 401" in stderr
    assert_clean(stderr, every_form(tokens, {"admin token": admin}))


# -- the access line ------------------------------------------------------------------------

def test_an_upload_url_token_is_left_out_of_the_access_line(client, caplog):
    token = "upload-token-that-is-a-credential"
    with caplog.at_level(logging.INFO, logger="m3ter_mock.access"):
        client.put(f"/_mock/uploads/{token}", content=b"a,b\n", headers={"Content-Type": "text/csv"})
    lines = [r.getMessage() for r in caplog.records if r.name == "m3ter_mock.access"]
    assert lines and lines[-1].startswith("PUT /_mock/uploads/… ")
    assert not any(token in line for line in lines)


def test_an_access_line_keeps_four_fields_when_the_organization_id_has_spaces(client, auth, caplog):
    with caplog.at_level(logging.INFO, logger="m3ter_mock.access"):
        assert client.get("/organizations/My Org ID/products", headers=auth).status_code == 200
    line = [r.getMessage() for r in caplog.records if r.name == "m3ter_mock.access"][-1]
    method, path, status, took = line.split()
    assert (method, path, status) == ("GET", "/organizations/My%20Org%20ID/products", "200")
