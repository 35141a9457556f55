"""The request journal (``/_mock/journal``): every request of the m3ter API recorded with its
organization, operationId, status and bodies; filters, count, paging, the bound, clearing,
and no credential in anything it answers."""

from __future__ import annotations

import base64
import json

import pytest

from mockserver.app import create_app
from tests.conftest import basic, bearer_for, make_settings
from tests.support import leaks

ORG = "org-journal"
OTHER = "org-journal-other"
BASE = f"/organizations/{ORG}"
T0 = "2026-01-01T00:00:00Z"
ADMIN_TOKEN = "journal-admin-secret-0c7d"

CLIENT_ID, CLIENT_SECRET = "journal-client", "journal-client-secret-4f1a"
WEBHOOK_SECRET = "journal-webhook-secret-8b2e"
FORM_SECRET = "journal-form-secret-19d3"
JSON_SECRET = "journal-json-secret-6a70"
QUERY_SECRET = "journal-query-secret-2c55"
CUT_SECRET = "CUTSECRETCUTSECRET"
leaks.remember(WEBHOOK_SECRET, FORM_SECRET, JSON_SECRET, QUERY_SECRET, CUT_SECRET)

AGGREGATION = {"name": "Storage", "code": "storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB",
               "calculation": "a"}


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def journal(client, **params) -> list[dict]:
    return ok(client.get("/_mock/journal", params=params))["data"]


def count(client, **params) -> int:
    return ok(client.get("/_mock/journal/count", params=params))["count"]


def freeze(client, at=T0):
    ok(client.post("/_mock/clock", json={"freeze": True, "at": at}))


def advance(client, seconds):
    ok(client.post("/_mock/clock", json={"advanceSeconds": seconds}))


@pytest.fixture
def auth(client):
    """A token, then an empty journal (so each test counts only its own requests)."""
    headers = bearer_for(client)
    ok(client.delete("/_mock/journal"))
    return headers


# -- what one entry holds ----------------------------------------------------------------------

def test_a_request_is_recorded_with_its_time_org_operation_query_status_and_bodies(client):
    freeze(client)
    auth = bearer_for(client)
    created = ok(client.post(f"{BASE}/products", headers=auth,
                             json={"name": "Widgets", "code": "widgets"}))
    listed = ok(client.get(f"{BASE}/products", headers=auth, params={"pageSize": 5, "ids": ["x", "y"]}))

    token_call, create, listing = journal(client)
    assert token_call["operationId"] == "GenerateToken" and token_call["orgId"] is None
    assert token_call["path"] == "/oauth/token" and token_call["status"] == 200
    assert create["sequence"] == token_call["sequence"] + 1 and listing["sequence"] == create["sequence"] + 1
    assert {k: create[k] for k in ("time", "orgId", "operationId", "method", "path", "query", "status")} == {
        "time": "2026-01-01T00:00:00.000Z", "orgId": ORG, "operationId": "PostProduct", "method": "POST",
        "path": f"{BASE}/products", "query": {}, "status": 200}
    assert create["durationMs"] > 0
    assert create["request"]["body"] == {"name": "Widgets", "code": "widgets"}
    assert create["request"]["headers"]["content-type"] == "application/json"
    assert create["response"]["body"] == created
    assert create["response"]["headers"]["content-type"] == "application/json"
    assert (create["request"]["bodyTruncated"], create["response"]["bodyTruncated"]) == (False, False)
    assert create["request"]["bodyBytes"] == len(b'{"name":"Widgets","code":"widgets"}')  # as httpx sends it

    assert listing["operationId"] == "ListProducts" and listing["method"] == "GET"
    assert listing["query"] == {"pageSize": ["5"], "ids": ["x", "y"]}
    assert listing["request"]["body"] is None and listing["request"]["bodyBytes"] == 0
    assert listing["response"]["body"] == listed


