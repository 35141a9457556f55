"""M3TER_SIGNED_REQUEST webhook signing, checked against an HMAC written out here."""

from __future__ import annotations

import ast
import hashlib
import hmac
import sys
import time
from pathlib import Path

import pytest

from mockserver.domain import signing
from mockserver.domain.signing import sign, signed_headers, verify

SECRET = "a secret"
API_KEY = "apiKey"
TIMESTAMP = "1700000000000"
BODY = b'{"eventName":"configuration.commitment.updated","amount":15000.0}'


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


# ---- sign ---------------------------------------------------------------------


def test_signature_without_query_string():
    expected = hmac_sha256_hex(SECRET, b"https://someurl.io/hook||apiKey|1700000000000|" + BODY)
    assert sign(SECRET, "https://someurl.io/hook", API_KEY, TIMESTAMP, BODY) == expected


def test_signature_with_query_string_signs_url_and_query_separately():
    url = "https://someurl.io/hook?tenant=acme&x=a%20b"
    message = b"https://someurl.io/hook|tenant=acme&x=a%20b|apiKey|1700000000000|" + BODY
    expected = hmac_sha256_hex(SECRET, message)
    assert sign(SECRET, url, API_KEY, TIMESTAMP, BODY) == expected


def test_query_string_is_signed_as_sent_not_normalised():
    url = "https://someurl.io/hook?b=2&a=1&b=3"
    expected = hmac_sha256_hex(SECRET, b"https://someurl.io/hook|b=2&a=1&b=3|apiKey|1700000000000|" + BODY)
    assert sign(SECRET, url, API_KEY, TIMESTAMP, BODY) == expected


def test_fragment_is_not_signed():
    plain = sign(SECRET, "https://someurl.io/hook?a=1", API_KEY, TIMESTAMP, BODY)
    assert sign(SECRET, "https://someurl.io/hook?a=1#section", API_KEY, TIMESTAMP, BODY) == plain
    assert sign(SECRET, "https://someurl.io/hook#x?y=1", API_KEY, TIMESTAMP, BODY) == sign(
        SECRET, "https://someurl.io/hook", API_KEY, TIMESTAMP, BODY
    )


def test_everything_from_the_first_hash_on_is_the_fragment():
    assert sign(SECRET, "https://someurl.io/hook?a=1#one#two", API_KEY, TIMESTAMP, BODY) == sign(
        SECRET, "https://someurl.io/hook?a=1", API_KEY, TIMESTAMP, BODY
    )


def test_empty_query_after_question_mark_signs_like_no_query():
    expected = hmac_sha256_hex(SECRET, b"https://someurl.io||apiKey|1700000000000|")
    assert sign(SECRET, "https://someurl.io?", API_KEY, TIMESTAMP, b"") == expected
    assert sign(SECRET, "https://someurl.io", API_KEY, TIMESTAMP, b"") == expected


@pytest.mark.parametrize(
    ("url", "body", "signature"),
    [
        # Computed with `openssl dgst -sha256 -hmac 'a secret'` over the message.
        ("https://someurl.io", b"{}", "701ca845002bd444e4aa91bfe5837c790da70e3df9f9c1f0a61928ee89999fc8"),
        (
            "https://someurl.io/hook?a=1",
            b'{"ok":true}',
            "ab73af00dfb6edfb24c0077e5bc7073ea89bd09227ff0cb19e53057e97b177cb",
        ),
    ],
)
def test_known_vectors(url, body, signature):
    assert sign("a secret", url, "apiKey", "1700000000000", body) == signature


def test_signature_is_lowercase_hex():
    signature = sign(SECRET, "https://someurl.io", API_KEY, TIMESTAMP, BODY)
    assert len(signature) == 64
    assert signature == signature.lower()
    int(signature, 16)


def test_body_is_signed_as_exact_bytes():
    not_utf8 = b"\xff\xfe{}"
    expected = hmac_sha256_hex(SECRET, b"https://someurl.io||apiKey|1700000000000|" + not_utf8)
    assert sign(SECRET, "https://someurl.io", API_KEY, TIMESTAMP, not_utf8) == expected


def test_unicode_secret_key_url_and_body_are_utf8():
    body = '{"name":"café"}'.encode("utf-8")
    message = "https://someurl.io/ü|q=é|clé|1700000000000|".encode("utf-8") + body
    expected = hmac_sha256_hex("sécret", message)
    assert sign("sécret", "https://someurl.io/ü?q=é", "clé", TIMESTAMP, body) == expected


def test_str_body_signs_like_its_utf8_bytes():
    text = '{"name":"café"}'
    url = "https://someurl.io"
    as_bytes = sign(SECRET, url, API_KEY, TIMESTAMP, text.encode("utf-8"))
    assert sign(SECRET, url, API_KEY, TIMESTAMP, text) == as_bytes


