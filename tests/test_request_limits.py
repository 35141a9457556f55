"""Limits on one request and the integrity of what is accepted (issue 8, points 4 and 6):
body, header and query limits with clear answers; strict JSON (no NaN, no number beyond a
64-bit float, no lone surrogate, bounded nesting); a body without Content-Type; validation
that stops early; `uniqueItems`/`maxItems`; and messages that never echo a body in full nor
a secret. Every refused request leaves the store as it was."""

from __future__ import annotations

import asyncio
import json

import pytest
from connexion.json_schema import resolve_refs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import ValidationError

from mockserver.api.strict_json import nesting_exceeds
from mockserver.api.validation import FORMAT_CHECKER, MockRequestValidator, bulk_checker
from mockserver.app import create_app, load_spec
from tests.conftest import bearer_for, make_settings
from tests.support.state import unchanged

ORG = "org-limits"
BASE = f"/organizations/{ORG}"
MIB = 1024 * 1024
AGGREGATION = {"name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a + b"}
WEBHOOK = {"name": "h", "description": "d", "url": "http://127.0.0.1:9/h",
           "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "s"}}
JSON = {"Content-Type": "application/json"}


def post_raw(client, auth, path, content: bytes, headers=JSON):
    return client.post(f"{BASE}/{path}", content=content, headers={**auth, **headers})


def call_asgi(app, method, path, headers, chunks):
    """One request straight through the ASGI app, the body offered in ``chunks`` (the
    last one ends the body). Returns the status, the JSON answer and the body bytes the app
    asked for."""
    pending = list(chunks)
    taken = {"bytes": 0, "calls": 0}

    async def receive():
        taken["calls"] += 1
        if not pending:
            return {"type": "http.request", "body": b"", "more_body": False}
        chunk = pending.pop(0)
        taken["bytes"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000)}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), taken


# -- the body limit ---------------------------------------------------------------------

def test_a_declared_body_over_1_mib_is_413_without_reading_it(app, auth):
    headers = {**auth, **JSON, "Content-Length": str(50 * MIB)}
    status, answer, taken = call_asgi(app, "POST", f"{BASE}/compoundaggregations", headers, [b" " * MIB] * 50)
    assert status == 413
    assert answer == {"message": "body: 52428800 bytes, larger than the 1048576-byte limit"}
    assert taken["bytes"] == 0


def test_a_chunked_body_over_the_limit_is_413_after_reading_no_more_than_the_limit(app, auth):
    chunks = [b'{"name": "'] + [b"n" * 65536] * 40  # 2.5 MiB, no Content-Length
    status, answer, taken = call_asgi(app, "POST", f"{BASE}/compoundaggregations", {**auth, **JSON}, chunks)
    assert status == 413
    assert answer == {"message": "body: larger than the 1048576-byte limit"}
    assert taken["bytes"] <= MIB + 65536


def test_a_chunked_body_within_the_limit_is_served(app, auth):
    body = json.dumps(AGGREGATION).encode()
    status, answer, _ = call_asgi(app, "POST", f"{BASE}/compoundaggregations", {**auth, **JSON},
                                  [body[:10], body[10:]])
    assert status == 200 and answer["name"] == "Storage"


def test_a_body_of_exactly_the_limit_is_read(app, client, auth):
    rest = json.dumps({k: v for k, v in AGGREGATION.items() if k != "name"}).encode()[1:]
    body = b'{"name": "' + b"n" * (MIB - 13 - len(rest)) + b'", ' + rest
    assert len(body) == MIB
    response = post_raw(client, auth, "compoundaggregations", body)
    assert response.status_code == 400 and response.json()["message"].startswith("name: ")


def test_every_operation_with_a_body_documents_413():
    spec = load_spec()
    operations = [op for item in spec["paths"].values() for op in item.values()
                  if isinstance(op, dict) and "requestBody" in op]
    assert len(operations) == 124  # of the 323: every one that takes a body
    assert all(op["responses"]["413"] == {"$ref": "#/components/responses/PayloadTooLarge"} for op in operations)


# -- header and query limits ------------------------------------------------------------

def test_headers_over_32_kib_are_431(client, auth):
    response = client.get(f"{BASE}/compoundaggregations", headers={**auth, "X-Padding": "x" * (33 * 1024)})
    assert response.status_code == 431
    assert response.json()["message"].startswith("headers: ")
    assert response.json()["message"].endswith(" bytes, larger than the 32768-byte limit")


def test_a_query_over_8_kib_is_400(client, auth):
    query = "ids=" + ",".join(["a" * 9] * 900)
    response = client.get(f"{BASE}/compoundaggregations?{query}", headers=auth)
    assert response.status_code == 400
    assert response.json() == {"message": f"query: {len(query)} bytes, larger than the 8192-byte limit"}


