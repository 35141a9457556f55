"""Bucket names and key prefixes of export destinations (mockserver.domain.object_paths),
and export rendering of text that is not valid Unicode."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.domain import export_rendering as rendering
from mockserver.domain import object_paths as paths
from mockserver.domain.errors import MockError

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "m3ter.yaml"


@pytest.mark.parametrize("name", ["abc", "acme-m3ter-exports", "my.bucket.2026", "a-.b", "0.9", "x" * 63,
                                  "1.2.3.4.5", "g00d"])
def test_bucket_names_both_clouds_accept(name):
    assert paths.bucket_name_problem(name, "S3") is None
    assert paths.bucket_name_problem(name, "GCS") is None


@pytest.mark.parametrize(("name", "reason"), [
    ("ab", "3 to 63 characters"), ("x" * 64, "3 to 63 characters"),
    ("../../x", "only lowercase letters"), ("/abs", "only lowercase letters"), ("a/../../b", "only lowercase letters"),
    ("a\\b", "only lowercase letters"), ("Acme", "only lowercase letters"), ("abc\n", "only lowercase letters"),
    ("...", "start and end"), ("-abc", "start and end"), ("abc.", "start and end"),
    ("a..b", "two dots"), ("192.168.5.4", "IP address"),
])
def test_bucket_names_both_clouds_refuse(name, reason):
    for kind in ("S3", "GCS"):
        assert reason in paths.bucket_name_problem(name, kind)


@pytest.mark.parametrize(("name", "s3", "gcs"), [
    ("my_bucket", "only lowercase letters, digits, hyphens and dots", None),
    ("xn--abc", "'xn--'", None), ("sthree-abc", "'sthree-'", None), ("amzn-s3-demo-x", "'amzn-s3-demo-'", None),
    ("abc-s3alias", "'-s3alias'", None), ("abc--ol-s3", "'--ol-s3'", None), ("abc.mrap", "'.mrap'", None),
    ("abc--x-s3", "'--x-s3'", None), ("abc--table-s3", "'--table-s3'", None),
    ("goog-exports", None, "'goog'"), ("my-google-bucket", None, "'google'"), ("my-g00gle", None, "'google'"),
])
def test_bucket_rules_of_one_cloud(name, s3, gcs):
    for kind, reason in (("S3", s3), ("GCS", gcs)):
        problem = paths.bucket_name_problem(name, kind)
        assert problem is None if reason is None else reason in problem, (kind, problem)


@pytest.mark.parametrize("prefix", ["", "billing", "billing/", "a/b/c", "exports/2026 Q1/é", "a.b/..c/...", "x=1"])
def test_prefixes_accepted(prefix):
    assert paths.prefix_problem(prefix) is None


@pytest.mark.parametrize(("prefix", "reason"), [
    ("../../../../x", "'..' segment"), ("..", "'..' segment"), ("a/../b", "'..' segment"), ("a/..", "'..' segment"),
    ("./a", "'.' segment"), ("a/.", "'.' segment"), ("/abs", "start with '/'"), ("/", "start with '/'"),
    ("a//b", "empty segment"), ("a//", "empty segment"), ("a\\..\\b", "backslash"), ("a\x00b", "control"),
    ("a\nb", "control"), ("billing\n", "control"), ("x" * 1025, "at most 1024"),
])
def test_prefixes_refused(prefix, reason):
    assert reason in paths.prefix_problem(prefix)


def test_check_destination_names_the_field_and_never_echoes_a_long_value():
    with pytest.raises(MockError) as bucket:
        paths.check_destination("S3", "../../x", None)
    assert bucket.value.status == 400 and bucket.value.message.startswith("bucketName: '../../x' ")
    with pytest.raises(MockError) as prefix:
        paths.check_destination("GCS", "acme", "../" * 5000)
    assert prefix.value.message.startswith("prefix: ") and len(prefix.value.message) < 300


def _spec_patterns() -> dict[str, str]:
    schemas = yaml.safe_load(SPEC.read_text())["components"]["schemas"]
    return {
        "S3": schemas["ExportDestinationS3Request"]["allOf"][1]["properties"]["bucketName"]["pattern"],
        "GCS": schemas["ExportDestinationGoogleCloudStorageRequest"]["allOf"][1]["properties"]["bucketName"]["pattern"],
        "prefix": schemas["ExportDestinationRequestCommon"]["properties"]["prefix"]["pattern"],
    }


def test_the_spec_declares_these_patterns():
    assert _spec_patterns() == {"S3": paths.S3_BUCKET_PATTERN, "GCS": paths.GCS_BUCKET_PATTERN,
                                "prefix": paths.PREFIX_PATTERN}


# Pieces that hit every rule: reserved words, dots, IP-like runs, path tricks, a newline.
_PIECES = st.one_of(
    st.sampled_from(["xn--", "sthree-", "amzn-s3-demo-", "-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3",
                     "goog", "google", "g00gle", "..", ".", "/", "//", "../", "./", "1.2.3.4", "192.168.5.4", "\n"]),
    st.text(alphabet="ab09.-_/\\G\x00é", max_size=5),
)
_NAMES = st.lists(_PIECES, max_size=8).map("".join)


@settings(max_examples=600, deadline=None)
@given(_NAMES)
def test_patterns_and_rules_agree(value):
    """What the spec's pattern (as Connexion applies it: re.search) lets through is exactly
    what the domain rule accepts, so Connexion's 400 and the mock's 400 never disagree."""
    for kind, pattern in (("S3", paths.S3_BUCKET_PATTERN), ("GCS", paths.GCS_BUCKET_PATTERN)):
        by_schema = 3 <= len(value) <= 63 and re.search(pattern, value) is not None
        assert by_schema == (paths.bucket_name_problem(value, kind) is None), (kind, value)
    by_schema = len(value) <= 1024 and re.search(paths.PREFIX_PATTERN, value) is not None
    assert by_schema == (paths.prefix_problem(value) is None), value


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_ecmascript_reads_the_patterns_the_same_way():
    samples = ["abc", "abc\n", "a..b", "1.2.3.4", "a_b", "-ab", "my.bucket", "xn--ab", "ab.mrap", "googx", "ag00gle",
               "billing", "billing/", "a//b", "../x", "a/./b", "/abs", "a\\b", "x/..", "x/...", "é/ü", "x" * 64]
    patterns = list(_spec_patterns().values())
    script = ("const [ps, ss] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "const both = (p, s) => [new RegExp(p).test(s), new RegExp(p, 'u').test(s)];"
              "console.log(JSON.stringify(ps.map(p => ss.map(s => both(p, s)))))")
    run = subprocess.run(["node", "-e", script], input=json.dumps([patterns, samples]), capture_output=True,
                         text=True, check=True, timeout=60)
    verdicts = json.loads(run.stdout)
    for pattern, row in zip(patterns, verdicts):
        assert row == [[re.search(pattern, s) is not None] * 2 for s in samples], pattern


# -- rendering text that is not valid Unicode -----------------------------------------------

ROWS = [{"id": "ok-1", "name": "Straße"}, {"id": "bad-2", "name": "broken \ud800 name"}]


@pytest.mark.parametrize("file_format", ["CSV", "JSONL"])
def test_a_lone_surrogate_is_a_render_error_naming_the_row_and_field(file_format):
    with pytest.raises(rendering.RenderError) as error:
        rendering.render(ROWS, ["id", "name"], file_format)
    assert str(error.value).startswith("row 'bad-2': field 'name' is not valid Unicode text")


def test_jsonl_is_utf8():
    assert rendering.render(ROWS[:1], ["id", "name"], "JSONL") == '{"id":"ok-1","name":"Straße"}\n'.encode()
    assert rendering.render(ROWS[:1], ["id", "name"], "CSV") == "id,name\r\nok-1,Straße\r\n".encode()


# -- the reason each refusal gives, word for word ------------------------------------------

@pytest.mark.parametrize(("name", "kind", "reason"), [
    ("my_bucket", "S3", "may hold only lowercase letters, digits, hyphens and dots"),
    ("My-bucket", "GCS", "may hold only lowercase letters, digits, hyphens, dots and underscores"),
    ("-bucket", "S3", "must start and end with a lowercase letter or a digit"),
    ("bucket_", "GCS", "must start and end with a lowercase letter or a digit"),
    ("a..b", "S3", "must not contain two dots in a row"),
    ("10.0.0.1", "GCS", "must not be an IP address"),
    ("googbucket", "GCS", "must not start with 'goog' (reserved by Google)"),
    ("my-g00gle-bucket", "GCS", "must not contain 'google' or a look-alike (reserved by Google)"),
])
def test_each_bucket_refusal_gives_its_reason(name, kind, reason):
    assert paths.bucket_name_problem(name, kind) == reason


@pytest.mark.parametrize(("prefix", "reason"), [
    ("a\\b", "must not contain a backslash (segments are separated by '/')"),
    ("a\tb", "must not contain control characters"),
    ("/abs", "must not start with '/' (it is a path inside the bucket, not an absolute path)"),
    ("a//b", "must not contain an empty segment ('//')"),
])
def test_each_prefix_refusal_gives_its_reason(prefix, reason):
    assert paths.prefix_problem(prefix) == reason


def test_a_prefix_may_be_1024_characters_and_no_more():
    assert paths.prefix_problem("p" * 1024) is None
    assert paths.prefix_problem("p" * 1025) == "must be at most 1024 characters long"


def test_a_value_of_64_characters_is_quoted_whole_and_a_longer_one_cut_at_64():
    with pytest.raises(MockError) as whole:
        paths.check_destination("S3", "b" * 64, None)
    assert whole.value.message == (f"bucketName: '{'b' * 64}' is not a valid S3 bucket name: "
                                   "it must be 3 to 63 characters long")
    with pytest.raises(MockError) as cut:
        paths.check_destination("S3", "b" * 65, None)
    assert cut.value.message == (f"bucketName: '{'b' * 64}'... (65 characters) is not a valid S3 bucket name: "
                                 "it must be 3 to 63 characters long")
