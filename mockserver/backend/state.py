"""Named snapshots of the store, the state file, and the reset of one organization.

**Snapshots.** A snapshot holds a copy of one organization, or of the whole store (every
organization and the store's global space: download and upload URLs), taken under the store
lock so it is one consistent moment. Collections are kept pickled (compact, and pickling is
several times faster than ``copy.deepcopy`` of plain dicts); ``Organization.tables`` (the
measurements) are deep-copied, which shares the immutable measurements. Restoring puts a
fresh copy in place, so a snapshot can be restored any number of times. Ids, versions,
creation order (so list pages and ``nextToken`` cursors) come back as they were. At most
``settings.max_snapshots`` are kept; one more is refused (a 409), never made room for by
dropping one a test may rely on. Snapshots live in memory only, beside the store: a reset
leaves them, and they are not written to the state file.

**The workers' queued work is not state.** What the workers hold (an export schedule's next
fire, a bill job's next step, an uploaded file waiting to be processed, a statement job, a
webhook delivery waiting for its retry) refers to the state it was queued for. So a restore
(or a reset of one organization) first drops the queued work of the organizations it
replaces and waits for running work to finish, as a reset does; then each service queues
again what the restored state implies, counted from now (the clock is not part of a
snapshot and never goes back): each schedule fires next at its first time after now, a
PENDING job runs after its usual delay, a RUNNING bill job goes on from where it stood, an
export job not finished runs from the start. Deliveries waiting to be sent or retried are
dropped, as a reset drops them. Loading the state file at start-up resumes the same way.

**The state file** (``--state-file PATH``): the whole store, loaded at start-up and saved
``settings.state_save_delay_seconds`` after the first unsaved change (the HTTP layer reports
every request that may change state, the workers every item they ran) and at shutdown. A
save writes a temporary file beside PATH (mode 0600: the store holds webhook secrets) and
renames it over PATH (``os.replace``), so PATH is always a whole file, the old or the new.
The file starts with a line naming the format and a JSON header with the payload's length
and SHA-256, then the payload (pickles of the collections and tables); a file that does not
start so, is cut short, or whose checksum does not match is refused at start-up with an
error naming it, and left as it is. It is unpickled with an allow-list of types (the store's
own classes, dates, decimals, sorted containers): a state file cannot name a function to
call. A file changed by something else since the mock last read or wrote it is not
overwritten: saving stops, and says so in the log.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import gc
import hashlib
import importlib
import io
import json
import logging
import os
import pickle
import re
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError

from .store import Collection, Organization

log = logging.getLogger("m3ter_mock")

FORMAT = 1
MAGIC = b"m3ter-mock state file\n"
PROTOCOL = pickle.HIGHEST_PROTOCOL
NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")  # openapi/admin.yaml says the same
SETTLE_SECONDS = 10  # the longest a restore waits for running work, as a reset does
USAGE_TABLE = "usage"  # mockserver.backend.usage.TABLE: counted as measurements


class StateFileError(Exception):
    """The state file cannot be used; the message names it and says why."""


# -- copies ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _no_gc():
    """Pickling a large store allocates millions of objects that all survive, which makes the
    cyclic garbage collector run again and again for nothing: off meanwhile, half the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class _OrgImage:
    collections: bytes  # pickle of {name: Collection}
    tables: dict  # a deep copy of Organization.tables

    def organization(self, org_id: str) -> Organization:
        """A fresh, independent copy."""
        org = Organization(org_id)
        org.collections = pickle.loads(self.collections)
        org.tables = copy.deepcopy(self.tables)
        return org


def _image(org: Organization) -> _OrgImage:
    return _OrgImage(pickle.dumps(org.collections, PROTOCOL), copy.deepcopy(org.tables))


def _counts(orgs: Iterable[Organization]) -> tuple[int, int]:
    """(items in collections, measurements) of the organizations."""
    items = measurements = 0
    for org in orgs:
        items += sum(len(c) for c in org.collections.values())
        measurements += getattr(org.tables.get(USAGE_TABLE), "count", 0)
    return items, measurements


@dataclass
class Snapshot:
    name: str
    org_id: str | None  # None: the whole store
    taken_at: datetime
    images: dict[str, _OrgImage]  # by organization; an organization absent here was empty
    items: int
    measurements: int

    def view(self) -> dict:
        shown: dict[str, Any] = {"name": self.name, "scope": "store" if self.org_id is None else "organization"}
        if self.org_id is not None:
            shown["orgId"] = self.org_id
        shown.update(takenAt=isoformat(self.taken_at), organizations=len([o for o in self.images if o]),
                     items=self.items, measurements=self.measurements)
        return shown


# -- the state file --------------------------------------------------------------------------