def test_operation_ids_are_resolved_for_curated_generic_and_action_operations(client, auth):
    aggregation = ok(client.post(f"{BASE}/compoundaggregations", headers=auth, json=AGGREGATION))
    client.get(f"{BASE}/compoundaggregations/{aggregation['id']}", headers=auth)
    product = ok(client.post(f"{BASE}/products", headers=auth, json={"name": "P", "code": "p"}))
    client.put(f"{BASE}/products/{product['id']}", headers=auth, json={"name": "P2", "code": "p", "version": 1})
    client.delete(f"{BASE}/products/{product['id']}", headers=auth)
    client.get(f"{BASE}/events/types", headers=auth)
    client.get(f"{BASE}/bills/search", headers=auth)  # the literal route, not GET /bills/{id}
    client.get(f"{BASE}/bills/some-bill", headers=auth)
    client.get(f"{BASE}/no-such-thing", headers=auth)
    client.delete(f"{BASE}/products", headers=auth)  # 405: the path has no DELETE
    assert [(e["operationId"], e["status"]) for e in journal(client)] == [
        ("PostCompoundAggregation", 200), ("GetCompoundAggregation", 200),
        ("PostProduct", 200), ("PutProduct", 200), ("DeleteProduct", 200),
        ("ListEventTypes", 200), ("SearchBills", 200), ("GetBill", 404),
        (None, 404), (None, 405)]


def test_refused_requests_are_recorded_with_their_status(client, auth):
    client.post(f"{BASE}/products", headers={**auth, "Content-Type": "application/json"}, content=b"{not json")
    client.post(f"{BASE}/products", headers=auth, json={"name": 5, "code": "p"})  # wrong type
    client.get(f"{BASE}/products")  # no token
    client.get(f"{BASE}/products", headers={"Authorization": "Bearer forged"})
    client.post(f"{BASE}/products", json={"name": "P", "code": "p"})  # no token: refused before the body
    client.get(f"{BASE}/products/missing", headers=auth)
    client.get("/organizations", headers=auth)  # no such path
    client.put(f"{BASE}/products", headers=auth, json={})
    too_big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    client.post(f"{BASE}/products", headers={**auth, "Content-Type": "application/json"}, content=too_big)
    entries = journal(client)
    assert [e["status"] for e in entries] == [400, 400, 401, 401, 401, 404, 404, 405, 413]
    assert entries[0]["request"]["body"] == "{not json"  # not JSON: shown as text
    assert entries[1]["request"]["body"] == {"name": 5, "code": "p"}
    assert entries[2]["response"]["body"] == {"message": "No authorization token provided"}
    assert entries[2]["response"]["headers"]["www-authenticate"] == 'Bearer realm="m3ter-mock"'
    assert entries[6]["orgId"] is None and entries[6]["operationId"] is None
    # Refused before a byte of the body was read: for want of a token, and on its Content-Length.
    for refused in (entries[4], entries[8]):
        assert (refused["request"]["body"], refused["request"]["bodyBytes"]) == (None, 0)
        assert refused["request"]["headers"]["content-type"] == "application/json"
    assert count(client, status="4xx") == 9


@pytest.mark.allows_server_errors  # the injected 503
def test_injected_faults_are_recorded_as_the_client_saw_them(client, auth):
    ok(client.post("/_mock/faults", json={"operationId": "GetProduct", "action": "status", "status": 503,
                                          "times": 1}))
    ok(client.post("/_mock/faults", json={"operationId": "ListProducts", "action": "drop", "times": 1}))
    client.get(f"{BASE}/products/p1", headers=auth)
    with pytest.raises(AssertionError, match="did not receive any response"):
        client.get(f"{BASE}/products", headers=auth)
    faulted, dropped = journal(client)
    assert (faulted["operationId"], faulted["status"]) == ("GetProduct", 503)
    assert faulted["response"]["body"]["message"].startswith("injected fault")
    assert (dropped["operationId"], dropped["status"], dropped["response"]["body"]) == ("ListProducts", None, None)