@pytest.fixture(scope="module")
def small_app():
    return create_app(make_settings(max_body_bytes=2000, max_header_bytes=4000, max_query_bytes=100,
                                    max_json_depth=4))


def test_the_limits_are_the_settings(small_app):
    client = small_app.test_client()
    auth = bearer_for(client)
    body = json.dumps({**AGGREGATION, "name": "n" * 2000}).encode()
    response = client.post(f"{BASE}/compoundaggregations", content=body, headers={**auth, **JSON})
    assert response.json() == {"message": f"body: {len(body)} bytes, larger than the 2000-byte limit"}
    assert response.status_code == 413
    assert client.get(f"{BASE}/compoundaggregations?codes={'c' * 100}", headers=auth).status_code == 400
    assert client.get(f"{BASE}/compoundaggregations", headers={**auth, "X-Padding": "x" * 4000}).status_code == 431
    # depth 4 is allowed (a schema error follows), depth 5 is not
    four = client.post(f"{BASE}/compoundaggregations", json={**AGGREGATION, "name": [[[1]]]}, headers=auth)
    assert four.status_code == 400 and four.json()["message"].startswith("name: ")
    five = client.post(f"{BASE}/compoundaggregations", json={**AGGREGATION, "name": [[[[1]]]]}, headers=auth)
    assert five.json() == {"message": "body: JSON nested deeper than 4 levels"}


# -- strict JSON ------------------------------------------------------------------------

def _with(field: str, raw_value: bytes) -> bytes:
    return json.dumps({**AGGREGATION, field: "PLACEHOLDER"}).encode().replace(b'"PLACEHOLDER"', raw_value)


@pytest.mark.parametrize(("content", "message"), [
    (_with("quantityPerUnit", b"NaN"), "quantityPerUnit: NaN is not a JSON number"),
    (_with("quantityPerUnit", b"Infinity"), "quantityPerUnit: Infinity is not a JSON number"),
    (_with("customFields", b'{"a": -Infinity}'), "customFields.a: -Infinity is not a JSON number"),
    (_with("quantityPerUnit", b"1e400"), "quantityPerUnit: 1e400 is out of range: a number must fit a 64-bit float"),
    (_with("quantityPerUnit", b"9" * 4301),
     "quantityPerUnit: " + "9" * 59 + "… (4301 digits) is out of range: a number must fit a 64-bit float"),
    (_with("name", b'"\\ud800"'), "name: a string with a lone surrogate (\\ud800-\\udfff) is not valid Unicode"),
    (_with("name", b'"ok \\udc00 no"'), "name: a string with a lone surrogate (\\ud800-\\udfff) is not valid Unicode"),
    (_with("customFields", b'{"\\ud83d": 1}'),
     "customFields.\\ud83d: a property name with a lone surrogate (\\ud800-\\udfff) is not valid Unicode"),
    (b"[" * 10_000 + b"]" * 10_000, "body: JSON nested deeper than 32 levels"),
    (b'{"name": ' + b"[" * 33 + b"]" * 33 + b"}", "body: JSON nested deeper than 32 levels"),
], ids=["NaN", "Infinity", "-Infinity", "1e400", "4301 digits", "lone high surrogate", "lone low surrogate",
        "surrogate in a name", "10000 deep", "34 deep"])
def test_json_m3ter_cannot_hold_is_a_400_naming_the_field(app, client, auth, content, message):
    def attempt():
        response = post_raw(client, auth, "compoundaggregations", content)
        assert response.status_code == 400
        assert response.json() == {"message": message}
    unchanged(app, attempt)


@pytest.mark.parametrize(("field", "raw", "stored"), [
    ("quantityPerUnit", b"1" + b"0" * 38, 10 ** 38),  # beyond int64, a double holds it (as m3ter)
    ("quantityPerUnit", b"1e308", 1e308),
    ("name", b'"\\ud83d\\ude00 ok"', "\U0001F600 ok"),  # a surrogate pair is one character
    ("name", b'"NaN"', "NaN"),
], ids=["39 digits", "1e308", "surrogate pair", "NaN as text"])
def test_what_m3ter_holds_is_stored_as_sent(client, auth, field, raw, stored):
    response = post_raw(client, auth, "compoundaggregations", _with(field, raw))
    assert response.status_code == 200, response.text
    assert response.json()[field] == stored