# What a state file may name besides the store's own classes: data types only, no callable
# that does anything when called.
_ALLOWED = {
    ("builtins", name) for name in ("set", "frozenset", "bytearray", "complex", "slice", "range", "list",
                                    "dict", "tuple", "bytes", "str", "int", "float", "bool", "object")
} | {("datetime", name) for name in ("datetime", "date", "time", "timedelta", "timezone")} | {
    ("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID"), ("collections", "OrderedDict"),
    ("collections", "deque"), ("collections", "defaultdict"), ("operator", "attrgetter"),
    ("operator", "itemgetter"), ("copyreg", "_reconstructor"),
}
_OWN_PACKAGES = ("mockserver.backend.", "mockserver.domain.", "sortedcontainers.")


class _StateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.startswith(_OWN_PACKAGES):
            found = getattr(importlib.import_module(module), name, None)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"it names {module}.{name}, which is not a type a state file may hold")


def _safe_loads(data: bytes):
    return _StateUnpickler(io.BytesIO(data)).load()


def _encode(orgs: dict[str, tuple[bytes, dict]], saved_at: datetime) -> tuple[bytes, bytes]:
    """(header, payload) of a state file holding these organizations (pickled collections,
    tables as they are)."""
    with _no_gc():
        payload = pickle.dumps({org_id: (collections, pickle.dumps(tables, PROTOCOL))
                                for org_id, (collections, tables) in orgs.items()}, PROTOCOL)
    header = json.dumps({"format": FORMAT, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
                         "savedAt": isoformat(saved_at), "organizations": len(orgs)}).encode() + b"\n"
    return MAGIC + header, payload


def write_state_file(path: Path, header: bytes, payload: bytes) -> None:
    """Write atomically: a temporary file beside ``path``, flushed to disk, then renamed over
    it. Whatever fails on the way, ``path`` is left as it was and the temporary file is gone."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(header)
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself, on disk (not every system allows this)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_state_file(path: str | Path) -> dict[str, Organization] | None:
    """The organizations a state file holds; None when there is no file yet. Anything else
    that is not a whole state file written by this format is a StateFileError naming the
    file; the file is never changed here."""
    path = Path(path)
    shown = f"state file {str(path)!r}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise StateFileError(f"{shown}: its directory does not exist") from None
        return None
    except IsADirectoryError:
        raise StateFileError(f"{shown}: is a directory, not a file") from None
    except OSError as error:
        raise StateFileError(f"{shown}: cannot be read ({error.strerror or error})") from None
    kept = "; it was left as it is (move it away to start afresh)"
    if not data.startswith(MAGIC):
        what = "is empty" if not data else "does not start with the m3ter-mock state file header"
        raise StateFileError(f"{shown}: {what}, so it is not a state file this mock wrote{kept}")
    end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC):end]) if end != -1 else None
        form, size, digest = header["format"], header["bytes"], header["sha256"]
    except (ValueError, TypeError, KeyError):
        raise StateFileError(f"{shown}: its header is damaged{kept}") from None
    if form != FORMAT:
        raise StateFileError(f"{shown}: written in format {form!r}; this m3ter-mock reads format {FORMAT}{kept}")
    payload = data[end + 1:]
    if len(payload) != size:
        raise StateFileError(f"{shown}: is cut short or has bytes added ({len(payload)} bytes of data, its header "
                             f"says {size}){kept}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise StateFileError(f"{shown}: is damaged (its data does not match its checksum){kept}")
    try:
        with _no_gc():
            orgs = {}
            for org_id, (collections, tables) in _safe_loads(payload).items():
                org = Organization(org_id)
                org.collections, org.tables = _safe_loads(collections), _safe_loads(tables)
                if not (isinstance(org_id, str) and isinstance(org.tables, dict) and isinstance(org.collections, dict)
                        and all(isinstance(c, Collection) for c in org.collections.values())):
                    raise ValueError("its data is not a store")
                orgs[org_id] = org
    except Exception as error:  # whatever the payload holds, start-up says why and stops
        raise StateFileError(f"{shown}: cannot be loaded ({error}){kept}") from None
    return orgs


def _identity(path: Path) -> tuple | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


class StateFile:
    """Saves the store to one path, after changes (see the module's docstring) and at close."""

    def __init__(self, service: "StateService", path: Path, delay_seconds: float):
        self._service = service
        self.path = path
        self._delay = max(0.0, delay_seconds)
        self._cond = threading.Condition()
        self._dirty_since: float | None = None  # time.monotonic() of the first unsaved change
        self._in_save = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._saving = threading.Lock()  # one save at a time
        self._seen = _identity(path)  # the file as the mock last read or wrote it
        self.saves = 0
        self.stopped: str | None = None  # why saving stopped (the file was changed by something else)
        self._last_problem: str | None = None

    def changed(self) -> None:
        with self._cond:
            self._mark()

    def _mark(self) -> None:
        """With the condition held: there is something to save."""
        if self._closed or self._dirty_since is not None:
            return
        self._dirty_since = time.monotonic()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="m3ter-mock-state-file", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    @property
    def dirty(self) -> bool:
        with self._cond:
            return self._dirty_since is not None

    def wait_saved(self, timeout: float = 30.0) -> bool:  # pragma: no mutate: the bound matters only if a save hangs
        """Block until every change so far is saved (True), or the timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._dirty_since is None and not self._in_save, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._dirty_since is None
                                            or time.monotonic() < self._dirty_since + self._delay):
                    wait = None if self._dirty_since is None else self._dirty_since + self._delay - time.monotonic()
                    self._cond.wait(wait)
                if self._closed:
                    return
            self.flush()

    def flush(self) -> bool:
        """Save now if anything changed since the last save; True when the file was written."""
        return self._write(only_if_changed=True)

    def save(self) -> bool:
        """Save now, changed or not."""
        return self._write(only_if_changed=False)

    def _write(self, only_if_changed: bool) -> bool:
        with self._saving:
            with self._cond:
                if only_if_changed and self._dirty_since is None:
                    return False
                self._dirty_since = None  # a change from now on is saved by the next save
                self._in_save = True
            written = False
            try:
                written = self._save()
            finally:
                with self._cond:
                    self._in_save = False
                    if not written and self.stopped is None:
                        self._mark()  # it failed: try again after the delay
                    self._cond.notify_all()
            return written

    def _save(self) -> bool:
        if self.stopped is not None:
            return False
        current = _identity(self.path)
        if current is not None and current != self._seen:
            self.stopped = (f"state file {str(self.path)!r} was changed by something else since this mock last read "
                            f"or wrote it; it is not overwritten, and the mock's state is no longer saved")
            log.error(self.stopped)  # a message without arguments is logged as it is (no %-formatting)
            return False
        started = time.perf_counter()
        try:
            header, payload = _encode(self._service.capture_for_file(), self._service.backend.clock.now())
            write_state_file(self.path, header, payload)
        except OSError as error:
            problem = f"state file {str(self.path)!r} could not be saved ({error.strerror or error}); kept as it was"
            if problem != self._last_problem:  # once per kind of failure, not once a second
                log.warning(problem)
            self._last_problem = problem
            return False
        self._seen = _identity(self.path)
        self._last_problem = None
        self.saves += 1
        log.debug("state file saved: %d bytes in %.0f ms", len(header) + len(payload),
                  (time.perf_counter() - started) * 1000)
        return True

    def close(self) -> None:
        """Stop the background saver and save the store one last time (changed or not: a GET
        that handed out a download URL counts as no change while serving)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)  # pragma: no mutate: the saver ends at once when closed; this bounds a hang
        if self.save():
            log.info("state saved to %r", str(self.path))