def test_the_admin_api_the_spec_and_the_ui_are_not_recorded(client, auth):
    answer = ok(client.post(f"{BASE}/fileuploads/measurements/generateUploadUrl", headers=auth,
                            json={"fileName": "u.json", "contentType": "application/json", "contentLength": 2}))
    client.put(answer["url"], content=b"{}", headers={"Content-Type": "application/json"})
    client.get("/_mock/clock")
    client.get("/_mock/deliveries")
    client.get("/_mock/no-such-admin-path")
    client.get("/openapi.json")
    client.get("/_mock/openapi.json")
    client.get("/ui/")
    assert [e["operationId"] for e in journal(client)] == ["GenerateUploadUrl"]


# -- filters, count, paging --------------------------------------------------------------------

def test_each_filter_and_the_count(client, auth):
    freeze(client)
    ok(client.post(f"{BASE}/products", headers=auth, json={"name": "A", "code": "a"}))
    client.get(f"{BASE}/products/missing", headers=auth)
    advance(client, 60)
    ok(client.get(f"/organizations/{OTHER}/products", headers=auth))
    client.get(f"/organizations/{OTHER}/products/missing", headers=auth)
    advance(client, 60)
    client.get(f"{BASE}/nothing-here", headers=auth)

    def paths(**params):
        found = journal(client, **params)
        assert count(client, **params) == len(found), params
        return [(e["method"], e["path"].rsplit("/", 2)[-2:], e["status"]) for e in found]

    assert len(journal(client)) == 5 and count(client) == 5
    assert paths(orgId=ORG) == [("POST", ["org-journal", "products"], 200), ("GET", ["products", "missing"], 404),
                                ("GET", ["org-journal", "nothing-here"], 404)]
    assert paths(orgId=OTHER) == [("GET", ["org-journal-other", "products"], 200),
                                  ("GET", ["products", "missing"], 404)]
    assert paths(orgId="nobody") == []
    assert paths(operationId="GetProduct") == [("GET", ["products", "missing"], 404)] * 2
    assert paths(operationId="GetProduct", orgId=OTHER) == [("GET", ["products", "missing"], 404)]
    assert paths(status="404") == [("GET", ["products", "missing"], 404), ("GET", ["products", "missing"], 404),
                                   ("GET", ["org-journal", "nothing-here"], 404)]
    assert paths(status="2xx") == [("POST", ["org-journal", "products"], 200),
                                   ("GET", ["org-journal-other", "products"], 200)]
    assert paths(status="201") == []
    assert paths(method="post") == [("POST", ["org-journal", "products"], 200)]
    assert paths(since="2026-01-01T00:01:00Z") == [
        ("GET", ["org-journal-other", "products"], 200), ("GET", ["products", "missing"], 404),
        ("GET", ["org-journal", "nothing-here"], 404)]
    assert paths(until="2026-01-01T00:01:00Z") == [("POST", ["org-journal", "products"], 200),
                                                   ("GET", ["products", "missing"], 404)]
    assert paths(since="2026-01-01T00:01:00Z", until="2026-01-01T00:02:00Z", status="4xx") == [
        ("GET", ["products", "missing"], 404)]
    assert [e["time"] for e in journal(client, orgId=OTHER)] == ["2026-01-01T00:01:00.000Z"] * 2

    for params, field in (({"status": "4x"}, "status"), ({"status": "600"}, "status"),
                          ({"since": "yesterday"}, "since"), ({"method": "G E T"}, "method")):
        for path in ("/_mock/journal", "/_mock/journal/count"):
            refused = client.get(path, params=params)
            assert refused.status_code == 400 and field in refused.json()["message"], (path, params)


