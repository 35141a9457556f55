"""Data exports that run: ad-hoc jobs, schedules firing on the clock, export files,
object keys at destinations, expiring download URLs and failure Events.

A job is PENDING when queued, RUNNING while its files are compiled, then SUCCEEDED or
FAILED; the export worker does that off the request thread. Every schedule with a cron
expression has its next fire time queued on the same worker; a fire creates a job with
the schedule's id, runs it, and queues the next fire. Each queued fire carries the
schedule's version, so after an update (which reschedules from the new cron) or a delete
the old fire is simply skipped: every run happens exactly once, in order.

Every run ends SUCCEEDED or FAILED: whatever goes wrong inside it (a file that cannot be
written, rows that cannot be rendered, a bug) fails the job with a one-line reason and a
``dataexport.job.failure`` Event. Files are written only inside ``--export-dir``: the
destination's names are checked when it is saved, and each path is checked again, with
every symlink resolved, before anything is created.

Memory stays bounded: the files of only the newest ``retain_export_files`` jobs of an
organization are kept (older jobs keep their record), and download grants are dropped
once expired or beyond ``retain_download_grants``.
"""

from __future__ import annotations

import gzip
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from mockserver.domain import cron
from mockserver.domain import export_rendering as rendering
from mockserver.domain import object_paths
from mockserver.domain.clock import from_iso, isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import ListScope

from .crud import Caller, ResourceKind, public_view
from .worker import DueWorker

log = logging.getLogger("m3ter_mock")

JOBS = "dataexportjobs"
FILES = "dataexportfiles"  # per organization: {"id": job id, "files": [(name, bytes)]}, oldest first
FAULTS = "dataexportfaults"
DOWNLOAD_OWNER = "exports"  # the owner of this service's grants in ``backend.downloads``

DOWNLOAD_LIFETIME = timedelta(minutes=15)
DOWNLOADABLE_FOR = timedelta(hours=24)

# Where each operational data type is stored: the resource key of its service (every
# parent's entities for a nested one). Pricing bands live inside their pricing.
STORED_TYPES = {
    "ACCOUNTS": "accounts", "ACCOUNT_PLANS": "accountplans", "AGGREGATIONS": "aggregations",
    "BALANCES": "balances", "BALANCE_TRANSACTIONS": "balances/{balanceId}/transactions", "BILLS": "bills",
    "BILL_LINE_ITEMS": "bills/{billId}/lineitems", "CHARGES": "charges", "COMMITMENTS": "commitments",
    "COMPOUND_AGGREGATIONS": "compoundaggregations", "CONTRACTS": "contracts", "METERS": "meters",
    "PLANS": "plans", "PLAN_GROUPS": "plangroups", "PLAN_GROUP_LINKS": "plangrouplinks",
    "PLAN_TEMPLATES": "plantemplates", "PRICING": "pricings", "PRICING_BANDS": "pricings",
    "PRODUCTS": "products", "TRANSACTION_TYPES": "picklists/transactiontypes",
}


class ExportWriteError(Exception):
    """A file of the run could not be written under the export directory."""


@dataclass(frozen=True)
class RunJob:
    org_id: str
    job_id: str


@dataclass(frozen=True)
class FireSchedule:
    org_id: str
    schedule_id: str
    version: int
    at: datetime