# -- the service -----------------------------------------------------------------------------

class StateService:
    def __init__(self, backend):
        self.backend = backend
        self._snapshots: dict[str, Snapshot] = {}  # oldest first
        self._lock = threading.Lock()
        self.file: StateFile | None = None
        for worker in backend.workers():
            worker.add_done_listener(self.changed)

    def changed(self) -> None:
        """Something may have changed the store (a request, a worker's item): save it soon."""
        if self.file is not None:
            self.file.changed()

    # -- snapshots -------------------------------------------------------------------------
    def take(self, name: str, org_id: str | None = None) -> dict:
        """Snapshot one organization (``org_id``), or the whole store; a snapshot of the same
        name is replaced."""
        if not NAME.match(name or ""):
            raise MockError.bad_request(f"name: {name!r} is not a snapshot name (1-64 letters, digits, '_', '-' "
                                        f"or '.', not starting with '.')")
        org_id = org_id or None
        self._check_room(name)
        store = self.backend.store
        with store.lock, _no_gc():
            ids = store.org_ids() if org_id is None else [org_id]
            orgs = [org for org in (store.existing(i) for i in ids) if org is not None]
            images = {org.org_id: _image(org) for org in orgs}
            items, measurements = _counts(orgs)
            taken = Snapshot(name, org_id, self.backend.clock.now(), images, items, measurements)
        with self._lock:
            self._check_room(name)
            self._snapshots.pop(name, None)
            self._snapshots[name] = taken
        return taken.view()

    def _check_room(self, name: str) -> None:
        limit = self.backend.settings.max_snapshots
        if name not in self._snapshots and len(self._snapshots) >= limit:
            raise MockError.conflict(f"name: {limit} snapshots are kept already, the most there may be; delete one "
                                     f"(DELETE /_mock/snapshots/{{name}}) or reuse a name")

    def list(self) -> list[dict]:
        with self._lock:
            return [s.view() for s in self._snapshots.values()]

    def _find(self, name: str) -> Snapshot:
        with self._lock:
            found = self._snapshots.get(name)
        if found is None:
            raise MockError.not_found(f"No snapshot named {name!r}")
        return found

    def delete(self, name: str) -> dict:
        with self._lock:
            found = self._snapshots.pop(name, None)
        if found is None:
            raise MockError.not_found(f"No snapshot named {name!r}")
        return found.view()

    def restore(self, name: str) -> dict:
        """Put the snapshot's state back: the whole store, or its one organization (the others
        are left alone). See the module's docstring for the queued work."""
        snapshot = self._find(name)
        with _no_gc():
            orgs = {org_id: image.organization(org_id) for org_id, image in snapshot.images.items()}
        scope = None if snapshot.org_id is None else {snapshot.org_id}
        self._settle(scope)
        store = self.backend.store
        with store.lock:
            self.drop_work(scope)  # queued while settling
            if scope is None:
                store.replace_all(orgs)
            else:
                store.replace_org(snapshot.org_id, orgs.get(snapshot.org_id))
            self._resume(store.org_ids() if scope is None else scope)
        self.changed()
        return snapshot.view()

    def reset_organization(self, org_id: str) -> None:
        """Empty one organization and drop its queued work; the others, the clock and the
        snapshots are left alone."""
        self._settle({org_id})
        with self.backend.store.lock:
            self.drop_work({org_id})
            self.backend.store.replace_org(org_id, None)
        self.changed()

    def put_back(self, orgs: dict[str, Organization | None]) -> None:
        """Put these organizations in place (None: the organization goes), as a restore of
        one does: their queued work is dropped and what is running let finish first, then
        what their state implies is queued again."""
        org_ids = set(orgs)
        self._settle(org_ids)
        with self.backend.store.lock:
            self.drop_work(org_ids)  # queued while settling
            for org_id, org in orgs.items():
                self.backend.store.replace_org(org_id, org)
            self._resume(org_ids)

    # -- the workers -----------------------------------------------------------------------
    def drop_work(self, org_ids: set[str] | None) -> None:
        """The queued work of these organizations (None: of all) goes."""
        deliveries = self.backend.deliveries
        for worker in self.backend.workers():
            if org_ids is None:
                worker.clear()
            elif worker is deliveries.queue:
                deliveries.discard(org_ids)
            else:
                worker.discard(lambda item: getattr(item, "org_id", None) in org_ids)

    def _settle(self, org_ids: set[str] | None) -> None:
        """Drop the queued work and let what is running finish (the store lock is not held:
        the running work needs it)."""
        self.drop_work(org_ids)
        for worker in self.backend.workers():
            worker.wait_idle(timeout=SETTLE_SECONDS)

    def _resume(self, org_ids: Iterable[str]) -> None:
        """Each service queues again what the organizations' state implies."""
        backend = self.backend
        for org_id in org_ids:
            if not org_id:
                continue  # the store's global space holds no organization's work
            backend.exports.resume(org_id)
            backend.bill_runs.resume(org_id)
            backend.usage.resume(org_id)
            backend.billing.resume(org_id)

    # -- the state file --------------------------------------------------------------------
    def open_file(self, path: str | Path, loaded: dict[str, Organization] | None = None) -> StateFile:
        """Save to ``path`` from now on. ``loaded`` (``read_state_file(path)``, read before the
        app was built so that a bad file stops start-up at once) is put in place first."""
        path = Path(path)
        if not os.access(path.parent, os.W_OK):
            raise StateFileError(f"state file {str(path)!r}: its directory cannot be written to")
        if loaded:
            with self.backend.store.lock:
                self.backend.store.replace_all(loaded)
                self._resume(loaded)
        items, measurements = _counts((loaded or {}).values())
        log.info("state file %r: %s", str(path),
                 f"loaded {len([o for o in loaded if o])} organization(s), {items} item(s), {measurements} "
                 f"measurement(s)" if loaded is not None else "not there yet; it is written after the first change")
        self.file = StateFile(self, path, self.backend.settings.state_save_delay_seconds)
        # A served mock saves at shutdown (the app's lifespan closes it); this covers an app built
        # in Python and left open.
        atexit.register(_close_at_exit, weakref.ref(self.file))
        return self.file

    def capture_for_file(self) -> dict[str, tuple[bytes, dict]]:
        """The whole store for the state file: collections pickled under the lock, tables
        deep-copied (cheap) and pickled by the caller without it."""
        store = self.backend.store
        with store.lock, _no_gc():
            return {org_id: (pickle.dumps(org.collections, PROTOCOL), copy.deepcopy(org.tables))
                    for org_id, org in ((i, store.existing(i)) for i in store.org_ids()) if org is not None}

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _close_at_exit(ref) -> None:  # pragma: no mutate block - runs at interpreter exit only (tested in a child)
    found = ref()
    if found is not None:
        found.close()