def test_pages_oldest_first_with_a_next_token_bound_to_its_filters(client, auth):
    for n in range(5):
        client.get(f"{BASE}/products/p{n}", headers=auth)
    client.get(f"/organizations/{OTHER}/products/q", headers=auth)

    def all_pages(**params):
        seen, sizes, token = [], [], None
        while True:
            body = ok(client.get("/_mock/journal", params={**params, **({"nextToken": token} if token else {})}))
            sizes.append(len(body["data"]))
            seen += [e["path"].rsplit("/", 1)[-1] for e in body["data"]]
            token = body.get("nextToken")
            if not token:
                return seen, sizes

    assert all_pages(orgId=ORG, pageSize=2) == (["p0", "p1", "p2", "p3", "p4"], [2, 2, 1])
    assert all_pages(pageSize=3) == (["p0", "p1", "p2", "p3", "p4", "q"], [3, 3])
    assert all_pages(pageSize=6) == (["p0", "p1", "p2", "p3", "p4", "q"], [6])
    of_org = ok(client.get("/_mock/journal", params={"orgId": ORG, "pageSize": 1}))["nextToken"]
    for params in ({"orgId": OTHER, "nextToken": of_org}, {"nextToken": of_org},
                   {"orgId": ORG, "status": "404", "nextToken": of_org}, {"nextToken": "garbage"}):
        refused = client.get("/_mock/journal", params=params)
        assert refused.status_code == 400 and "nextToken" in refused.json()["message"], params
    # Entries recorded after a page was read come on the next pages.
    first = ok(client.get("/_mock/journal", params={"orgId": ORG, "pageSize": 4}))
    client.get(f"{BASE}/products/p5", headers=auth)
    rest = ok(client.get("/_mock/journal", params={"orgId": ORG, "pageSize": 4, "nextToken": first["nextToken"]}))
    assert [e["path"].rsplit("/", 1)[-1] for e in rest["data"]] == ["p4", "p5"]


def test_the_default_page_is_100_and_a_page_at_most_1000(client, auth):
    for n in range(101):
        client.get(f"/organizations/{ORG}/x{n}")
    first = ok(client.get("/_mock/journal"))
    assert len(first["data"]) == 100 and first["nextToken"]
    assert [e["path"] for e in ok(client.get("/_mock/journal", params={"nextToken": first["nextToken"]}))["data"]] \
        == [f"{BASE}/x100"]
    assert len(journal(client, pageSize=1000)) == 101
    for size in (0, 1001, "x"):
        refused = client.get("/_mock/journal", params={"pageSize": size})
        assert refused.status_code == 400 and "pageSize" in refused.json()["message"]


# -- clearing ----------------------------------------------------------------------------------

def test_clear_everything_or_one_organization_and_a_reset_clears_too(client, auth):
    for org in (ORG, ORG, OTHER):
        client.get(f"/organizations/{org}/products/missing", headers=auth)
    assert ok(client.delete("/_mock/journal", params={"orgId": OTHER})) == {"cleared": 1}
    assert [e["orgId"] for e in journal(client)] == [ORG, ORG]
    assert ok(client.delete("/_mock/journal", params={"orgId": "nobody"})) == {"cleared": 0}
    assert ok(client.delete("/_mock/journal")) == {"cleared": 2}
    assert journal(client) == [] and count(client) == 0

    client.get(f"{BASE}/products/missing", headers=auth)
    after = journal(client)
    assert len(after) == 1 and after[0]["sequence"] > 3  # numbering goes on after a clear
    ok(client.post("/_mock/reset"))
    assert count(client) == 0


# -- the bound, the admin token, switched off ---------------------------------------------------

@pytest.fixture(scope="module")
def small_app():
    return create_app(make_settings(retain_journal=3, admin_token=ADMIN_TOKEN))


