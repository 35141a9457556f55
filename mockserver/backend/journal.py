"""The request journal: every m3ter API request the mock answered, newest ``retain_journal``
kept (the oldest dropped first), for a test to check what its client sent and got.

Recording is on the request's path, so it does as little as it can: an entry keeps the
references the server handed over (the header lists, the body chunks up to ``BODY_LIMIT``
bytes each way) and two numbers; the organization and the operationId are worked out when
first asked for, and decoding, redaction and serialisation happen only when the journal is
read (``mockserver.domain.journal``). The raw bytes live in this process's memory only:
they are never written anywhere, and every read hides the credentials in them again.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import deque
from datetime import datetime
from typing import Callable

from mockserver.domain import journal as rules
from mockserver.domain.clock import Clock, isoformat
from mockserver.domain.journal import BODY_LIMIT, JournalFilter

_UNRESOLVED = object()


class JournalEntry:
    """One request, filled in as it is answered."""

    __slots__ = ("seq", "at", "method", "path", "query", "request_headers", "request_chunks",
                 "request_size", "status", "response_headers", "response_chunks", "response_size",
                 "duration", "_org", "_operation")

    def __init__(self, at: datetime, scope: dict):
        self.seq = 0
        self.at = at
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string") or b""
        self.request_headers = scope.get("headers")
        self.request_chunks: list[bytes] = []
        self.request_size = 0
        self.status = 0
        self.response_headers = None
        self.response_chunks: list[bytes] = []
        self.response_size = 0
        self.duration = 0.0
        self._org = _UNRESOLVED
        self._operation = _UNRESOLVED

    def wrap_receive(self, receive):
        """``receive``, keeping what the app reads of the body (the app decides how much it
        reads: a request refused before its body was read has none)."""
        async def receive_():
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body")
                if body:
                    self.request_size = _keep(self.request_chunks, self.request_size, body)
            return message

        return receive_

    def sent(self, message: dict) -> None:
        """Called with each message of the response."""
        if message["type"] == "http.response.body":
            body = message.get("body")
            if body:
                self.response_size = _keep(self.response_chunks, self.response_size, body)
        elif message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_headers = message.get("headers")

    # -- derived when first asked for ----------------------------------------------------
    @property
    def org_id(self) -> str | None:
        if self._org is _UNRESOLVED:
            self._org = rules.org_of(self.path)
        return self._org

    def operation_id(self, resolve: Callable[[str, str], str | None]) -> str | None:
        if self._operation is _UNRESOLVED:
            self._operation = resolve(self.method, self.path)
        return self._operation

    def view(self, resolve: Callable[[str, str], str | None]) -> dict:
        """The entry as the admin API shows it, with every credential hidden."""
        request_body, request_cut = rules.body_view(self.request_chunks, self.request_size,
                                                    rules.content_type_of(self.request_headers))
        response_body, response_cut = rules.body_view(self.response_chunks, self.response_size,
                                                      rules.content_type_of(self.response_headers))
        return {
            "sequence": self.seq,
            "time": isoformat(self.at),
            "orgId": self.org_id,
            "operationId": self.operation_id(resolve),
            "method": self.method,
            "path": rules.redact_string(self.path),
            "query": rules.query_view(self.query),
            "status": self.status or None,
            "durationMs": round(self.duration * 1000, 3),
            "request": {"headers": rules.headers_view(self.request_headers), "body": request_body,
                        "bodyBytes": self.request_size, "bodyTruncated": request_cut},
            "response": {"headers": rules.headers_view(self.response_headers), "body": response_body,
                         "bodyBytes": self.response_size, "bodyTruncated": response_cut},
        }


def _keep(chunks: list[bytes], size: int, body: bytes) -> int:
    """Adds a chunk to what is kept (the chunk itself when it fits: no copy; else the part
    that fits) and returns the body's size so far."""
    if size < BODY_LIMIT:  # pragma: no mutate  "<=": at the limit the chunk kept is b""
        room = BODY_LIMIT - size
        chunks.append(body if len(body) <= room else body[:room])  # pragma: no mutate  "<": body[:room] is the same bytes
    return size + len(body)


def _no_operations(method: str, path: str) -> str | None:
    return None


class RequestJournal:
    def __init__(self, clock: Clock, retain: int):
        self.clock = clock
        self.retain = retain
        self._entries: deque[JournalEntry] = deque(maxlen=max(retain, 1))
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        # (method, path) -> operationId; the HTTP layer sets it (it knows the routes).
        self.resolve_operation: Callable[[str, str], str | None] = _no_operations

    @property
    def enabled(self) -> bool:
        return self.retain > 0

    def start(self, scope: dict) -> JournalEntry:
        return JournalEntry(self.clock.now(), scope)

    def record(self, entry: JournalEntry, duration: float) -> None:
        """Adds an answered request (the oldest entry goes when the journal is full)."""
        entry.duration = duration
        with self._lock:
            entry.seq = next(self._seq)
            self._entries.append(entry)

    # -- reading -------------------------------------------------------------------------
    def _snapshot(self) -> list[JournalEntry]:
        with self._lock:
            return list(self._entries)

    def _matches(self, entry: JournalEntry, selected: JournalFilter) -> bool:
        return ((selected.org_id is None or entry.org_id == selected.org_id)
                and (selected.method is None or entry.method == selected.method)
                and selected.status_matches(entry.status)
                and selected.time_matches(entry.at)
                and (selected.operation_id is None
                     or entry.operation_id(self.resolve_operation) == selected.operation_id))

    def page(self, selected: JournalFilter, size: int, after: int | None = None) -> tuple[list[dict], int | None]:
        """Up to ``size`` matching entries after sequence number ``after``, oldest first, and
        the sequence number to continue after (None on the last page)."""
        entries = self._snapshot()
        start = 0 if after is None else bisect.bisect_right(entries, after, key=lambda e: e.seq)
        found: list[JournalEntry] = []
        for index in range(start, len(entries)):
            entry = entries[index]
            if self._matches(entry, selected):
                if len(found) == size:
                    return [e.view(self.resolve_operation) for e in found], found[-1].seq
                found.append(entry)
        return [e.view(self.resolve_operation) for e in found], None

    def count(self, selected: JournalFilter) -> int:
        return sum(1 for entry in self._snapshot() if self._matches(entry, selected))

    def clear(self, org_id: str | None = None) -> int:
        """Forgets every entry (or one organization's); returns how many went."""
        with self._lock:
            before = len(self._entries)
            if org_id is None:
                self._entries.clear()
            else:
                kept = [entry for entry in self._entries if entry.org_id != org_id]
                self._entries.clear()
                self._entries.extend(kept)
            return before - len(self._entries)