class ExportService:
    def __init__(self, backend, export_dir: str | None = None):
        self.backend = backend
        self.export_dir = Path(export_dir) if export_dir else None
        self.queue = DueWorker(backend.clock, "exports", self._handle)

    # -- ad-hoc exports -----------------------------------------------------------------
    def create_adhoc(self, caller: Caller, body: dict) -> dict:
        with self.backend.store.lock:
            self._check_destinations(caller, body.get("destinationIds") or [])
            if body["sourceType"] == "USAGE":
                self.backend.usage_engine.check_export(caller, body, self.backend.clock.now())
            job = self._new_job(caller.org_id, body, schedule_id=None, created=self.backend.clock.now())
        self.queue.schedule(RunJob(caller.org_id, job["id"]), self.backend.clock.now())
        return {"jobId": job["id"]}

    def _check_destinations(self, caller: Caller, ids: list[str]) -> None:
        for destination_id in ids:
            if not self.backend.export_destinations.exists(caller, destination_id):
                raise MockError.bad_request(f"destinationIds: no export destination with id {destination_id!r}")

    def _new_job(self, org_id: str, source: dict, schedule_id: str | None, created: datetime) -> dict:
        selection_keys = ("operationalDataTypes",) if source["sourceType"] == "OPERATIONAL" else (
            "meterIds", "accountIds", "dimensionFilters", "aggregations", "groups", "timePeriod", "startDate",
            "endDate")
        job = {
            "id": str(uuid.uuid4()),
            "version": 1,
            "sourceType": source["sourceType"],
            "status": "PENDING",
            "dateCreated": isoformat(created),
            "_created": created,
            "_selection": {k: source[k] for k in selection_keys if source.get(k) is not None},
            "_format": source.get("exportFileFormat") or "CSV",
            "_destinationIds": list(source.get("destinationIds") or []),
            "_fileSizes": [],  # (name, bytes) of each file; the contents are in FILES while kept
            "_objects": [],
        }
        if schedule_id:
            job["scheduleId"] = schedule_id
        self.backend.store.collection(org_id, JOBS).put(job)
        return job

    # -- jobs -----------------------------------------------------------------------------
    def _find(self, caller: Caller, job_id: str) -> dict:
        job = self.backend.store.peek(caller.org_id, JOBS).get(job_id)
        if job is None:
            raise MockError.not_found(f"No export job with id {job_id!r}")
        return job

    def get_job(self, caller: Caller, job_id: str) -> dict:
        with self.backend.store.lock:
            return public_view(self._find(caller, job_id))

    def job_details(self, caller: Caller, job_id: str) -> dict:
        """The job plus what the mock knows beyond m3ter's view: files, object keys, error."""
        with self.backend.store.lock:
            job = self._find(caller, job_id)
            return {**public_view(job),
                    "files": [{"name": n, "bytes": size} for n, size in job["_fileSizes"]],
                    "objects": list(job["_objects"]),
                    **({"error": job["_error"]} if job.get("_error") else {})}

    def list_jobs(self, caller: Caller, filters: dict, page_size: int | None, next_token: str | None):
        active = {k: v for k, v in filters.items() if v is not None and v != []}
        start = _instant(active.get("dateCreatedStart"), "dateCreatedStart")
        end = _instant(active.get("dateCreatedEnd"), "dateCreatedEnd")

        def matches(job):
            return ((active.get("scheduleId") is None or job.get("scheduleId") == active["scheduleId"])
                    and (active.get("status") is None or job["status"] == active["status"])
                    and (start is None or job["_created"] >= start)
                    and (end is None or job["_created"] < end))

        with self.backend.store.lock:
            items, token = self.backend.paginate(
                ListScope(caller.org_id, JOBS, active), self.backend.store.peek(caller.org_id, JOBS), matches,
                page_size, next_token, candidate_ids=active.get("ids"))
            return [public_view(j) for j in items], token

    # -- downloads ----------------------------------------------------------------------
    def download_url(self, caller: Caller, job_id: str, base_url: str) -> dict:
        with self.backend.store.lock:
            job = self._find(caller, job_id)
            if self.backend.clock.now() - job["_created"] > DOWNLOADABLE_FOR:
                raise MockError.bad_request(
                    f"jobId: job {job_id!r} ran more than 24 hours ago; download URLs are only given for recent jobs")
            if job["status"] != "SUCCEEDED":
                raise MockError.bad_request(f"jobId: job {job_id!r} is {job['status']}; it has no file to download")
            if self.backend.store.peek(caller.org_id, FILES).get(job_id) is None:
                raise MockError.bad_request(f"jobId: {self._files_dropped(job_id)}")
            url, expires = self.backend.downloads.issue(caller.org_id, DOWNLOAD_OWNER, job_id, DOWNLOAD_LIFETIME,
                                                        base_url)
        return {"url": url, "expirationTime": isoformat(expires)}

    def download_urls_kept(self) -> int:
        """How many download URLs the mock holds (for every organization): a memory bound,
        so it is observable; expired ones are forgotten when the next one is issued."""
        return self.backend.downloads.kept()

    def _files_dropped(self, job_id: str) -> str:
        return (f"the files of export job {job_id!r} are no longer kept: the mock keeps the files of the newest "
                f"{self.backend.settings.retain_export_files} export jobs of an organization")

    def download(self, grant) -> tuple[str, bytes, str]:
        """The files of the job of a live download grant (``backend.downloads``), bundled."""
        with self.backend.store.lock:
            job = self.backend.store.peek(grant.org_id, JOBS).get(grant.ref)
            if job is None:
                raise MockError(403, "the export job of this download URL no longer exists")
            kept = self.backend.store.peek(grant.org_id, FILES).get(grant.ref)
            if kept is None:
                raise MockError(403, self._files_dropped(grant.ref))
            files = list(kept["files"])
        return rendering.bundle(files)

    # -- faults ----------------------------------------------------------------------------
    def inject_fault(self, org_id: str, schedule_id: str | None, count: int, message: str) -> int:
        with self.backend.store.lock:
            faults = self.backend.store.collection(org_id, FAULTS)
            for _ in range(count):
                faults.put({"id": str(uuid.uuid4()), "scheduleId": schedule_id, "message": message})
            return len(faults)

    def _take_fault(self, org_id: str, job: dict) -> str | None:
        faults = self.backend.store.peek(org_id, FAULTS)
        for fault in faults.values():
            if fault["scheduleId"] is None or fault["scheduleId"] == job.get("scheduleId"):
                self.backend.store.collection(org_id, FAULTS).remove(fault["id"])
                return fault["message"]
        return None

    # -- schedules on the clock -----------------------------------------------------------
    def on_entity_changed(self, caller: Caller, kind: ResourceKind, action: str, old, new) -> None:
        if kind.collection != "dataexportschedules" or new is None or not new.get("cronExpression"):
            return  # a deleted schedule's queued fire finds it gone and is skipped
        self._queue_next_fire(caller.org_id, new, self.backend.clock.now())

    def resume(self, org_id: str) -> None:
        """Queue again what the organization's stored state implies (after a restore or a load:
        the queue is not part of the state): each schedule's next fire after now, and every job
        not finished, to run now (a RUNNING one from the start)."""
        now = self.backend.clock.now()
        store = self.backend.store
        for schedule in list(store.peek(org_id, "dataexportschedules").values()):
            if schedule.get("cronExpression"):
                self._queue_next_fire(org_id, schedule, now)
        for job in list(store.peek(org_id, JOBS).values()):
            if job["status"] in ("PENDING", "RUNNING"):
                self.queue.schedule(RunJob(org_id, job["id"]), now)

    def _queue_next_fire(self, org_id: str, schedule: dict, after: datetime) -> None:
        at = cron.next_run(schedule["cronExpression"], after)
        self.queue.schedule(FireSchedule(org_id, schedule["id"], schedule["version"], at), at)

    # -- the worker -----------------------------------------------------------------------
    def _handle(self, item) -> None:
        if isinstance(item, FireSchedule):
            self._fire(item)
        else:
            self._run(item.org_id, item.job_id)

    def _fire(self, fire: FireSchedule) -> None:
        with self.backend.store.lock:
            schedule = self.backend.store.peek(fire.org_id, "dataexportschedules").get(fire.schedule_id)
            if schedule is None or schedule["version"] != fire.version:
                return  # deleted or rescheduled since this fire was queued
            job = self._new_job(fire.org_id, schedule, schedule_id=schedule["id"], created=fire.at)
            self._queue_next_fire(fire.org_id, schedule, fire.at)
        self._run(fire.org_id, job["id"])

    def _run(self, org_id: str, job_id: str) -> None:
        try:
            self._run_job(org_id, job_id)
        except Exception as error:  # whatever it is, the job must not stay RUNNING
            if isinstance(error, (ExportWriteError, rendering.RenderError, MockError)):
                problem = str(error)
                log.warning("export job %s of %s failed: %s", job_id, org_id, problem)
            else:
                problem = f"the export failed unexpectedly ({type(error).__name__}); the mock's log has the details"
                log.exception("export job %s of %s failed", job_id, org_id)
            job = self.backend.store.peek(org_id, JOBS).get(job_id)
            if job is not None and job["status"] not in ("SUCCEEDED", "FAILED"):  # pragma: no mutate  only if recording the failure raised
                self._fail(org_id, job, problem)

    def _run_job(self, org_id: str, job_id: str) -> None:
        store = self.backend.store
        with store.lock:
            job = store.peek(org_id, JOBS).get(job_id)
            if job is None:
                return
            started = self.backend.clock.now()
            job.update(status="RUNNING", startedAt=isoformat(started))
            fault = self._take_fault(org_id, job)
            destinations = [store.peek(org_id, "dataexportdestinations").get(d) for d in job["_destinationIds"]]
            rows_by_type = self._snapshot_rows(org_id, job)
        problem = fault
        if problem is None:
            missing = [d for d, found in zip(job["_destinationIds"], destinations) if found is None]
            if missing:
                problem = f"export destination {missing[0]!r} no longer exists"
        if problem is not None:
            self._fail(org_id, job, problem)
            return
        files = [(rendering.file_name(job_id, type_name, job["_format"]),
                  rendering.render(rows, columns, job["_format"]))
                 for type_name, columns, rows in rows_by_type]
        objects = []
        for destination in destinations:
            for (name, content), (type_name, _, _) in zip(files, rows_by_type):
                key = rendering.object_key(prefix=destination.get("prefix"), org_id=org_id, when=job["_created"],
                                           type_name=type_name, name=name,
                                           partition_order=destination["partitionOrder"])
                objects.append({"destinationId": destination["id"], "bucket": destination["bucketName"], "key": key})
                self._write(destination["bucketName"], key, content)
        with store.lock:
            job.update(status="SUCCEEDED", _fileSizes=[(name, len(content)) for name, content in files],
                       _objects=objects)
            kept = store.collection(org_id, FILES)
            kept.put({"id": job_id, "files": files})
            kept.trim(self.backend.settings.retain_export_files)  # the job records stay

    def _snapshot_rows(self, org_id: str, job: dict) -> list[tuple[str, list[str], list[dict]]]:
        """(type name, columns, rows) per file, read while the store is locked."""
        if job["sourceType"] == "USAGE":
            # The measurements (or aggregated values) of the run's period, oldest first.
            rows = self.backend.usage_engine.export_rows(org_id, job["_selection"], job["_created"])
            columns = rendering.usage_columns(job["_selection"])
            columns += sorted({k for row in rows for k in row} - set(columns))
            return [(rendering.USAGE_TYPE, columns, rows)]
        result = []
        for data_type in job["_selection"]["operationalDataTypes"]:
            rows = self._stored_rows(org_id, data_type)
            columns = rendering.operational_columns(data_type)
            columns += sorted({k for row in rows for k in row} - set(columns))
            result.append((rendering.OPERATIONAL_ENTITIES[data_type], columns, rows))
        return result

    def _stored_rows(self, org_id: str, data_type: str) -> list[dict]:
        service = self.backend.resources.get(STORED_TYPES.get(data_type, ""))
        if service is None:
            return []  # a type the spec the mock serves has no operations for
        entities = [public_view(e) for e in service.entities(org_id)]
        if data_type == "PRICING_BANDS":
            return [{**band, "pricingId": pricing["id"]} for pricing in entities
                    for band in pricing.get("pricingBands") or ()]
        return entities

    def _write(self, bucket: str, key: str, content: bytes) -> None:
        """Write ``DIR/<bucket>/<key>`` (gzipped), never anywhere outside DIR. Destinations
        are checked when saved; this checks the path itself again, with every symlink that
        exists resolved, before any directory is made, and once more after."""
        if self.export_dir is None:
            return
        where = object_paths.shown(f"{bucket}/{key}", limit=200)
        try:
            root = self.export_dir.resolve()
            path = root / bucket / key
            if not _strictly_inside(path.resolve(), root):
                raise ExportWriteError(f"refused to write {where}: it leads outside the export directory")
            path.parent.mkdir(parents=True, exist_ok=True)
            if not _strictly_inside(path.parent.resolve(), root):
                raise ExportWriteError(f"refused to write {where}: it leads outside the export directory")
            # O_NOFOLLOW: a symlink put in place of the file itself is not followed either.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(descriptor, "wb") as file:
                file.write(gzip.compress(content, mtime=0))
        except OSError as error:
            raise ExportWriteError(
                f"could not write {where} in the export directory: {error.strerror or type(error).__name__}") from None

    def _fail(self, org_id: str, job: dict, problem: str) -> None:
        with self.backend.store.lock:
            job.update(status="FAILED", _error=problem)  # first: even if recording the Event fails
            self.backend.events.record(
                org_id, "dataexport.job.failure",
                new={"jobId": job["id"], "scheduleId": job.get("scheduleId"), "sourceType": job["sourceType"],
                     "destinationIds": job["_destinationIds"], "error": problem, "dateCreated": job["dateCreated"]},
                resource_id=job["id"])


def _strictly_inside(path: Path, root: Path) -> bool:
    return path != root and path.is_relative_to(root)


def _instant(value: str | None, field_name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = from_iso(value)
    except ValueError:
        raise MockError.bad_request(f"{field_name}: {value!r} is not a date-time like 2026-01-01T00:00:00Z") from None
    from mockserver.domain.clock import utc

    return utc(parsed)