def test_only_the_newest_entries_are_kept(small_app):
    small_app.backend.reset()
    client = small_app.test_client()
    admin = {"X-m3ter-mock-admin-token": ADMIN_TOKEN}
    auth = bearer_for(client)
    for n in range(5):
        client.get(f"{BASE}/products/p{n}", headers=auth)
    kept = ok(client.get("/_mock/journal", headers=admin))["data"]
    assert [e["path"].rsplit("/", 1)[-1] for e in kept] == ["p2", "p3", "p4"]
    assert [e["sequence"] for e in kept] == [4, 5, 6]  # the token call was 1
    assert ok(client.get("/_mock/journal/count", headers=admin)) == {"count": 3}

    # The admin token guards the journal like every /_mock call.
    for method, path in (("GET", "/_mock/journal"), ("GET", "/_mock/journal/count"), ("DELETE", "/_mock/journal")):
        assert client.request(method, path).status_code == 401
        assert client.request(method, path, headers=auth).status_code == 401
    assert ok(client.get("/_mock/journal/count", headers=admin)) == {"count": 3}


def test_retain_journal_0_records_nothing():
    off = create_app(make_settings(retain_journal=0))
    client = off.test_client()
    auth = bearer_for(client)
    ok(client.get(f"{BASE}/products", headers=auth))
    assert journal(client) == [] and count(client) == 0


# -- bodies and redaction ----------------------------------------------------------------------

def test_a_body_is_kept_up_to_8_kib(client, auth):
    big = json.dumps({"name": "n" * 20_000, "code": "big"}).encode()
    client.post(f"{BASE}/products", headers={**auth, "Content-Type": "application/json"}, content=big)
    for n in range(60):
        ok(client.post(f"{BASE}/products", headers=auth, json={"name": f"Product {n:02d} " + "p" * 100,
                                                                "code": f"p{n:02d}"}))
    listed = client.get(f"{BASE}/products", headers=auth, params={"pageSize": 60})
    assert len(listed.content) > 8192

    request_entry = journal(client, method="POST")[0]["request"]
    assert request_entry["bodyBytes"] == len(big) and request_entry["bodyTruncated"] is True
    assert request_entry["body"] == big[:8192].decode()
    response_entry = journal(client, method="GET")[0]["response"]
    assert response_entry["bodyBytes"] == len(listed.content) and response_entry["bodyTruncated"] is True
    assert response_entry["body"] == listed.content[:8192].decode()
    small = journal(client, method="POST")[1]
    assert small["request"]["bodyTruncated"] is False and isinstance(small["request"]["body"], dict)


