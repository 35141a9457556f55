"""The usage store: measurements as they are ingested, and the file upload service.

``UsageStore.submit`` takes a batch of measurements (SubmitMeasurements), checks each one
against its Meter (``mockserver.domain.measurements``), and stores all of them or none: a
batch with an invalid measurement is a 400 naming the first one and its field, records one
``ingest.validation.failure`` Event per invalid measurement, and keeps them, with their
reasons, in a failure file that ``failure_url`` (GetValidationErrorDownloadUrl) serves.
An Account code the organization does not know gets a skeleton Account (name and code the
code), as m3ter does. A measurement whose ``uid`` its Meter already holds is skipped.

``UsageStore.select`` is how the rest of the mock reads usage: the measurements of one
Meter in ``[start_ms, end_ms)``, in ts order (measurements with one ts in the order they
arrived). Each Meter has an index sorted by ts, and one per Account, so a narrow period or
one Account never walks the rest.

File uploads: ``upload_url`` (GenerateUploadUrl) makes a job (``notUploaded``) and a URL
under ``/_mock/uploads/`` valid for one minute; the file PUT there is kept as the job's
original file, and the job (``running``) is processed on this module's worker one second
later on the mock's clock: each valid measurement is stored, each invalid one counted as
failed (with its Event and a failure file), then ``succeeded``, or ``failed`` when none
could be stored. ``jobs``/``job``/``original_url`` are ListJobs, GetUploadJobResponse and
GetJobOriginalFileDownloadUrl.

State, all in the one store (so snapshot, restore and reset cover it):

* the measurements: the organization's ``tables["usage"]`` (a ``UsageTable``);
* ``measurementuploadjobs``: the upload jobs; ``measurementuploadfiles``: their original
  files, the newest ``retain_export_files`` kept; ``ingestfailures``: the failure files,
  the newest ``retain_export_files`` kept;
* upload URLs in the store's global space (``measurementuploads``) until used or expired;
  download URLs in ``backend.downloads``.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from operator import attrgetter

from sortedcontainers import SortedKeyList

from mockserver.domain import measurements as rules
from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.measurements import Measurement, MeterSchema
from mockserver.domain.pagination import ListScope

from .crud import Caller
from .downloads import purge_expired
from .worker import DueWorker

TABLE = "usage"  # the organization's table of measurements (``Organization.tables``)
JOBS = "measurementuploadjobs"
FILES = "measurementuploadfiles"
FAILURES = "ingestfailures"
GLOBAL = ""  # the store's global space: an upload URL's token is not tied to a path's organization
UPLOADS = "measurementuploads"
UPLOAD_PATH = "/_mock/uploads/"
DOWNLOAD_OWNER = "usage"  # the owner of this module's grants in ``backend.downloads``

UPLOAD_LIFETIME = timedelta(minutes=1)  # m3ter: an upload URL is valid for one minute
FAILURE_URL_LIFETIME = timedelta(minutes=5)  # m3ter: a failed ingest file URL expires after 5 minutes
ORIGINAL_URL_LIFETIME = timedelta(minutes=15)
PROCESSING_TIME = timedelta(seconds=1)  # an uploaded file is processed this long after the upload
FAILURE_EVENT = "ingest.validation.failure"
FAILURE_URL_PATH = "/measurements/failedIngest/getDownloadUrl"
JOB_FIELDS = ("id", "version", "fileName", "uploadDate", "contentLength", "status", "totalRows", "processedRows",
              "failedRows")

_TS = attrgetter("ts")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class _Series:
    """One Meter's measurements: sorted by ts (ties in arrival order), in all and per
    Account code, and the uids it holds."""

    __slots__ = ("rows", "by_account", "uids")

    def __init__(self):
        self.rows = SortedKeyList(key=_TS)
        self.by_account: dict[str, SortedKeyList] = {}
        self.uids: set[str] = set()

    def add(self, batch: list[Measurement]) -> None:
        self.rows.update(batch)
        per_account: dict[str, list[Measurement]] = {}
        for measurement in batch:
            per_account.setdefault(measurement.account, []).append(measurement)
        for account, items in per_account.items():
            index = self.by_account.get(account)
            if index is None:
                index = self.by_account[account] = SortedKeyList(key=_TS)
            index.update(items)

    def copy(self) -> "_Series":
        twin = _Series()
        twin.rows = self.rows.copy()
        twin.by_account = {account: index.copy() for account, index in self.by_account.items()}
        twin.uids = set(self.uids)
        return twin


class UsageTable:
    """An organization's measurements, by Meter id."""

    def __init__(self):
        self.series: dict[str, _Series] = {}
        self.count = 0

    def __deepcopy__(self, memo):
        # Measurements are immutable: a snapshot copies the indexes and shares them.
        twin = UsageTable()
        twin.series = {meter_id: series.copy() for meter_id, series in self.series.items()}
        twin.count = self.count
        return twin