# ---- signed_headers -----------------------------------------------------------


def test_signed_headers():
    headers = signed_headers(SECRET, "https://someurl.io/hook?a=1", API_KEY, BODY, TIMESTAMP)
    message = b"https://someurl.io/hook|a=1|apiKey|1700000000000|" + BODY
    assert headers == {
        "Content-Type": "application/json",
        "X-m3ter-apikey": API_KEY,
        "X-m3ter-timestamp": TIMESTAMP,
        "X-m3ter-signature": hmac_sha256_hex(SECRET, message),
    }


def test_signed_headers_default_timestamp_is_now_in_epoch_milliseconds():
    before = time.time_ns() // 1_000_000
    headers = signed_headers(SECRET, "https://someurl.io", API_KEY, BODY)
    after = time.time_ns() // 1_000_000
    timestamp = headers["X-m3ter-timestamp"]
    assert timestamp.isdigit()
    assert before <= int(timestamp) <= after
    assert verify(SECRET, "https://someurl.io", API_KEY, timestamp, BODY, headers["X-m3ter-signature"])


# ---- verify -------------------------------------------------------------------

URL = "https://someurl.io/hook?tenant=acme"
GOOD = hmac_sha256_hex(SECRET, b"https://someurl.io/hook|tenant=acme|apiKey|1700000000000|" + BODY)


def test_verify_accepts_the_right_signature():
    assert verify(SECRET, URL, API_KEY, TIMESTAMP, BODY, GOOD)


def test_verify_accepts_upper_case_hex():
    assert verify(SECRET, URL, API_KEY, TIMESTAMP, BODY, GOOD.upper())


@pytest.mark.parametrize(
    "tampered",
    [
        {"body": BODY.replace(b"15000.0", b"15000.1")},
        {"body": BODY + b" "},
        {"body": b""},
        {"timestamp": "1700000000001"},
        {"api_key": "apiKey2"},
        {"api_key": ""},
        {"secret": "another secret"},
        {"url": "https://someurl.io/hook"},  # query dropped
        {"url": "https://someurl.io/hook?tenant=evil"},
        {"url": "https://someurl.io/hook2?tenant=acme"},
        {"url": "http://someurl.io/hook?tenant=acme"},
        {"signature": GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1")},
        {"signature": GOOD[:32]},
        {"signature": ""},
        {"signature": "not hex at all"},
        {"signature": "é" * 64},
    ],
)
def test_verify_rejects_any_change(tampered):
    request = dict(secret=SECRET, url=URL, api_key=API_KEY, timestamp=TIMESTAMP, body=BODY, signature=GOOD)
    request.update(tampered)
    assert verify(**request) is False


@pytest.mark.parametrize(
    ("now", "max_age", "accepted"),
    [
        (1_700_000_000.0, 300, True),
        (1_700_000_300.0, 300, True),  # exactly at the limit
        (1_700_000_300.001, 300, False),  # just too old
        (1_699_999_700.0, 300, True),
        (1_699_999_699.0, 300, False),  # too far in the future
        (1_700_003_600.0, 300, False),
        (1_700_003_600.0, 3600, True),
    ],
)
def test_verify_max_age(now, max_age, accepted):
    assert verify(SECRET, URL, API_KEY, TIMESTAMP, BODY, GOOD, max_age_seconds=max_age, now=now) is accepted


def test_verify_max_age_defaults_to_the_current_time():
    fresh = str(time.time_ns() // 1_000_000)
    stale = str(time.time_ns() // 1_000_000 - 10 * 60 * 1000)
    for timestamp, accepted in ((fresh, True), (stale, False)):
        signature = sign(SECRET, URL, API_KEY, timestamp, BODY)
        assert verify(SECRET, URL, API_KEY, timestamp, BODY, signature, max_age_seconds=60) is accepted


@pytest.mark.parametrize(
    "timestamp", ["2023-11-14T22:13:20Z", "1.7e12", "-1700000000000", "", "\uff11\uff17\uff10\uff10"]
)
def test_verify_max_age_rejects_timestamps_that_are_not_epoch_milliseconds(timestamp):
    signature = sign(SECRET, URL, API_KEY, timestamp, BODY)
    assert verify(SECRET, URL, API_KEY, timestamp, BODY, signature)  # no age check: any text signs
    forever = 10**12
    now = 1_700_000_000.0
    assert not verify(SECRET, URL, API_KEY, timestamp, BODY, signature, max_age_seconds=forever, now=now)


# ---- packaging ---------------------------------------------------------------


def test_module_uses_only_the_standard_library():
    nodes = list(ast.walk(ast.parse(Path(signing.__file__).read_text(encoding="utf-8"))))
    imported = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {"__future__"}