def test_no_credential_is_ever_answered(client):
    basic_header = basic(CLIENT_ID, CLIENT_SECRET)
    token = ok(client.post("/oauth/token", json={"grant_type": "client_credentials"},
                           headers=basic_header))["access_token"]
    leaks.remember(token)
    auth = {"Authorization": f"Bearer {token}"}
    # Client secrets in a token request's body, as a form and as JSON.
    form = {**basic_header, "Content-Type": "application/x-www-form-urlencoded"}
    client.post("/oauth/token", headers=form,
                content=f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={FORM_SECRET}".encode())
    client.post("/oauth/token", json={"grant_type": "client_credentials", "client_secret": JSON_SECRET},
                headers=basic_header)
    # A webhook secret, sent and answered (the create call returns it).
    hook = ok(client.post(f"{BASE}/integrationdestinations/webhooks", headers=auth, json={
        "name": "Hook", "description": "d", "url": "http://127.0.0.1:9/hook",
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "hook-key", "secret": WEBHOOK_SECRET}}))
    assert hook["credentials"]["secret"] == WEBHOOK_SECRET
    # A secret in a body cut at 8 KiB, the cut falling inside the secret.
    pad = 8192 - len('{"pad":"') - len('","secret":"') - 6
    cut_body = ('{"pad":"' + "x" * pad + '","secret":"' + CUT_SECRET + '"}').encode()
    client.post(f"{BASE}/integrationdestinations/webhooks", headers={**auth, "Content-Type": "application/json"},
                content=cut_body)
    # A secret-named query parameter; the admin token sent to the m3ter API by mistake.
    client.get(f"{BASE}/products", headers={**auth, "X-m3ter-mock-admin-token": ADMIN_TOKEN},
               params={"access_token": QUERY_SECRET})
    # Download and upload URLs in answers, and a download token in a path.
    download = ok(client.post(f"{BASE}/bills/download/csv/url", headers=auth,
                              json={"startDate": "2024-10-01T00:00:00Z", "endDate": "2024-10-31T00:00:00Z"}))
    upload = ok(client.post(f"{BASE}/fileuploads/measurements/generateUploadUrl", headers=auth,
                            json={"fileName": "u.json", "contentType": "application/json", "contentLength": 2}))
    download_token = download["downloadUrl"].rsplit("/", 1)[-1]
    upload_token = upload["url"].rsplit("/", 1)[-1]
    client.get(f"{BASE}/x/_mock/downloads/{download_token}", headers=auth)
    # Words that look like credentials but are not.
    ok(client.post(f"{BASE}/products", headers=auth, json={"name": "Basic plan", "code": "bearer"}))

    entries = journal(client)
    everything = json.dumps(entries)
    basic_value = basic_header["Authorization"].split()[1]
    for name, secret in {"client secret": CLIENT_SECRET, "Basic credentials": basic_value, "bearer token": token,
                         "form client_secret": FORM_SECRET, "JSON client_secret": JSON_SECRET,
                         "webhook secret": WEBHOOK_SECRET, "cut secret": CUT_SECRET[:6],
                         "query secret": QUERY_SECRET, "admin token": ADMIN_TOKEN,
                         "download token": download_token, "upload token": upload_token}.items():
        assert secret not in everything, name

    token_call, form_call, json_call, create, cut, listing, download_call, upload_call, path_call, product = entries
    assert token_call["request"]["headers"]["authorization"] == "Basic [REDACTED]"
    assert token_call["response"]["body"] == {"access_token": "[REDACTED]", "token_type": "Bearer",
                                              "expires_in": 18000}
    assert form_call["request"]["body"] == (f"grant_type=client_credentials&client_id={CLIENT_ID}"
                                            "&client_secret=[REDACTED]")
    assert json_call["request"]["body"] == {"grant_type": "client_credentials", "client_secret": "[REDACTED]"}
    assert (form_call["status"], json_call["status"]) == (200, 200)
    assert create["request"]["headers"]["authorization"] == "Bearer [REDACTED]"
    assert create["request"]["body"]["credentials"] == {"type": "M3TER_SIGNED_REQUEST", "apiKey": "hook-key",
                                                       "secret": "[REDACTED]"}
    assert create["response"]["body"]["credentials"]["secret"] == "[REDACTED]"
    assert cut["request"]["bodyTruncated"] is True
    assert cut["request"]["body"].endswith('","secret":"[REDACTED]"')
    assert listing["query"] == {"access_token": ["[REDACTED]"]}
    assert listing["request"]["headers"]["x-m3ter-mock-admin-token"] == "[REDACTED]"
    assert download_call["response"]["body"]["downloadUrl"] == "http://testserver/_mock/downloads/[REDACTED]"
    assert upload_call["response"]["body"]["url"] == "http://testserver/_mock/uploads/[REDACTED]"
    assert path_call["path"] == f"{BASE}/x/_mock/downloads/[REDACTED]"
    assert product["request"]["body"] == {"name": "Basic plan", "code": "bearer"}


def test_a_credential_written_in_a_body_value_is_hidden(client, auth):
    bearer = "eyJhbGciOi.payload.signature"
    basic_value = base64.b64encode(b"someone:their-password").decode()
    leaks.remember(bearer, basic_value)
    client.post(f"{BASE}/products", headers=auth, json={
        "name": "N", "code": "c", "customFields": {"note": f"Authorization: Bearer {bearer}",
                                                   "other": f"Basic {basic_value}", "password": "hunter2-journal"}})
    body = journal(client)[0]["request"]["body"]
    assert body["customFields"] == {"note": "Authorization: Bearer [REDACTED]", "other": "Basic [REDACTED]",
                                    "password": "[REDACTED]"}