def test_nesting_is_measured_outside_strings():
    assert not nesting_exceeds(b'{"a": "[[[[[[[[[[[[[[", "b": [1]}', 3)
    assert not nesting_exceeds(b'{"a": "\\"[[[[[[[[[[", "b": [[1]]}', 3)
    assert nesting_exceeds(b'{"a": [[[1]]]}', 3)
    assert not nesting_exceeds(b'{"a": [[1]], "b": [[2]], "c": {"d": [3]}}', 3)
    assert nesting_exceeds(b"[" * 100, 32)


def test_a_body_without_content_type_is_415(app, client, auth):
    def attempt():
        response = post_raw(client, auth, "compoundaggregations", json.dumps(AGGREGATION).encode(), headers={})
        assert response.status_code == 415
        assert response.json() == {"message": "Content-Type: application/json is required"}
    unchanged(app, attempt)


def test_a_charset_other_than_utf8_is_415(app, client, auth):
    response = post_raw(client, auth, "compoundaggregations", json.dumps(AGGREGATION).encode("utf-16"),
                        headers={"Content-Type": "application/json; charset=utf-16"})
    assert response.status_code == 415
    assert response.json() == {"message": "Content-Type: charset 'utf-16' is not supported; send UTF-8"}


# -- validation that stops early --------------------------------------------------------

def test_an_array_of_100k_invalid_ids_is_described_by_its_first_error(app, client, auth, monkeypatch):
    created = []
    original = ValidationError.__init__

    def counting(self, *args, **kwargs):
        created.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ValidationError, "__init__", counting)
    body = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["BILLS"], "destinationIds": list(range(100_000))}

    def attempt():
        response = client.post(f"{BASE}/dataexports/adhoc", json=body, headers=auth)
        assert response.status_code == 400
        assert response.json() == {"message": "destinationIds.0: 0 is not of type 'string'"}
        assert len(response.content) < 1024
    unchanged(app, attempt)
    assert len(created) <= 2 * 10 + 5  # a few per oneOf branch, not one per item


@pytest.mark.parametrize("path", ["dataexports/adhoc", "dataexports/schedules"])
def test_operational_data_types_are_unique_and_at_most_20(client, auth, path):
    extra = {"name": "n", "code": "c"} if "schedules" in path else {}
    many = client.post(f"{BASE}/{path}", headers=auth, json={
        "sourceType": "OPERATIONAL", "operationalDataTypes": ["BILLS"] * 3000, **extra})
    assert many.status_code == 400
    assert many.json() == {"message": "operationalDataTypes: [... 3000 items ...] is too long"}
    twice = client.post(f"{BASE}/{path}", headers=auth, json={
        "sourceType": "OPERATIONAL", "operationalDataTypes": ["BILLS", "BILLS"], **extra})
    assert twice.json() == {"message": "operationalDataTypes: ['BILLS', 'BILLS'] has non-unique elements"}


@pytest.mark.parametrize(("field", "body"), [
    ("destinationIds", {"sourceType": "OPERATIONAL", "operationalDataTypes": ["BILLS"], "destinationIds": ["d", "d"]}),
    ("meterIds", {"sourceType": "USAGE", "meterIds": ["m", "m"]}),
    ("accountIds", {"sourceType": "USAGE", "accountIds": ["a", "a"]}),
])
def test_id_lists_are_unique(client, auth, field, body):
    response = client.post(f"{BASE}/dataexports/adhoc", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json()["message"].startswith(f"{field}: ")
    assert response.json()["message"].endswith("has non-unique elements")


def test_a_long_valid_array_is_accepted(client, auth):
    ids = [f"meter-{n}" for n in range(5000)]
    response = client.post(f"{BASE}/dataexports/adhoc", json={"sourceType": "USAGE", "meterIds": ids}, headers=auth)
    assert response.status_code == 200, response.text


def test_an_error_deep_in_a_long_array_names_its_index(client, auth):
    ids = [f"meter-{n}" for n in range(5000)]
    ids[4321] = 7
    response = client.post(f"{BASE}/dataexports/adhoc", json={"sourceType": "USAGE", "meterIds": ids}, headers=auth)
    assert response.json() == {"message": "meterIds.4321: 7 is not of type 'string'"}


def test_many_custom_fields_are_checked_each(client, auth):
    fields = {f"f{n}": n for n in range(2000)}
    fields["f1500"] = {"nested": 1}
    response = client.post(f"{BASE}/compoundaggregations", json={**AGGREGATION, "customFields": fields}, headers=auth)
    assert response.status_code == 400
    assert response.json()["message"].startswith("customFields.f1500: ")


# -- messages ---------------------------------------------------------------------------

def test_an_over_long_webhook_secret_is_not_echoed(app, client, auth):
    secret = "secret-" + "s" * 2000
    def attempt():
        response = client.post(f"{BASE}/integrationdestinations/webhooks", headers=auth,
                               json={**WEBHOOK, "credentials": {**WEBHOOK["credentials"], "secret": secret}})
        assert response.status_code == 400
        assert response.json() == {"message": "credentials.secret: (value hidden) is too long"}
        assert "sss" not in response.text
    unchanged(app, attempt)


def test_a_wrong_api_key_is_not_echoed(client, auth):
    response = client.post(f"{BASE}/integrationdestinations/webhooks", headers=auth,
                           json={**WEBHOOK, "credentials": {**WEBHOOK["credentials"], "apiKey": 12345678}})
    assert response.json() == {"message": "credentials.apiKey: (value hidden) is not of type 'string'"}


def test_a_long_value_is_quoted_cut_short(client, auth):
    response = client.post(f"{BASE}/compoundaggregations", json={**AGGREGATION, "name": "n" * 900_000}, headers=auth)
    assert response.status_code == 400
    assert response.json() == {"message": "name: '" + "n" * 58 + "… is too long"}


def test_an_unknown_long_id_is_not_echoed_in_full(client, auth):
    body = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["BILLS"], "destinationIds": ["x" * 100_000]}
    response = client.post(f"{BASE}/dataexports/adhoc", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json()["message"].startswith("destinationIds: ")
    assert len(response.content) < 1024


# -- the bulk check decides as the Python validator -------------------------------------

def _item_schemas():
    spec = resolve_refs(load_spec())
    found = {}

    def walk(node, where):
        if isinstance(node, dict):
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict):
                    found.setdefault(json.dumps(node[key], sort_keys=True), (where + "/" + key, node[key]))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "requestBody" in operation:
                walk(operation["requestBody"], f"{method} {path}")
    return sorted(found.values(), key=lambda entry: entry[0])


