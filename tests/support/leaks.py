"""Secrets the tests hand to the mock, and what finds them in a log.

A test (or a fixture) ``remember``s every secret it gives the mock *before* sending it:
client secrets, webhook credential secrets, admin tokens. ``found_in(text)`` then names each
form of a secret that the text contains:

* a remembered value, raw or base64-encoded;
* an HTTP Basic credential (``Basic`` + base64 of ``id:secret``), whoever's it is;
* a bearer token of the mock's own shape (``m3mock.<claims>.<signature>``), whichever it is,
  so tokens need no remembering.

``LeakWatch`` is a logging handler that applies ``found_in`` to every record it sees (message,
exception text and stack), and looks for the word "secret" too (the tests name their throwaway
secrets so), and keeps a line per leak, with the secret masked. tests/conftest.py
puts one on the root logger for the whole run and lowers the root and ``m3ter_mock`` loggers
to DEBUG during every test under tests/, so a leak at any level fails the run.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading

# Shorter values (the "k" and "s" of throwaway credentials) would match everywhere.
MIN_LENGTH = 6

BEARER = re.compile(r"m3mock\.[A-Za-z0-9_-]{4,}\.[0-9a-f]{32}")
BASIC = re.compile(r"Basic\s+([A-Za-z0-9+/]{4,}={0,2})")

# Loggers of the client side, not the mock: the m3ter SDK logs its own request options
# (with its Basic header) at DEBUG, and httpx logs each URL the tests' clients (the
# in-process test client, the SDK, httpx.Client) request, query string included. The mock
# itself never logs through either (its deliveries use httpcore, which logs no URL or header).
CLIENT_LOGGERS = ("m3ter", "httpx")

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern | None = None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def remember(*values: str | None) -> None:
    """Secrets that must never reach a log (values shorter than MIN_LENGTH are skipped)."""
    global _pattern
    added = False
    with _lock:
        for value in values:
            if not value or len(value) < MIN_LENGTH:
                continue
            for form in (value, _b64(value), _b64(value).rstrip("=")):
                if form not in _values:
                    _values.add(form)
                    added = True
        if added:
            _pattern = None


def remember_client(client_id: str, secret: str) -> None:
    """A client's secret and the value of its Basic header."""
    remember(secret, _b64(f"{client_id}:{secret}"))


def _compiled() -> re.Pattern | None:
    global _pattern
    with _lock:
        if _pattern is None and _values:
            _pattern = re.compile("|".join(re.escape(v) for v in sorted(_values, key=len, reverse=True)))
        return _pattern


def _is_basic_credential(candidate: str) -> bool:
    try:
        decoded = base64.b64decode(candidate + "=" * (-len(candidate) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def mask(value: str) -> str:
    return value[:3] + "…" if len(value) > 3 else "…"


def found_in(text: str) -> list[str]:
    """A description (with the secret masked) of each secret ``text`` contains."""
    hits = []
    pattern = _compiled()
    if pattern is not None:
        hits += [f"a remembered secret ({mask(m.group(0))})" for m in pattern.finditer(text)]
    hits += [f"a bearer token ({mask(m.group(0))})" for m in BEARER.finditer(text)]
    hits += [f"a Basic credential ({mask(m.group(1))})" for m in BASIC.finditer(text)
             if _is_basic_credential(m.group(1))]
    return hits


def redact(text: str) -> str:
    """``text`` with every secret ``found_in`` would report replaced by ``…``."""
    pattern = _compiled()
    if pattern is not None:
        text = pattern.sub("…", text)
    text = BEARER.sub("m3mock.…", text)
    return BASIC.sub(lambda m: "Basic …" if _is_basic_credential(m.group(1)) else m.group(0), text)


def is_client_logger(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in CLIENT_LOGGERS)


class LeakWatch(logging.Handler):
    """Keeps one line per log record that carries a secret."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        if is_client_logger(record.name):
            return
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot be formatted still has its parts
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += "\n" + self._formatter.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + record.stack_info
        hits = found_in(text)
        if "secret" in text.lower():
            hits.append("the word 'secret'")
        if hits:
            shown = redact(text.splitlines()[0] if text else "")[:200]
            self.leaks.append(f"{record.name} {record.levelname}: {', '.join(hits)} in {shown!r}")