# -- the serve flag ----------------------------------------------------------------------------

class _Built(Exception):
    def __init__(self, settings):
        self.settings = settings


def _settings_served_with(monkeypatch, argv, environ=None) -> object:
    """The Settings ``m3ter-mock serve`` would build its app with (the app itself is not built)."""
    import mockserver.app
    from mockserver import cli

    def build(settings, *args, **kwargs):
        raise _Built(settings)

    monkeypatch.setattr(mockserver.app, "create_app", build)
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(_Built) as built:
        cli.main(["serve", "--quiet", *argv])
    return built.value.settings


def test_serve_keeps_10000_requests_unless_told_otherwise(monkeypatch, capsys):
    monkeypatch.delenv("M3TER_MOCK_RETAIN_JOURNAL", raising=False)
    assert _settings_served_with(monkeypatch, []).retain_journal == 10_000
    assert _settings_served_with(monkeypatch, ["--retain-journal", "50"]).retain_journal == 50
    assert _settings_served_with(monkeypatch, ["--retain-journal", "0"]).retain_journal == 0
    assert _settings_served_with(monkeypatch, [], {"M3TER_MOCK_RETAIN_JOURNAL": "7"}).retain_journal == 7
    from mockserver import cli

    with pytest.raises(SystemExit) as refused:
        cli.main(["serve", "--retain-journal", "-1"])
    assert refused.value.code == 2
    assert "--retain-journal: -1 must be at least 0" in capsys.readouterr().err


# -- the redaction rules, directly -------------------------------------------------------------

def test_secret_names_in_every_usual_spelling():
    from mockserver.domain.journal import is_secret_name

    for name in ("secret", "clientSecret", "client_secret", "client-secret", "webhookSecret", "password",
                 "newPassword", "access_token", "refresh_token", "token", "accessToken", "apiSecret",
                 "private_key", "Authorization"):
        assert is_secret_name(name), name
    for name in ("nextToken", "token_type", "apiKey", "code", "name", "secretariat", "passwordPolicy"):
        assert not is_secret_name(name), name


def test_credentials_in_text_and_what_only_looks_like_one():
    from mockserver.domain.journal import headers_view, redact_text

    basic_value = base64.b64encode(b"id:pw").decode()
    assert redact_text(f"Bearer abc.def-ghi_jkl~ and Basic {basic_value}") == \
        "Bearer [REDACTED] and Basic [REDACTED]"
    assert redact_text("the Basic plan, a Bearer realm=\"x\"") == "the Basic plan, a Bearer realm=\"x\""
    assert redact_text('{"a":"1","clientSecret":"abc","b":{"password":"pw"},"secret":"cut-of') == \
        '{"a":"1","clientSecret":"[REDACTED]","b":{"password":"[REDACTED]"},"secret":"[REDACTED]"'
    assert redact_text('{"secret":"a\\"b","next":"c"}') == '{"secret":"[REDACTED]","next":"c"}'
    assert redact_text("grant_type=x&client_secret=abc&password=&z=1", form=True) == \
        "grant_type=x&client_secret=[REDACTED]&password=[REDACTED]&z=1"
    assert redact_text("see https://h/_mock/uploads/AbC_12-x?x=1") == "see https://h/_mock/uploads/[REDACTED]?x=1"
    assert headers_view([(b"authorization", b"Bearer abc"), (b"proxy-authorization", b"secretonly"),
                         (b"cookie", b"s=1"), (b"x-api-key", b"k"), (b"x-trace", b"a"), (b"x-trace", b"b")]) == {
        "authorization": "Bearer [REDACTED]", "proxy-authorization": "[REDACTED]", "cookie": "[REDACTED]",
        "x-api-key": "[REDACTED]", "x-trace": "a, b"}