@dataclass(frozen=True)
class ProcessUpload:
    org_id: str
    job_id: str


@dataclass
class _Failure:
    index: int
    raw: object
    error: str
    meter: MeterSchema | None


class UsageStore:
    def __init__(self, backend):
        self.backend = backend
        self.queue = DueWorker(backend.clock, "uploads", self._process_upload)
        # (org, meter code) -> (the Meter entity it was made from, its schema): a Meter is
        # worked out once per version, not once per measurement.
        self._schemas: dict[tuple[str, str], tuple[dict, MeterSchema]] = {}

    # -- where things are ----------------------------------------------------------------
    def _table(self, org_id: str, write: bool = False) -> UsageTable | None:
        store = self.backend.store
        if not write and org_id not in store.org_ids():
            return None  # a read must not create the organization
        tables = store.org(org_id).tables
        table = tables.get(TABLE)
        if table is None and write:
            table = tables[TABLE] = UsageTable()
        return table

    def _collection(self, key: str):
        return self.backend.resources[key].kind.collection

    def _schema(self, org_id: str, code: str) -> MeterSchema | None:
        meters = self.backend.store.peek(org_id, self._collection("meters"))
        meter_id = meters.id_for_code(code)
        if meter_id is None:
            return None
        meter = meters.get(meter_id)
        cached = self._schemas.get((org_id, code))
        if cached is not None and cached[0] is meter:
            return cached[1]
        schema = MeterSchema.of(meter)
        if len(self._schemas) > 10_000:  # pragma: no mutate  a bound on memory: the schemas are made again alike
            self._schemas.clear()
        self._schemas[(org_id, code)] = (meter, schema)
        return schema

    # -- reads ---------------------------------------------------------------------------
    def select(self, org_id: str, meter_id: str, start_ms: int, end_ms: int,
               accounts: Collection[str] | None = None) -> list[Measurement]:
        """The stored measurements of the Meter with ``start_ms <= ts < end_ms``, in ts
        order (a list: the usage engine reads it more than once); ``accounts``: the Account
        codes to keep (None: every Account)."""
        with self.backend.store.lock:
            table = self._table(org_id)
            series = table.series.get(meter_id) if table is not None else None
            if series is None:
                return []
            if end_ms <= start_ms:  # pragma: no mutate  speed only: an empty period's walk is empty as well
                return []
            if accounts is None:
                return list(series.rows.irange_key(start_ms, end_ms, inclusive=(True, False)))
            wanted = accounts if isinstance(accounts, (set, frozenset)) else set(accounts)
            if not wanted:  # pragma: no mutate  speed only: no account is kept by the walk below either
                return []
            if len(wanted) == 1:
                index = series.by_account.get(next(iter(wanted)))
                return list(index.irange_key(start_ms, end_ms, inclusive=(True, False))) if index else []
            # Several Accounts: one walk of the period keeps the arrival order of equal ts.
            return [m for m in series.rows.irange_key(start_ms, end_ms, inclusive=(True, False))
                    if m.account in wanted]

    def count(self, org_id: str) -> int:
        with self.backend.store.lock:
            table = self._table(org_id)
            return table.count if table is not None else 0

    # -- ingest --------------------------------------------------------------------------
    def submit(self, caller: Caller, measurements: list, *, base_url: str = "") -> dict:
        """Store the batch, all or nothing (see the module docstring). ``base_url`` makes
        the failure Events' ``getDownloadUrl`` a full URL."""
        if not isinstance(measurements, list):
            raise MockError.bad_request("measurements: must be an array of measurements")
        if not 1 <= len(measurements) <= rules.MAX_BATCH:
            raise MockError.bad_request(f"measurements: a batch holds 1 to {rules.MAX_BATCH} measurements "
                                        f"(got {len(measurements)})")
        with self.backend.store.lock:
            good, failures = self._read(caller.org_id, measurements)
            if failures:
                self._record_failures(caller, failures, base_url)
                first = failures[0]
                raise MockError.bad_request(
                    f"{first.error}; nothing of this batch was stored ({len(failures)} of {len(measurements)} "
                    f"measurements failed: see the {FAILURE_EVENT} Events)")
            self._store(caller, good)
        return {"result": "accepted"}

    def _read(self, org_id: str, raws: list, paths: list[str] | None = None
              ) -> tuple[list[tuple[Measurement, MeterSchema]], list[_Failure]]:
        """The measurements that pass every check, and the failures (by position in
        ``raws``); ``paths`` names each in messages (default ``measurements[i]``)."""
        schemas: dict[str, MeterSchema | None] = {}

        def schema_for(code: str) -> MeterSchema | None:
            try:
                return schemas[code]
            except KeyError:
                found = schemas[code] = self._schema(org_id, code)
                return found

        good: list[tuple[Measurement, MeterSchema]] = []
        failures: list[_Failure] = []
        read = rules.read
        for index, raw in enumerate(raws):
            try:
                good.append(read(raw, schema_for))
            except rules.Invalid as problem:
                meter = raw.get("meter") if isinstance(raw, dict) else None
                failures.append(_Failure(index, raw, problem.at(paths[index] if paths else f"measurements[{index}]"),
                                         schemas.get(meter) if isinstance(meter, str) else None))
        # An unknown Account code gets a skeleton Account: only a code m3ter allows can name one.
        accounts = self.backend.store.peek(org_id, self._collection("accounts"))
        allowed: dict[str, bool] = {}
        for measurement, _ in good:
            code = measurement.account
            if code not in allowed:
                allowed[code] = accounts.id_for_code(code) is not None or rules.CODE_PATTERN.match(code) is not None
        if all(allowed.values()):  # pragma: no mutate  speed only: with every code allowed, the walk below keeps all
            return good, failures
        kept = [(m, schema) for m, schema in good if allowed[m.account]]
        failed_at = {f.index for f in failures}
        for index, raw in enumerate(raws):
            if index not in failed_at and allowed.get(raw["account"]) is False:
                path = paths[index] if paths else f"measurements[{index}]"
                failures.append(_Failure(index, raw, f"{path}.account: {raw['account']!r} cannot be an Account code "
                                                     f"(control characters, or whitespace at either end)",
                                         schemas.get(raw["meter"])))
        failures.sort(key=lambda f: f.index)
        return kept, failures

    def _store(self, caller: Caller, good: list[tuple[Measurement, MeterSchema]]) -> int:
        """Write measurements that passed every check, but those whose uid the Meter holds;
        returns how many were written. Unknown Account codes get their skeleton Account first."""
        if not good:  # pragma: no mutate  speed only: nothing to write gives 0 below too
            return 0
        org_id = caller.org_id
        accounts = self.backend.store.peek(org_id, self._collection("accounts"))
        missing = dict.fromkeys(m.account for m, _ in good if accounts.id_for_code(m.account) is None)
        for code in missing:
            self.backend.resources["accounts"].create(caller, {"name": code, "code": code})
        table = self._table(org_id, write=True)
        batches: dict[str, list[Measurement]] = {}
        for measurement, schema in good:
            series = table.series.get(schema.meter_id)
            if series is None:
                series = table.series[schema.meter_id] = _Series()
            uid = measurement.uid
            if uid is not None:
                if uid in series.uids:
                    continue
                series.uids.add(uid)
            batches.setdefault(schema.meter_id, []).append(measurement)
        stored = 0
        for meter_id, batch in batches.items():
            table.series[meter_id].add(batch)
            stored += len(batch)
        table.count += stored
        return stored

    # -- failures ------------------------------------------------------------------------
    def _record_failures(self, caller: Caller, failures: list[_Failure], base_url: str) -> str:
        """The failure file of these failures, and one Event per failure; returns the
        file's path (the ``file`` of GetValidationErrorDownloadUrl)."""
        org_id = caller.org_id
        path = f"failedIngest/{uuid.uuid4()}.jsonl"
        lines = [json.dumps({"index": f.index, "error": f.error, "measurement": f.raw}, default=str,
                            separators=(",", ":")) for f in failures]
        files = self.backend.store.collection(org_id, FAILURES)
        files.put({"id": path, "content": ("\n".join(lines) + "\n").encode()})
        files.trim(self.backend.settings.retain_export_files)
        url = f"{base_url.rstrip('/')}/organizations/{org_id}{FAILURE_URL_PATH}?file={path}"
        accounts = self.backend.store.peek(org_id, self._collection("accounts"))
        for failure in failures:
            raw = failure.raw if isinstance(failure.raw, dict) else {}
            new = {"error": failure.error, "measurement": _plain(raw), "getDownloadUrl": url}
            for name, key in (("meterCode", "meter"), ("accountCode", "account"), ("ts", "ts"), ("uid", "uid")):
                if isinstance(raw.get(key), str):
                    new[name] = raw[key]
            if failure.meter is not None:
                new["meterId"] = failure.meter.meter_id
            account_id = accounts.id_for_code(new["accountCode"]) if "accountCode" in new else None
            self.backend.events.record(org_id, FAILURE_EVENT, new=new, resource_id=path, account_id=account_id)
        return path

    def failure_url(self, caller: Caller, file: str | None, base_url: str) -> dict:
        """A download URL (5 minutes) of a failure file: ``file`` as the Events give it,
        or, without it, the organization's newest."""
        with self.backend.store.lock:
            files = self.backend.store.peek(caller.org_id, FAILURES)
            if file is None or file == "":
                if not len(files):
                    raise MockError.not_found("No failed ingest file: no measurement has failed ingest yet")
                file = next(files.scan(newest_first=True))[1]["id"]
            elif files.get(file) is None:
                raise MockError.not_found(f"file: no failed ingest file {file!r} (the path is in the "
                                          f"{FAILURE_EVENT} Event's getDownloadUrl; the newest "
                                          f"{self.backend.settings.retain_export_files} are kept)")
            issued = self.backend.downloads.issue(caller.org_id, DOWNLOAD_OWNER, {"collection": FAILURES, "id": file},
                                                  FAILURE_URL_LIFETIME, base_url)
            return {"url": issued.url}

    def download(self, grant) -> tuple[str, bytes, str]:
        """(file name, bytes, media type) of a live grant this module issued; a 403 once
        its file is no longer kept."""
        with self.backend.store.lock:
            ref = grant.ref
            found = self.backend.store.peek(grant.org_id, ref["collection"]).get(ref["id"])
            if found is None:
                raise MockError(403, "the file of this download URL is no longer kept (newer files replaced it)")
            if ref["collection"] == FAILURES:
                return ref["id"].rsplit("/", 1)[-1], found["content"], "application/x-ndjson"
            # The client named the file: only plain characters go into a response header.
            name = _UNSAFE_NAME.sub("_", found["fileName"]) or "measurements.json"
            return name, found["content"], found["contentType"]

    # -- file uploads --------------------------------------------------------------------
    def _jobs(self, org_id: str, write: bool = False):
        store = self.backend.store
        return store.collection(org_id, JOBS) if write else store.peek(org_id, JOBS)

    def _job(self, caller: Caller, job_id: str) -> dict:
        job = self._jobs(caller.org_id).get(job_id)
        if job is None:
            raise MockError.not_found(f"No file upload job with id {job_id!r}")
        return job

    @staticmethod
    def _view(job: dict) -> dict:
        return {k: job[k] for k in JOB_FIELDS if k in job}

    def upload_url(self, caller: Caller, body: dict, base_url: str) -> dict:
        """A ``notUploaded`` job and the URL (one minute) to PUT its file to."""
        with self.backend.store.lock:
            now = self.backend.clock.now()
            job = {"id": str(uuid.uuid4()), "version": 1, "fileName": body["fileName"],
                   "contentLength": body["contentLength"], "status": "notUploaded", "totalRows": 0,
                   "processedRows": 0, "failedRows": 0, "_created": isoformat(now),
                   "_contentType": body["contentType"], "_clientId": caller.client_id, "_baseUrl": base_url}
            self._jobs(caller.org_id, write=True).put(job)
            token = secrets.token_urlsafe(32)
            grants = self.backend.store.collection(GLOBAL, UPLOADS)
            grants.put({"id": token, "orgId": caller.org_id, "jobId": job["id"], "_expires": now + UPLOAD_LIFETIME})
            purge_expired(grants, now, self.backend.settings.retain_download_grants)
            return {"jobId": job["id"], "url": f"{base_url.rstrip('/')}{UPLOAD_PATH}{token}",
                    "headers": {"Content-Type": body["contentType"]}}

    def owns_upload(self, token: str) -> bool:
        """Whether ``token`` is a measurements upload URL's (live or not yet purged)."""
        with self.backend.store.lock:
            return self.backend.store.peek(GLOBAL, UPLOADS).get(token) is not None

    def receive_upload(self, token: str, content: bytes, content_type: str | None) -> dict:
        """The file PUT to an upload URL: a 403 when the URL is unknown, used or expired, a
        400 when the body is not what the URL was made for (its Content-Type, its length);
        neither touches the job. Otherwise the file is kept and the job is ``running`` until
        the worker processes it. Answers the job."""
        with self.backend.store.lock:
            now = self.backend.clock.now()
            grant = self.backend.store.peek(GLOBAL, UPLOADS).get(token)
            if grant is None or now >= grant["_expires"]:
                raise MockError(403, "this upload URL is not valid, was used or has expired (they last one minute); "
                                     "ask for a new one")
            jobs = self._jobs(grant["orgId"])
            job = jobs.get(grant["jobId"])
            if job is None:
                raise MockError(403, "the upload job of this URL no longer exists")
            sent_type = (content_type or "").split(";")[0].strip().lower()
            if sent_type != job["_contentType"]:
                raise MockError.bad_request(f"Content-Type: this URL takes {job['_contentType']}, as its headers say "
                                            f"(got {sent_type or 'none'})")
            if len(content) != job["contentLength"]:
                raise MockError.bad_request(
                    f"Content-Length: this URL takes a file of {job['contentLength']} bytes (got {len(content)})")
            try:
                _document(content)
            except ValueError as error:
                raise MockError.bad_request(f"body: not valid JSON: {error}") from None
            self.backend.store.collection(GLOBAL, UPLOADS).remove(token)
            files = self.backend.store.collection(grant["orgId"], FILES)
            files.put({"id": job["id"], "fileName": job["fileName"], "content": bytes(content),
                       "contentType": job["_contentType"]})
            files.trim(self.backend.settings.retain_export_files)
            job = {**job, "status": "running", "uploadDate": isoformat(now)}
            self._jobs(grant["orgId"], write=True).put(job)
            self.queue.schedule(ProcessUpload(grant["orgId"], job["id"]), now + PROCESSING_TIME)
            return self._view(job)

    def resume(self, org_id: str) -> None:
        """Queue again the uploaded files the organization's stored state has waiting
        (``running``), each processed one second from now (after a restore or a load: the
        queue is not part of the state)."""
        for job in list(self._jobs(org_id).values()):
            if job["status"] == "running":
                self.queue.schedule(ProcessUpload(org_id, job["id"]), self.backend.clock.now() + PROCESSING_TIME)

    def _process_upload(self, run: ProcessUpload) -> None:
        with self.backend.store.lock:
            job = self._jobs(run.org_id).get(run.job_id)
            file = self.backend.store.peek(run.org_id, FILES).get(run.job_id)
            if job is None or job["status"] != "running":
                return  # the organization was reset (or restored) since the file came
            caller = Caller(run.org_id, job["_clientId"])
            rows, unreadable = _rows(file["content"]) if file is not None else ([], "it is no longer kept")
            failures: list[_Failure] = []
            if unreadable:
                failures.append(_Failure(0, None, f"file: {job['fileName']!r} has no measurements to ingest: "
                                                  f"{unreadable}", None))
            stored = 0
            for start in range(0, len(rows), rules.MAX_BATCH):
                chunk = rows[start:start + rules.MAX_BATCH]
                good, bad = self._read(run.org_id, [raw for _, raw in chunk], [path for path, _ in chunk])
                for failure in bad:
                    failure.index += start
                failures += bad
                self._store(caller, good)
                stored += len(good)
            if failures:
                failures.sort(key=lambda f: f.index)
                self._record_failures(caller, failures, job.get("_baseUrl", ""))
            self._jobs(run.org_id, write=True).put({
                **job, "status": "succeeded" if stored else "failed", "totalRows": len(rows),
                "processedRows": stored, "failedRows": len(rows) - stored})

    def jobs(self, caller: Caller, created_start: str | None, created_end: str | None, page_size: int | None,
             next_token: str | None) -> tuple[list[dict], str | None]:
        """The organization's upload jobs in creation order, created in [start, end)."""
        since = _instant(created_start, "dateCreatedStart")
        until = _instant(created_end, "dateCreatedEnd")

        def matches(job: dict) -> bool:
            created = rules.epoch_ms(job["_created"])
            return (since is None or created >= since) and (until is None or created < until)

        with self.backend.store.lock:
            items, token = self.backend.paginate(
                ListScope(caller.org_id, JOBS, {"dateCreatedStart": since, "dateCreatedEnd": until}),
                self._jobs(caller.org_id), matches, page_size, next_token)
            return [self._view(job) for job in items], token

    def job(self, caller: Caller, job_id: str) -> dict:
        with self.backend.store.lock:
            return self._view(self._job(caller, job_id))

    def original_url(self, caller: Caller, job_id: str, base_url: str) -> dict:
        """A download URL of the file uploaded for the job (404 before its upload, or once
        newer uploads replaced it)."""
        with self.backend.store.lock:
            job = self._job(caller, job_id)
            file = self.backend.store.peek(caller.org_id, FILES).get(job_id)
            if file is None:
                why = ("no file was uploaded for it yet" if job["status"] == "notUploaded" else
                       f"its file is no longer kept (the newest {self.backend.settings.retain_export_files} are)")
                raise MockError.not_found(f"File upload job {job_id!r} has no original file: {why}")
            issued = self.backend.downloads.issue(caller.org_id, DOWNLOAD_OWNER, {"collection": FILES, "id": job_id},
                                                  ORIGINAL_URL_LIFETIME, base_url)
            return {"jobId": job_id, "url": issued.url, "headers": {"Content-Type": file["contentType"]}}


