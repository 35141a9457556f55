"""Signing and verifying webhook requests with an ``M3TER_SIGNED_REQUEST`` credential.

m3ter calls a notification's webhook destination with three headers:

``X-m3ter-apikey``
    the credential's ``apiKey``, sent as is;
``X-m3ter-timestamp``
    when the request was signed, as **milliseconds since the Unix epoch** in
    decimal (``"1700000000000"``) -- the mock's choice of numeric format;
``X-m3ter-signature``
    lowercase hex HMAC-SHA256, keyed with the credential's ``secret`` (UTF-8),
    over ``url + "|" + queryString + "|" + apiKey + "|" + timestamp + "|" + body``.

``url`` is the destination URL exactly as called, up to but not including the
``?`` (a ``#fragment`` is never sent, so it is never signed); ``queryString`` is
the raw text after the ``?``, not re-encoded or sorted, and empty when there is
none; ``body`` is the exact bytes sent. The signed message is built as bytes so
a body that is not valid UTF-8 still signs exactly.

Verifying in a receiver's tests::

    from mockserver.domain.signing import verify

    def test_webhook_is_from_m3ter(request):  # e.g. a Flask request
        assert verify(
            secret=WEBHOOK_SECRET,
            url=request.url,  # the full URL, query string included
            api_key=WEBHOOK_API_KEY,  # the one you configured, not the header's
            timestamp=request.headers["X-m3ter-timestamp"],
            body=request.get_data(),
            signature=request.headers["X-m3ter-signature"],
            max_age_seconds=300,
        )

Passing your own ``api_key`` rather than the ``X-m3ter-apikey`` header means a
request carrying someone else's key fails verification.

Only the standard library is used, so receivers can import this without the
mock server's web dependencies.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = [
    "API_KEY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "sign",
    "signed_headers",
    "timestamp_now",
    "verify",
]

API_KEY_HEADER = "X-m3ter-apikey"
TIMESTAMP_HEADER = "X-m3ter-timestamp"
SIGNATURE_HEADER = "X-m3ter-signature"


def timestamp_now() -> str:
    """The current time in the signing timestamp format: epoch milliseconds."""
    return str(time.time_ns() // 1_000_000)


def _split_url(url: str) -> tuple[str, str]:
    # Plain string splitting rather than urllib, which would normalise the URL
    # and so sign something other than what was sent.
    without_fragment = url.partition("#")[0]
    base, _, query = without_fragment.partition("?")
    return base, query


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)  # str.encode() is always UTF-8


def sign(secret: str, url: str, api_key: str, timestamp: str, body: bytes | str) -> str:
    """The ``X-m3ter-signature`` value for a request to ``url`` (which may carry a query)."""
    base, query = _split_url(url)
    message = "|".join((base, query, api_key, timestamp, "")).encode() + _as_bytes(body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, url: str, api_key: str, body: bytes | str, timestamp: str | None = None
) -> dict[str, str]:
    """The headers m3ter sends with a webhook call; ``timestamp`` defaults to now."""
    if timestamp is None:
        timestamp = timestamp_now()
    return {
        "Content-Type": "application/json",
        API_KEY_HEADER: api_key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, url, api_key, timestamp, body),
    }


def verify(
    secret: str,
    url: str,
    api_key: str,
    timestamp: str,
    body: bytes | str,
    signature: str,
    *,
    max_age_seconds: float | None = None,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` is the one ``sign`` gives for this request.

    With ``max_age_seconds``, the timestamp (epoch milliseconds) must also be
    within that many seconds of ``now`` (epoch seconds, default the current
    time), in either direction, so a captured request cannot be replayed later.
    """
    if max_age_seconds is not None and not _is_fresh(timestamp, max_age_seconds, now):
        return False
    expected = sign(secret, url, api_key, timestamp, body)
    # Compare bytes: compare_digest rejects non-ASCII str, and a forged
    # signature may contain anything.
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def _is_fresh(timestamp: str, max_age_seconds: float, now: float | None) -> bool:
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    now_ms = (time.time() if now is None else now) * 1000
    return abs(now_ms - int(timestamp)) <= max_age_seconds * 1000
