"""The request journal's rules (pure): what is kept of a body, how a recorded request is shown,
which credentials are hidden, and which filters a request matches.

Recording stores raw bytes and header lists as the server handed them over, so the request
pays for no decoding; everything here runs when the journal is read. Every read hides the
credentials again (nothing redacted is ever cached), so what the journal answers never holds:

* an ``Authorization`` header's credential (``Bearer [REDACTED]``, ``Basic [REDACTED]``), nor
  the value of a header named like a token, secret, password, cookie, API key or signature;
* a ``Bearer <token>`` or ``Basic <base64 of id:secret>`` written anywhere in a body;
* the value of a body field or query parameter named like a secret (``secret``,
  ``clientSecret``, ``client_secret``, ``password``, ``access_token``, ``refresh_token``,
  ``token``...) — in JSON, in a JSON body cut at the cap, and in a form body;
* the token of a download or upload URL the mock hands out (``/_mock/downloads/<token>``,
  ``/_mock/uploads/<token>``), in the path, the query or a body.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, unquote_plus

# What is kept of each body (request and response alike); openapi/admin.yaml says so.
BODY_LIMIT = 8 * 1024
REDACTED = "[REDACTED]"

_URL_TOKEN = re.compile(r"(/_mock/(?:downloads|uploads)/)[A-Za-z0-9_-]+")
# A b64token (RFC 6750), not a challenge's parameter (``WWW-Authenticate: Bearer realm="..."``).
_BEARER = re.compile(r"\b(bearer)\s+(?!(?:realm|scope|error|error_description|error_uri)=)[A-Za-z0-9._~+/-]+=*",
                     re.IGNORECASE)
_BASIC = re.compile(r"\b(basic)\s+([A-Za-z0-9+/]+={0,2})", re.IGNORECASE)
# A JSON member whose value is a string, possibly cut off by the body cap.
_JSON_MEMBER = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)"(?:[^"\\]|\\.)*"?')
_FORM_PAIR = re.compile(r"(^|&)([^=&]*)=([^&]*)")
_ORG_PREFIX = "/organizations/"

_SECRET_NAMES = frozenset({"secret", "password", "passphrase", "token", "accesstoken", "refreshtoken",
                           "idtoken", "bearertoken", "authtoken", "apitoken", "apisecret", "privatekey",
                           "authorization", "credential"})
_SECRET_HEADER = re.compile(r"token|secret|password|cookie|api-?key|signature|authorization")

HEADER_CODEC = "latin-1"  # how HTTP/1.1 carries bytes in header values


@functools.lru_cache(maxsize=4096)  # the same few names come again and again
def is_secret_name(name: str) -> bool:
    """A field, query parameter or form key whose value is a credential, by its name in any
    of the usual spellings (``clientSecret``, ``client_secret``, ``client-secret``)."""
    key = name.replace("_", "").replace("-", "").lower()
    return key in _SECRET_NAMES or key.endswith(("secret", "password"))


def org_of(path: str) -> str | None:
    """The organization an m3ter API path addresses (``/organizations/{orgId}/...``)."""
    if not path.startswith(_ORG_PREFIX):
        return None
    org = path[len(_ORG_PREFIX):].split("/", 1)[0]
    return org or None


# -- redaction -------------------------------------------------------------------------------

def _basic(match: re.Match) -> str:
    # Only a real Basic credential (base64 of "id:secret"): "Basic plan" is not one.
    try:
        decoded = base64.b64decode(match.group(2), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return match.group(0)
    if ":" not in decoded or not decoded.isprintable():
        return match.group(0)
    return f"{match.group(1)} {REDACTED}"


def redact_string(text: str) -> str:
    """A free-standing value: URL tokens and ``Bearer``/``Basic`` credentials hidden."""
    if "/_mock/" in text:
        text = _URL_TOKEN.sub(r"\1" + REDACTED, text)
    lowered = text.lower()
    if "bearer" in lowered:
        text = _BEARER.sub(r"\1 " + REDACTED, text)
    if "basic" in lowered:
        text = _BASIC.sub(_basic, text)
    return text


def redact_json(value):
    """A parsed JSON value with every secret-named member's value and every credential in a
    string hidden (a null or empty secret is left as it is: there is nothing to hide)."""
    if isinstance(value, dict):
        return {key: (REDACTED if is_secret_name(key) and value[key] not in (None, "")
                      else redact_json(value[key])) for key in value}
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, str):
        return redact_string(value)
    return value


def _json_member(match: re.Match) -> str:
    if is_secret_name(match.group(1)):
        return f'"{match.group(1)}"{match.group(2)}"{REDACTED}"'
    return match.group(0)


def _form_pair(match: re.Match) -> str:
    if is_secret_name(unquote_plus(match.group(2))):
        return f"{match.group(1)}{match.group(2)}={REDACTED}"
    return match.group(0)


def redact_text(text: str, form: bool = False) -> str:
    """A body that is not (or no longer, once cut) a JSON document: secret-named JSON members
    and, for a form body, secret-named pairs hidden, besides what ``redact_string`` hides."""
    text = redact_string(text)
    if '"' in text:
        text = _JSON_MEMBER.sub(_json_member, text)
    if form:
        text = _FORM_PAIR.sub(_form_pair, text)
    return text


def headers_view(raw_headers) -> dict[str, str]:
    """ASGI headers (lower-case byte pairs) as a map; repeated headers joined with ", "."""
    view: dict[str, str] = {}
    for raw_name, raw_value in raw_headers or ():
        name = raw_name.decode(HEADER_CODEC).lower()
        value = raw_value.decode(HEADER_CODEC)
        if name in ("authorization", "proxy-authorization"):
            scheme, _, credential = value.strip().partition(" ")
            value = f"{scheme} {REDACTED}" if credential else REDACTED
        elif _SECRET_HEADER.search(name):
            value = REDACTED
        else:
            value = redact_string(value)
        view[name] = f"{view[name]}, {value}" if name in view else value
    return view


def query_view(raw_query: bytes) -> dict[str, list[str]]:
    """The query string as a map of each name to its values, in the order sent."""
    view: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw_query.decode(HEADER_CODEC), keep_blank_values=True):
        view.setdefault(name, []).append(REDACTED if is_secret_name(name) and value else redact_string(value))
    return view


def body_view(chunks: list[bytes], size: int, content_type: str | None) -> tuple[object, bool]:
    """(the body as shown, whether it was cut). A whole JSON body is shown as JSON; anything
    else, or a body cut at ``BODY_LIMIT``, as text; no body as None."""
    if not size:
        return None, False
    data = b"".join(chunks)
    truncated = size > len(data)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    text = data.decode("utf-8", errors="replace")
    if not truncated and (media.endswith("json") or media == "" and text[:1] in "{["):
        try:
            return redact_json(json.loads(text)), False
        except (ValueError, RecursionError):  # not JSON after all, or nested past Python's stack
            pass
    return redact_text(text, form=media == "application/x-www-form-urlencoded"), truncated


def content_type_of(raw_headers) -> str | None:
    for name, value in raw_headers or ():
        if name == b"content-type":
            return value.decode(HEADER_CODEC)
    return None


# -- filters ---------------------------------------------------------------------------------

_STATUS = re.compile(r"^([1-5])([0-9]{2}|xx)$")


@dataclass(frozen=True)
class JournalFilter:
    """What a journal read selects; None matches everything. ``status`` is a code (``404``)
    or a class (``4xx``); ``since`` is inclusive, ``until`` exclusive, on the mock's clock."""

    org_id: str | None = None
    operation_id: str | None = None
    status: str | None = None
    method: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self):
        if self.status is not None and not _STATUS.match(self.status):
            raise ValueError(f"status: {self.status!r} is neither a status code (404) nor a class (4xx)")
        if self.method is not None:
            object.__setattr__(self, "method", self.method.upper())

    def fingerprint(self) -> dict:
        """The filters as plain values, to bind a page cursor to them."""
        return {"orgId": self.org_id, "operationId": self.operation_id, "status": self.status,
                "method": self.method, "since": self.since and self.since.isoformat(),
                "until": self.until and self.until.isoformat()}

    def status_matches(self, status: int | None) -> bool:
        if self.status is None:
            return True
        if not status:
            return False
        text = str(status)
        return text == self.status or (self.status.endswith("xx") and text[0] == self.status[0])

    def time_matches(self, at: datetime) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)