# -- helpers ----------------------------------------------------------------------------------

def _plain(value: object) -> object:
    """``value`` as JSON holds it (a Decimal of the direct API as its number text)."""
    return json.loads(json.dumps(value, default=str))


def _instant(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    found = rules.epoch_ms(value)
    if found is None:
        raise MockError.bad_request(f"{name}: {value!r} is not an ISO-8601 date-time (yyyy-MM-ddTHH:mm:ssZ)")
    return found


def _document(content: bytes) -> object:
    """The uploaded file as JSON (strict: no NaN or Infinity); ValueError when it is not."""
    return json.loads(content.decode("utf-8-sig"), parse_constant=_no_constant)


def _rows(content: bytes) -> tuple[list[tuple[str, object]], str | None]:
    """The measurements of an uploaded file, ``{"measurements": [...]}``, each with the path
    messages name it by (``measurements[i]``); the second value says why the file holds no
    measurements to read, if it does not."""
    try:
        document = _document(content)
    except ValueError as error:
        return [], f"it is not JSON ({error})"
    if not isinstance(document, dict) or not isinstance(document.get("measurements"), list):
        return [], 'it is not a JSON object {"measurements": [...]}'
    if not document["measurements"]:
        return [], "its measurements array is empty"
    return [(f"measurements[{i}]", raw) for i, raw in enumerate(document["measurements"])], None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
