"""The spec itself: valid OpenAPI 3.0.3, every operation bound to a handler, every
example valid against its schema, every pattern portable and right."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from mockserver.api.registry import HANDLERS, handlers_for
from mockserver.app import load_spec

SPEC = load_spec()
METHODS = ("get", "put", "post", "delete", "patch")
OPERATIONS = [(path, method, op) for path, item in SPEC["paths"].items()
              for method, op in item.items() if method in METHODS]


def test_spec_is_valid_openapi_303():
    assert SPEC["openapi"] == "3.0.3"
    validate(SPEC)


def test_all_323_operations_have_unique_ids_each_bound_to_a_handler():
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == 323
    assert len(set(ids)) == 323
    bound = handlers_for(SPEC)  # the written handlers, and one built from each x-mock
    assert set(bound) == set(ids)
    assert all(callable(bound[operation_id]) for operation_id in ids)
    assert set(HANDLERS) < set(ids)


def test_every_operation_is_served_and_none_documents_a_501():
    """Issue 11 served the last eleven (ingest, uploads, usage query, bill runs): no operation is
    marked unimplemented, documents a 501 or still says it is not served."""
    for _, _, op in OPERATIONS:
        assert (op.get("x-mock") or {}).get("action") != "unimplemented", op["operationId"]
        assert "501" not in op["responses"], op["operationId"]
        assert "Not served by the mock" not in op.get("description", ""), op["operationId"]
        assert "501" not in str(op["responses"]["200"].get("description", "")), op["operationId"]


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=lambda v: v if isinstance(v, str) else "")
def test_every_operation_documents_its_errors(path, method, op):
    statuses = set(op["responses"])
    assert "200" in statuses and "400" in statuses and "401" in statuses
    if path.startswith("/organizations/"):
        assert "403" in statuses
    if "{id}" in path or "{jobId}" in path or "{entityType}" in path:
        assert "404" in statuses
    if "requestBody" in op:
        assert "415" in statuses
    if method == "put" and "requestBody" in op:
        assert "409" in statuses


def _resolve(node):
    """The spec with every $ref replaced by its target (no cycles in this spec)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = SPEC
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _resolve(target)
        return {k: _resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


def _walk(node, where="#"):
    """Every mapping in the spec with its JSON path."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key != "example":
                yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}/{i}")


def _examples():
    found = []
    for where, node in _walk(SPEC):
        if "example" in node:
            schema = node["schema"] if "schema" in node else {k: v for k, v in node.items() if k != "example"}
            found.append((where, schema, node["example"]))
    return found


EXAMPLES = _examples()


def test_there_are_examples():
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize(("where", "schema", "example"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_example_validates(where, schema, example):
    errors = list(OAS30Validator(_resolve(schema)).iter_errors(example))
    assert not errors, [e.message for e in errors]


def _patterns():
    return [(where, node["pattern"]) for where, node in _walk(SPEC) if isinstance(node.get("pattern"), str)]


PATTERNS = _patterns()


@pytest.mark.parametrize(("where", "pattern"), PATTERNS, ids=[p[0] for p in PATTERNS])
def test_pattern_compiles_in_python(where, pattern):
    re.compile(pattern)


def test_patterns_compile_in_ecmascript():
    node = shutil.which("node")
    assert node, "Node.js is needed to check ECMAScript patterns (it is part of the dev machine)"
    script = "const ps = JSON.parse(process.argv[1]); for (const p of ps) { new RegExp(p); } console.log(ps.length);"
    result = subprocess.run([node, "-e", script, json.dumps([p for _, p in PATTERNS])],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(PATTERNS)


CODE = re.compile(SPEC["components"]["schemas"]["Code"]["pattern"])
AGGREGATION_CODE = re.compile(SPEC["components"]["schemas"]["AggregationCode"]["pattern"])
ARN = re.compile(SPEC["components"]["schemas"]["ExportDestinationS3Request"]["allOf"][1]["properties"]["iamRoleArn"]["pattern"])


@pytest.mark.parametrize("value", ["a", "nightly_export", "two words", "ünïcode-ok", "a b  c", "x1!"])
def test_code_pattern_accepts(value):
    assert CODE.search(value)


@pytest.mark.parametrize("value", ["", " lead", "trail ", "tab\tinside", "new\nline", "\x07bell", "end\x7f"])
def test_code_pattern_rejects(value):
    assert not CODE.search(value)


@pytest.mark.parametrize("value", ["storage", "_private", "$cost", "gb2", "größe", "Zürich_2"])
def test_aggregation_code_accepts(value):
    assert AGGREGATION_CODE.search(value)


@pytest.mark.parametrize("value", ["2fast", "with space", "dash-ed", "", "dot.ted"])
def test_aggregation_code_rejects(value):
    assert not AGGREGATION_CODE.search(value)


def test_iam_role_arn_pattern():
    assert ARN.search("arn:aws:iam::123456789012:role/m3ter")
    assert not ARN.search("arn:aws:s3:::bucket")
    assert not ARN.search("arn:aws:iam::acct:role/x")


def test_the_admin_route_that_accepts_an_invitation_takes_any_organization_id(client, auth):
    """admin.yaml's AcceptInvitation: the only way a user comes to exist; it takes every
    organization id the m3ter API takes (a space in it, here), and a second accept is a 409."""
    org = "/organizations/My%20Org%20ID"
    invited = client.post(f"{org}/invitations", headers=auth,
                          json={"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"})
    assert invited.status_code == 200, invited.text
    accepted = client.post(f"/_mock{org}/invitations/{invited.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    user = accepted.json()
    assert (user["email"], user["organizations"], user["supportUser"]) == ("ada@example.com", ["My Org ID"], False)
    assert client.get(f"{org}/users/{user['id']}", headers=auth).json()["email"] == "ada@example.com"
    again = client.post(f"/_mock{org}/invitations/{invited.json()['id']}/accept")
    assert again.status_code == 409 and set(again.json()) == {"message"}
    assert client.post(f"/_mock{org}/invitations/no-such-invitation/accept").status_code == 404


@pytest.mark.parametrize("name", ["m3ter.yaml", "admin.yaml"])
def test_the_parsed_copy_of_each_spec_is_current(name):
    """The mock starts from the parsed copy (mockserver/resources.py read_spec); after an edit
    to the YAML, run tools/parsed_specs.py."""
    import hashlib
    import json

    import yaml

    from mockserver.resources import parsed_copy_path, spec_path

    path = spec_path(name)
    copy = json.loads(parsed_copy_path(path).read_text(encoding="utf-8"))
    assert copy["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), \
        f"{name} changed since its parsed copy was written: run tools/parsed_specs.py"
    assert copy["document"] == yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)


def test_a_stale_parsed_copy_is_ignored(tmp_path):
    from mockserver.resources import read_spec, write_parsed_copy

    spec = tmp_path / "tiny.yaml"
    spec.write_text("openapi: 3.0.3\ninfo: {title: one, version: '1'}\npaths: {}\n")
    write_parsed_copy(spec)
    assert read_spec(spec)["info"]["title"] == "one"
    spec.write_text("openapi: 3.0.3\ninfo: {title: two, version: '1'}\npaths: {}\n")
    assert read_spec(spec)["info"]["title"] == "two"  # the YAML file wins over a stale copy