ITEM_SCHEMAS = _item_schemas()
_WORDS = sorted({word for _, schema in ITEM_SCHEMAS for word in json.dumps(schema).split('"') if word.isidentifier()})
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from(_WORDS) | st.text(max_size=8)
            | st.sampled_from(["arn:aws:iam::123456789012:role/x", "2026-01-01T00:00:00Z", "b-b", "x\n"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(_WORDS) | st.text(max_size=4), inner, max_size=4),
                       max_leaves=8)


def test_there_are_item_schemas_to_compare():
    assert len(ITEM_SCHEMAS) >= 6


@pytest.mark.parametrize(("where", "schema"), ITEM_SCHEMAS, ids=[w for w, _ in ITEM_SCHEMAS])
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(_VALUES, min_size=1, max_size=40))
def test_the_bulk_check_finds_the_first_item_python_rejects(where, schema, values):
    python = MockRequestValidator(schema, format_checker=FORMAT_CHECKER)
    expected = next((index for index, value in enumerate(values) if not python.is_valid(value)), None)
    checker = bulk_checker(schema)
    assert checker is not None, where
    assert checker.first_invalid(values, 0) == expected


def _body_schemas():
    spec = resolve_refs(load_spec())
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            media = operation["requestBody"]["content"]["application/json"]
            schema = media["schema"]
            example = media.get("example", schema.get("example"))
            for branch in schema.get("oneOf", []):
                example = example or branch.get("example")
            if isinstance(example, dict):
                found.append((f"{method} {path}", schema, example))
    return found


BODY_SCHEMAS = _body_schemas()


@st.composite
def _near(draw, example):
    """The example with a few fields replaced, dropped or added, nested ones too."""
    body = json.loads(json.dumps(example))
    for _ in range(draw(st.integers(0, 3))):
        target = body
        nested = [k for k, v in body.items() if isinstance(v, dict)]
        if nested and draw(st.booleans()):
            target = body[draw(st.sampled_from(nested))]
        key = draw(st.sampled_from(sorted(target) + _WORDS[:20]) if target else st.sampled_from(_WORDS))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(_VALUES | st.sampled_from([2 ** 63, 2 ** 31, -1, 0, 1.5, "", " x", "a" * 300]))
    return body


def test_there_are_body_schemas_with_examples():
    assert len(BODY_SCHEMAS) >= 10


@pytest.mark.parametrize(("where", "schema", "example"), BODY_SCHEMAS, ids=[w for w, _, _ in BODY_SCHEMAS])
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_bulk_check_decides_near_valid_bodies_as_python(where, schema, example, data):
    bodies = data.draw(st.lists(_near(example), min_size=1, max_size=6))
    python = MockRequestValidator(schema, format_checker=FORMAT_CHECKER)
    expected = next((index for index, body in enumerate(bodies) if not python.is_valid(body)), None)
    checker = bulk_checker(schema)
    assert checker is not None, where
    assert checker.first_invalid(bodies, 0) == expected
