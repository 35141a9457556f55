"""Services behind the platform operations that are not plain CRUD: the data of Lookup
Table Revisions and its jobs, integration runs and the integration catalogue, external
mapping look-ups, and Balance transactions with their summary and schedule previews.

Everything is kept in the one store, under its lock, next to the entities it belongs to:

* a revision's data items in ``lookuptables/<table>/revisions/<revision>/data`` (keyed by
  lookup key) with their version and audit fields in ``.../datainfo``, and its jobs in
  ``.../data/jobs`` (the collection the generic engine lists, retrieves and deletes), so
  deleting the revision or its table drops them too;
* download URLs in ``backend.downloads`` (``mockserver.backend.downloads``), and upload URLs
  in the store's global space (a URL's token is not tied to a path's organization), both
  dropped once expired or beyond ``retain_download_grants``.

The rules for items, lookup keys, status moves and files are in
``mockserver.domain.lookup_data``; money and schedule times in ``mockserver.domain.balances``.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable

from mockserver.domain import balances as money_rules
from mockserver.domain import lookup_data as data_rules
from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import ListScope

from ..crud import Caller, CrudService
from ..downloads import purge_expired
from ..resources.integration_configs import run_view
from ..shapes import fill

# -- resource keys (the spec's) and the collections kept here ---------------------------------
REVISIONS = "lookuptables/{lookupTableId}/revisions"
JOBS = "lookuptables/{lookupTableId}/revisions/{lookupTableRevisionId}/data/jobs"
TRANSACTIONS = "balances/{balanceId}/transactions"
TRANSACTION_SCHEDULES = "balances/{balanceId}/balancetransactionschedules"
CHARGE_SCHEDULES = "balances/{balanceId}/balancechargeschedules"
BALANCES = "balances"
EXTERNAL_MAPPINGS = "externalmappings"

GLOBAL = ""  # the store's global space: an upload URL's token is not tied to a path's organization
DOWNLOAD_OWNER = "lookupdata"  # the owner of this service's grants in ``backend.downloads``
UPLOADS = "lookupdatauploads"
UPLOAD_PATH = "/_mock/uploads/"
DOWNLOAD_LIFETIME = timedelta(hours=1)  # m3ter: an archived data URL is valid for one hour
UPLOAD_LIFETIME = timedelta(minutes=1)  # m3ter: an upload URL is valid for one minute
MAX_ITEMS_SHOWN = 2000  # the most items one data response holds (m3ter's limit default)


def _now(backend) -> datetime:
    return backend.clock.now()


def _stamp(backend, caller: Caller, existing: dict | None) -> dict:
    now = isoformat(_now(backend))
    return {"dtCreated": existing["dtCreated"] if existing else now, "dtLastModified": now,
            "createdBy": existing["createdBy"] if existing else caller.client_id,
            "lastModifiedBy": caller.client_id}


# == Lookup Table Revision data ================================================================

class LookupData:
    """The data of Lookup Table Revisions, their status moves and their jobs."""

    def __init__(self, backend):
        self.backend = backend

    # -- where things are ----------------------------------------------------------------
    @property
    def revisions(self) -> CrudService:
        return self.backend.resources[REVISIONS]

    @property
    def jobs(self) -> CrudService:
        return self.backend.resources[JOBS]

    @staticmethod
    def _revision_path(table_id: str, revision_id: str) -> str:
        return f"{fill(REVISIONS, {'lookupTableId': table_id})}/{revision_id}"

    def _items(self, org_id: str, table_id: str, revision_id: str, *, write: bool = False):
        name = self._revision_path(table_id, revision_id) + "/data"
        store = self.backend.store
        return store.collection(org_id, name) if write else store.peek(org_id, name)

    def _info(self, org_id: str, table_id: str, revision_id: str, *, write: bool = False):
        name = self._revision_path(table_id, revision_id) + "/datainfo"
        store = self.backend.store
        return store.collection(org_id, name) if write else store.peek(org_id, name)

    def revision(self, caller: Caller, table_id: str, revision_id: str) -> dict:
        """The stored revision, or a 404 (for it or its table)."""
        return self.revisions.find(caller, revision_id, {"lookupTableId": table_id})

    def _draft(self, caller: Caller, table_id: str, revision_id: str) -> dict:
        revision = self.revision(caller, table_id, revision_id)
        if revision.get("status", "DRAFT") != "DRAFT":
            raise MockError.conflict(
                f"Lookup Table Revision {revision_id!r} is {revision['status']}: only a DRAFT revision's data can "
                f"change (copy it to a new revision to edit the data)")
        return revision

    # -- reads ---------------------------------------------------------------------------
    def _view(self, org_id: str, table_id: str, revision_id: str, items: list[dict],
              schema: data_rules.DataSchema, additional: list[str] | None) -> dict:
        wanted = _additional(additional)
        shown = [{**item, data_rules.LOOKUP_KEY: data_rules.lookup_key(schema, item)} if wanted else dict(item)
                 for item in items]
        info = self._info(org_id, table_id, revision_id).get("data")
        return {"items": shown, **({k: v for k, v in info.items() if k != "id"} if info else {})}

    def get_data(self, caller: Caller, table_id: str, revision_id: str, limit: int | None = None,
                 additional: list[str] | None = None) -> dict:
        if limit is not None and not 1 <= limit <= MAX_ITEMS_SHOWN:
            raise MockError.bad_request(f"limit: {limit} is not between 1 and {MAX_ITEMS_SHOWN}")
        with self.backend.store.lock:
            revision = self.revision(caller, table_id, revision_id)
            items = []
            for entry in self._items(caller.org_id, table_id, revision_id).values():
                if len(items) == (limit or MAX_ITEMS_SHOWN):
                    break
                items.append(entry["item"])
            return self._view(caller.org_id, table_id, revision_id, items, data_rules.DataSchema.of(revision),
                              additional)

    def get_entry(self, caller: Caller, table_id: str, revision_id: str, key: str) -> dict:
        with self.backend.store.lock:
            revision = self.revision(caller, table_id, revision_id)
            schema = data_rules.DataSchema.of(revision)
            entry = self._entry(caller, table_id, revision_id, schema, key)
            return self._view(caller.org_id, table_id, revision_id, [entry["item"]], schema, None)

    def _entry(self, caller: Caller, table_id: str, revision_id: str, schema, key: str) -> dict:
        normal = data_rules.lookup_key(schema, data_rules.key_values(schema, key))
        entry = self._items(caller.org_id, table_id, revision_id).get(normal)
        if entry is None:
            raise MockError.not_found(f"No LookupTableRevisionData item with lookupKey {key!r}")
        return entry

    # -- writes --------------------------------------------------------------------------
    def _check_version(self, caller: Caller, table_id: str, revision_id: str, body: dict) -> dict | None:
        """The data's version record; ``version``, when sent, must be the data's current one."""
        info = self._info(caller.org_id, table_id, revision_id).get("data")
        sent = body.get("version")
        if sent is not None and (info is None or sent != info["version"]):
            held = f"is at version {info['version']}" if info else "has no data yet, so no version"
            raise MockError.conflict(
                f"version {sent} is stale: the data of Lookup Table Revision {revision_id!r} {held}; "
                f"fetch it again and resend")
        return info

    def _written(self, caller: Caller, table_id: str, revision_id: str, info: dict | None) -> None:
        """Record one change of the data: its version and audit fields, and the revision's
        item count."""
        self._info(caller.org_id, table_id, revision_id, write=True).put(
            {"id": "data", "version": info["version"] + 1 if info else 1, **_stamp(self.backend, caller, info)})
        count = len(self._items(caller.org_id, table_id, revision_id))
        self.revisions.modify(caller, revision_id, {"itemCount": count}, {"lookupTableId": table_id})

    def _upsert(self, caller: Caller, table_id: str, revision_id: str, schema, items: list[dict]) -> None:
        collection = self._items(caller.org_id, table_id, revision_id, write=True)
        for item in items:
            collection.put({"id": data_rules.lookup_key(schema, item), "item": item})

    def _clear(self, caller: Caller, table_id: str, revision_id: str) -> int:
        """Drops every item; answers how many there were."""
        items = self._items(caller.org_id, table_id, revision_id)
        keys = [entry["id"] for entry in items.values()]
        if keys:
            writable = self._items(caller.org_id, table_id, revision_id, write=True)
            for key in keys:
                writable.remove(key)
        return len(keys)

    def _clear_info(self, caller: Caller, table_id: str, revision_id: str) -> None:
        if self._info(caller.org_id, table_id, revision_id).get("data") is not None:
            self._info(caller.org_id, table_id, revision_id,
                       write=True,  # pragma: no mutate: the data is there, so peek returns that same collection
                       ).remove("data")

    def put_data(self, caller: Caller, table_id: str, revision_id: str, body: dict,
                 additional: list[str] | None = None) -> dict:
        """Upsert: an item whose lookup key is held replaces it, the others are added."""
        _additional(additional)
        with self.backend.store.lock:
            revision = self._draft(caller, table_id, revision_id)
            schema = data_rules.DataSchema.of(revision)
            info = self._check_version(caller, table_id, revision_id, body)
            items = [data_rules.check_item(schema, item, f"items[{i}]") for i, item in enumerate(body["items"])]
            data_rules.unique_keys(items, schema, [f"items[{i}]" for i in range(len(items))])
            self._upsert(caller, table_id, revision_id, schema, items)
            self._written(caller, table_id, revision_id, info)
            return self._view(caller.org_id, table_id, revision_id, items, schema, additional)

    def put_entry(self, caller: Caller, table_id: str, revision_id: str, key: str, body: dict,
                  additional: list[str] | None = None) -> dict:
        _additional(additional)
        with self.backend.store.lock:
            revision = self._draft(caller, table_id, revision_id)
            schema = data_rules.DataSchema.of(revision)
            info = self._check_version(caller, table_id, revision_id, body)
            item = data_rules.item_for_key(schema, key, body["item"], "item")
            self._upsert(caller, table_id, revision_id, schema, [item])
            self._written(caller, table_id, revision_id, info)
            return self._view(caller.org_id, table_id, revision_id, [item], schema, additional)

    def delete_entry(self, caller: Caller, table_id: str, revision_id: str, key: str, body: dict | None) -> dict:
        with self.backend.store.lock:
            revision = self._draft(caller, table_id, revision_id)
            schema = data_rules.DataSchema.of(revision)
            info = self._check_version(caller, table_id, revision_id, body or {})
            entry = self._entry(caller, table_id, revision_id, schema, key)
            self._items(caller.org_id, table_id, revision_id, write=True).remove(entry["id"])
            self._written(caller, table_id, revision_id, info)
            return self._view(caller.org_id, table_id, revision_id, [entry["item"]], schema, None)

    def delete_data(self, caller: Caller, table_id: str, revision_id: str) -> dict:
        """Every item goes, and the data's version with them (the next write is version 1)."""
        with self.backend.store.lock:
            self._draft(caller, table_id, revision_id)
            count = self._clear(caller, table_id, revision_id)
            self._clear_info(caller, table_id, revision_id)
            self.revisions.modify(caller, revision_id, {"itemCount": 0}, {"lookupTableId": table_id})
            return {"result": f"deleted {count} data item(s) of Lookup Table Revision {revision_id}"}

    # -- the revision's status ----------------------------------------------------------------
    def set_status(self, caller: Caller, table_id: str, revision_id: str, body: dict) -> dict:
        """DRAFT -> PUBLISHED archives the table's PUBLISHED revision (one is published at a
        time); each revision that becomes ARCHIVED gets an ARCHIVE job."""
        wanted = body.get("status")
        if wanted is None:
            raise MockError.bad_request("status: required")
        scope = {"lookupTableId": table_id}
        with self.backend.store.lock:
            revision = self.revision(caller, table_id, revision_id)
            sent = body.get("version")
            if sent is not None and sent != revision["version"]:
                raise MockError.conflict(
                    f"version {sent} is stale: Lookup Table Revision {revision_id!r} is at version "
                    f"{revision['version']}; fetch it again and resend")
            current = revision.get("status", "DRAFT")
            data_rules.check_status_change(current, wanted)
            if wanted == current:
                return self.revisions.kind.view(revision)
            if wanted == "PUBLISHED":
                for other in list(self.backend.store.peek(caller.org_id, fill(REVISIONS, scope)).values()):
                    if other["id"] != revision_id and other.get("status") == "PUBLISHED":
                        self.revisions.modify(caller, other["id"], {"status": "ARCHIVED"}, scope)
                        self._new_job(caller, table_id, other["id"], "ARCHIVE")
            shown = self.revisions.modify(caller, revision_id, {"status": wanted}, scope)
            if wanted == "ARCHIVED":
                self._new_job(caller, table_id, revision_id, "ARCHIVE")
            return shown

    # -- jobs ----------------------------------------------------------------------------
    def _new_job(self, caller: Caller, table_id: str, revision_id: str, job_type: str,
                 status: str = "SUCCEEDED", **fields: Any) -> dict:
        scope = {"lookupTableId": table_id, "lookupTableRevisionId": revision_id}
        job = {"id": str(uuid.uuid4()), "version": 1, "lookupTableId": table_id,
               "lookupTableRevisionId": revision_id, "jobDate": isoformat(_now(self.backend)),
               "type": job_type, "status": status, **{k: v for k, v in fields.items() if v is not None}}
        self.backend.store.collection(caller.org_id, self.jobs.kind.collection_name(scope)).put(job)
        return job

    def copy(self, caller: Caller, table_id: str, revision_id: str, body: dict | None) -> dict:
        """Copies the data to ``revisionId`` (a DRAFT revision of the same table with the same
        fields and keys, whose data it replaces) or, without one, to a new DRAFT revision
        named after the source with " Copy" added. A COPY job on the source records it."""
        target_id = (body or {}).get("revisionId")
        scope = {"lookupTableId": table_id}
        with self.backend.store.lock:
            source = self.revision(caller, table_id, revision_id)
            schema = data_rules.DataSchema.of(source)
            items = [entry["item"] for entry in self._items(caller.org_id, table_id, revision_id).values()]
            if target_id is None:
                copied = {k: source[k] for k in ("fields", "keys", "startDate", "customFields") if k in source}
                target_id = self.revisions.create(caller, {**copied, "name": source["name"][:195] + " Copy"},
                                                  scope)["id"]
            else:
                if target_id == revision_id:
                    raise MockError.bad_request("revisionId: names the source revision itself")
                if not self.revisions.exists(caller, target_id, scope):
                    raise MockError.bad_request(
                        f"revisionId: no LookupTableRevision with id {target_id!r} in Lookup Table {table_id!r}")
                target = self._draft(caller, table_id, target_id)
                if not data_rules.DataSchema.of(target).same_as(schema):
                    raise MockError.bad_request(
                        f"revisionId: Lookup Table Revision {target_id!r} has other fields or keys than the source")
            info = self._info(caller.org_id, table_id, target_id).get("data")
            self._clear(caller, table_id, target_id)
            self._upsert(caller, table_id, target_id, schema, items)
            self._written(caller, table_id, target_id, info)
            job = self._new_job(caller, table_id, revision_id, "COPY", destinationLookupTableRevisionId=target_id)
            return {"jobId": job["id"], "revisionId": target_id}

    # -- files: download and upload URLs ----------------------------------------------------------
    def _grant_download(self, caller: Caller, table_id: str, revision_id: str, schema, content_type: str,
                        base_url: str) -> tuple[str, datetime]:
        items = [entry["item"] for entry in self._items(caller.org_id, table_id, revision_id).values()]
        ref = {"lookupTableId": table_id, "revisionId": revision_id,
               "name": data_rules.file_name(revision_id, content_type), "media": content_type,
               "content": data_rules.render(schema, items, content_type)}
        return self.backend.downloads.issue(caller.org_id, DOWNLOAD_OWNER, ref, DOWNLOAD_LIFETIME, base_url)

    def trigger_download(self, caller: Caller, table_id: str, revision_id: str, body: dict, base_url: str) -> dict:
        """A DOWNLOAD job that has run: its URL serves the data as it is now."""
        content_type = body["contentType"]
        with self.backend.store.lock:
            revision = self.revision(caller, table_id, revision_id)
            url, expires = self._grant_download(caller, table_id, revision_id, data_rules.DataSchema.of(revision),
                                                content_type, base_url)
            job = self._new_job(caller, table_id, revision_id, "DOWNLOAD",
                                fileName=data_rules.file_name(revision_id, content_type),
                                downloadUrl=url, downloadUrlExpiry=isoformat(expires))
            return {"jobId": job["id"]}

    def archived_url(self, caller: Caller, table_id: str, revision_id: str, body: dict, base_url: str) -> dict:
        content_type = body["contentType"]
        with self.backend.store.lock:
            revision = self.revision(caller, table_id, revision_id)
            if revision.get("status") != "ARCHIVED":
                raise MockError.conflict(
                    f"Lookup Table Revision {revision_id!r} is {revision.get('status', 'DRAFT')}: only an ARCHIVED "
                    f"revision has archived data (download any revision's data with a download job)")
            url, expires = self._grant_download(caller, table_id, revision_id, data_rules.DataSchema.of(revision),
                                                content_type, base_url)
            return {"url": url, "expiry": isoformat(expires)}

    def upload_url(self, caller: Caller, table_id: str, revision_id: str, body: dict, base_url: str) -> dict:
        """A PENDING UPLOAD job and the URL to PUT the file to (valid one minute)."""
        with self.backend.store.lock:
            self._draft(caller, table_id, revision_id)
            self._check_version(caller, table_id, revision_id, body)
            job = self._new_job(caller, table_id, revision_id, "UPLOAD", status="PENDING",
                                fileName=body["fileName"])
            token = secrets.token_urlsafe(32)
            grants = self.backend.store.collection(GLOBAL, UPLOADS)
            grants.put({"id": token, "orgId": caller.org_id, "clientId": caller.client_id, "lookupTableId": table_id,
                        "revisionId": revision_id, "jobId": job["id"], "contentType": body["contentType"],
                        "contentLength": body["contentLength"],
                        "_expires": _now(self.backend) + UPLOAD_LIFETIME})
            purge_expired(grants, _now(self.backend), self.backend.settings.retain_download_grants)
            return {"jobId": job["id"], "url": f"{base_url.rstrip('/')}{UPLOAD_PATH}{token}",
                    "headers": {"Content-Type": body["contentType"]}}

    def receive_upload(self, token: str, content: bytes, content_type: str | None) -> dict:
        """The file PUT to an upload URL. A URL that is unknown, expired or used is a 403,
        a body that is not what the URL was made for (its Content-Type, its length) a 400,
        and neither touches the job. Otherwise the job ends: SUCCEEDED with the file's items
        upserted into the revision's data, or FAILED with the reason (a line at fault, a
        revision no longer DRAFT) and the data unchanged. Answers the job."""
        with self.backend.store.lock:
            grants = self.backend.store.peek(GLOBAL, UPLOADS)
            grant = grants.get(token)
            if grant is None or _now(self.backend) >= grant["_expires"]:
                raise MockError(403, "this upload URL is not valid, was used or has expired (they last one minute); "
                                     "ask for a new one")
            sent_type = (content_type or "").split(";")[0].strip().lower()
            if sent_type != grant["contentType"]:
                raise MockError.bad_request(
                    f"Content-Type: this URL takes {grant['contentType']}, as its headers say "
                    f"(got {sent_type or 'none'})")
            if len(content) != grant["contentLength"]:
                raise MockError.bad_request(
                    f"Content-Length: this URL takes a file of {grant['contentLength']} bytes (got {len(content)})")
            self.backend.store.collection(GLOBAL, UPLOADS).remove(token)
            caller = Caller(grant["orgId"], grant["clientId"])
            table_id, revision_id = grant["lookupTableId"], grant["revisionId"]
            scope = {"lookupTableId": table_id, "lookupTableRevisionId": revision_id}
            jobs = self.backend.store.peek(caller.org_id, self.jobs.kind.collection_name(scope))
            job = jobs.get(grant["jobId"])
            if job is None:
                raise MockError(403, "the upload job of this URL (or its revision) no longer exists")
            try:
                revision = self._draft(caller, table_id, revision_id)
                schema = data_rules.DataSchema.of(revision)
                items = data_rules.parse(schema, content, grant["contentType"])
                info = self._info(caller.org_id, table_id, revision_id).get("data")
                self._upsert(caller, table_id, revision_id, schema, items)
                self._written(caller, table_id, revision_id, info)
            except MockError as problem:
                job.update(status="FAILED", failureReason=problem.message)
            else:
                job["status"] = "SUCCEEDED"
            return dict(job)

    def download(self, grant) -> tuple[str, bytes, str]:
        """(file name, bytes, media type) of a live data download grant this service issued;
        a 403 when its revision is gone."""
        with self.backend.store.lock:
            ref = grant.ref
            if not self.revisions.exists(Caller(grant.org_id, ""), ref["revisionId"],
                                         {"lookupTableId": ref["lookupTableId"]}):
                raise MockError(403, "the Lookup Table Revision of this download URL no longer exists")
            media = "application/x-ndjson" if ref["media"] == data_rules.JSONL else ref["media"]
            return ref["name"], ref["content"], media


def _additional(values: list[str] | None) -> bool:
    """Whether ``additional`` asks for each item's lookup key (the one extra m3ter names; the
    spec enumerates it, so any value given is that one)."""
    return bool(values)


# == integration runs ==========================================================================

class IntegrationRuns:
    """The mock keeps the latest run of each integration configuration (a webhook delivery
    of its Notification, see ``backend.deliveries``): the run's id is the configuration's
    id, as ``GET /integrationconfigs/{id}`` shows it. A configuration that never ran has no
    run. Lists hold one run per configuration, in the configurations' creation order
    (``order=DESC``: the reverse)."""

    LIST = "integrationruns"

    def __init__(self, backend):
        self.backend = backend

    @property
    def configs(self) -> CrudService:
        return self.backend.integration_configs

    def _run(self, org_id: str, config: dict) -> dict | None:
        last = self.backend.deliveries.last_run(org_id, config["id"])
        return run_view(config, last) if last else None

    def get(self, caller: Caller, run_id: str) -> dict:
        with self.backend.store.lock:
            config = self.backend.store.peek(caller.org_id, self.configs.kind.collection).get(run_id)
            run = self._run(caller.org_id, config) if config else None
            if run is None:
                raise MockError.not_found(f"No IntegrationRun with id {run_id!r}")
            return run

    def _page(self, caller: Caller, selects: Callable[[dict], bool], filters: dict, page_size, next_token,
              *, run_filters: dict) -> tuple[list[dict], str | None]:
        status = run_filters.get("status")
        after = _instant(run_filters.get("startDate"), "startDate")
        until = _instant(run_filters.get("endDate"), "endDate")
        order = run_filters.get("order") or "ASC"
        if order not in ("ASC", "DESC"):
            raise MockError.bad_request(f"order: {order!r} is not one of ['ASC', 'DESC']")
        runs: dict[str, dict] = {}

        def matches(config: dict) -> bool:
            if not selects(config):
                return False
            run = self._run(caller.org_id, config)
            if run is None or (status is not None and run["status"] != status):
                return False
            started = _instant(run.get("dtStarted"), "dtStarted")
            if (after is not None or until is not None) and started is None:
                return False
            if (after is not None and not started > after) or (until is not None and not started <= until):
                return False
            runs[config["id"]] = run
            return True

        with self.backend.store.lock:
            active = {k: v for k, v in {**filters, **run_filters}.items() if v is not None}
            configs, token = self.backend.paginate(
                ListScope(caller.org_id, self.LIST, active),
                self.backend.store.peek(caller.org_id, self.configs.kind.collection),
                matches, page_size, next_token, newest_first=order == "DESC")
            return [runs[c["id"]] for c in configs], token

    def list_for_entity(self, caller: Caller, entity_type: str, entity_id: str, run_filters: dict,
                        page_size: int | None, next_token: str | None):
        return self._page(caller, lambda c: _same(c.get("entityType"), entity_type) and c.get("entityId") == entity_id,
                          {"entityType": entity_type.lower(), "entityId": entity_id}, page_size, next_token,
                          run_filters=run_filters)

    def list_for_destination(self, caller: Caller, destination_id: str, destination: str | None,
                             run_filters: dict, page_size: int | None, next_token: str | None):
        return self._page(
            caller,
            lambda c: c.get("destinationId") == destination_id and (destination is None
                                                                    or _same(c.get("destination"), destination)),
            {"destinationId": destination_id,
             "destination":  # pragma: no mutate: only a key of the filters nextToken is bound to; any name binds alike
             destination and destination.lower()},
            page_size, next_token, run_filters=run_filters)

    def latest(self, caller: Caller, entity_type: str, entity_ids: list[str] | None) -> dict:
        """The run that started last among the configurations of ``entity_type`` (and one of
        ``entity_ids``, when given)."""
        with self.backend.store.lock:
            best = None
            for config in self.backend.store.peek(caller.org_id, self.configs.kind.collection).values():
                if not _same(config.get("entityType"), entity_type):
                    continue
                if entity_ids is not None and config.get("entityId") not in entity_ids:
                    continue
                run = self._run(caller.org_id, config)
                # dtStarted is always written the same way (UTC, milliseconds, Z): text order is time order.
                if run is not None and (best is None or run.get("dtStarted", "") > best.get("dtStarted", "")):
                    best = run
            if best is None:
                named = f" with id {', '.join(entity_ids)}" if entity_ids else ""
                raise MockError.not_found(f"No IntegrationRun for a {entity_type}{named}")
            return best

    def log(self, caller: Caller, run_id: str) -> dict:
        """The run's attempts, one line each (when, which attempt, the HTTP status or that
        none came, what followed), base64-encoded as m3ter's ``Payload``."""
        run = self.get(caller, run_id)
        attempts = [a for a in self.backend.deliveries.attempts(caller.org_id) if a["integrationConfigId"] == run_id]
        if attempts:
            delivery = attempts[-1]["deliveryId"]
            attempts = [a for a in attempts if a["deliveryId"] == delivery]
        lines = [f"{run.get('dtStarted', '')} run of {run['entityType']} {run['entityId']} to "
                 f"{run['destination']} {run.get('destinationId', '')}".rstrip()]
        for attempt in attempts:
            answer = f"HTTP {attempt['statusCode']}" if attempt.get("statusCode") is not None else "no HTTP answer"
            lines.append(f"{attempt['startedAt']} attempt {attempt['attempt']}: POST {attempt['url']} -> {answer}, "
                         f"{attempt['outcome']}")
        lines.append(f"status {run['status']}" + (f": {run['error']}" if run.get("error") else ""))
        return {"Payload": base64.b64encode(("\n".join(lines) + "\n").encode()).decode()}


def _same(value: Any, wanted: str) -> bool:
    return isinstance(value, str) and value.lower() == wanted.lower()


def _instant(value: Any, field_name: str) -> datetime | None:
    return None if value is None else money_rules.parse_instant(value, field_name)


# == the integration catalogue =================================================================

# The one integration the mock performs: webhook deliveries of Notifications, signed with the
# destination's M3TER_SIGNED_REQUEST credentials. Option lists are empty: a webhook
# integration needs nothing beyond the destination and its credentials. m3ter's schema shows
# such a list as an object with ``empty``.
EMPTY_OPTIONS = {"empty": True}
SYSTEMS = {
    "Webhook": {"identifier": "Webhook", "displayName": "Webhook", "validationSupported": False,
                "supportedAuthTypes": ["M3TER_SIGNED_REQUEST"], "apiName": "WEBHOOK",
                "entities": ("Notification",)},
}


def _system(name: str) -> dict:
    for identifier, system in SYSTEMS.items():
        if identifier.lower() == name.lower():
            return system
    raise MockError.not_found(f"No integration system {name!r} (the mock integrates with: {', '.join(SYSTEMS)})")  # pragma: no mutate  one system: the separator never shows


def available_systems(entity_type: str | None) -> list[dict]:
    return [{k: v for k, v in s.items() if k not in ("apiName", "entities")} for s in SYSTEMS.values()
            if entity_type is None or any(_same(e, entity_type) for e in s["entities"])]


def system_entities(system_name: str) -> list[dict]:
    return [{"entityType": e, "readableName": e} for e in _system(system_name)["entities"]]


def auth_options(system_name: str, entity_type: str) -> dict:
    system = _system(system_name)
    if not any(_same(e, entity_type) for e in system["entities"]):
        raise MockError.not_found(f"No {entity_type!r} integration with {system['identifier']} "
                                  f"(it takes: {', '.join(system['entities'])})")
    return dict(EMPTY_OPTIONS)


def config_option_values(system_name: str, option: str) -> dict:
    system = _system(system_name)
    raise MockError.not_found(f"No configuration option {option!r} for {system['identifier']} (it has none)")


def available_config(system_name: str | None, entity_type: str | None) -> dict:
    entities: dict[str, dict] = {}
    for identifier, system in SYSTEMS.items():
        if system_name is not None and not _same(identifier, system_name):
            continue
        for entity in system["entities"]:
            if entity_type is not None and not _same(entity, entity_type):
                continue
            shown = entities.setdefault(entity, {"readableName": entity, "destinations": [],
                                                 "entityConfigurationOptions": dict(EMPTY_OPTIONS), "released": True})
            shown["destinations"].append({
                "apiName": system["apiName"], "destination": identifier, "displayName": system["displayName"],
                "destinationConfigOptions": dict(EMPTY_OPTIONS), "authConfigOptions": dict(EMPTY_OPTIONS),
                "released": True, "authType": system["supportedAuthTypes"][0], "categories": []})
    return {"supportedEntities": entities, "selectedConfigurations": {},
            "globalConfigurationOptions": dict(EMPTY_OPTIONS)}


def marketplace_usage(backend, caller: Caller, filters: dict, page_size: int | None,
                      next_token: str | None) -> tuple[list[dict], str | None]:
    """Usage reported to marketplaces by Bill integration runs: the mock runs none, so the
    list is always empty. A nextToken is still checked: as this list never issues one, each
    is refused (as altered, or another list's)."""
    if next_token:
        backend.cursors.decode(
            ListScope(caller.org_id, "marketplaceusagereports",  # pragma: no mutate: no token is valid for any scope
                      filters),
            next_token)
    return [], None


# == external mappings ==========================================================================

# What a mapping may name: the m3ter entity types the mock stores that a mapping can link,
# and the external systems of m3ter's integrations. Any table name is allowed.
M3TER_ENTITIES = ("Account", "AccountPlan", "Aggregation", "Bill", "Commitment", "CompoundAggregation",
                  "Contract", "Meter", "Plan", "PlanGroup", "PlanTemplate", "Pricing", "Product")
EXTERNAL_SYSTEMS = ("Chargebee", "NetSuite", "Paddle", "QuickBooks", "Salesforce", "Stripe", "Xero")


def external_mapping_configuration() -> dict:
    return {"m3terEntities": list(M3TER_ENTITIES),
            "externalSystems": [{"name": name, "tables": [], "allowCustomExternalTables": True}
                                for name in EXTERNAL_SYSTEMS]}


def external_entity_options() -> list[dict]:
    """m3ter fetches these from the destination system when it is connected; the mock
    connects to none, so there are none (m3ter's documented empty answer)."""
    return []


def external_mappings(backend, caller: Caller, selects: Callable[[dict], bool], list_name: str, filters: dict,
                      page_size: int | None, next_token: str | None) -> tuple[list[dict], str | None]:
    """A page of the organization's external mappings that ``selects`` takes; the cursor is
    bound to ``list_name`` and ``filters``."""
    service: CrudService = backend.resources[EXTERNAL_MAPPINGS]
    with backend.store.lock:
        items, token = backend.paginate(
            ListScope(caller.org_id, list_name, filters),
            backend.store.peek(caller.org_id, service.kind.collection), selects, page_size, next_token)
        return [service.kind.view(item) for item in items], token


def mappings_for_m3ter_entity(backend, caller: Caller, entity: str, m3ter_id: str, page_size, next_token):
    return external_mappings(
        backend, caller, lambda m: _same(m.get("m3terEntity"), entity) and m.get("m3terId") == m3ter_id,
        "externalmappings/m3ter", {"m3terEntity": entity.lower(), "m3terId": m3ter_id},  # pragma: no mutate  the list's name and filters only bind nextToken; any distinct ones bind alike
        page_size, next_token)


def mappings_for_external_entity(backend, caller: Caller, system: str, table: str, external_id: str,
                                 page_size, next_token):
    return external_mappings(
        backend, caller,
        lambda m: (_same(m.get("externalSystem"), system) and _same(m.get("externalTable"), table)
                   and m.get("externalId") == external_id),
        "externalmappings/external",
        {"externalSystem": system.lower(), "externalTable": table.lower(), "externalId": external_id},  # pragma: no mutate  the filters only bind nextToken; any names bind alike
        page_size, next_token)


# == Balances ==================================================================================

class Balances:
    """A Balance's amount is the sum of its transactions' amounts (a new one holds 0)."""

    def __init__(self, backend):
        self.backend = backend

    def _service(self, key: str) -> CrudService:
        return self.backend.resources[key]

    def post_transaction(self, caller: Caller, balance_id: str, body: dict) -> dict:
        """Adds the transaction (made by the calling service user) and moves the Balance's
        amount by it, which records a ``billing.balance.updated`` Event."""
        scope = {"balanceId": balance_id}
        transactions = self._service(TRANSACTIONS)
        with self.backend.store.lock:
            created = transactions.create(caller, body, scope)
            shown = transactions.modify(caller, created["id"], {"entityType": "SERVICE_USER",
                                                                 "entityId": caller.client_id}, scope)
            balances = self._service(BALANCES)
            balance = balances.find(caller, balance_id)
            amount = money_rules.money(balance.get("amount", 0)) + money_rules.money(body["amount"])
            balances.modify(caller, balance_id, {"amount": money_rules.as_number(amount)})
            return shown

    def summary(self, caller: Caller, balance_id: str) -> dict:
        transactions = self._service(TRANSACTIONS)
        scope = {"balanceId": balance_id}
        with self.backend.store.lock:
            balance = self._service(BALANCES).find(caller, balance_id)
            stored = self.backend.store.peek(caller.org_id, transactions.kind.collection_name(scope)).values()
            end = balance.get("endDate")
            ended = end is not None and money_rules.parse_instant(end, "endDate") <= _now(self.backend)
            return money_rules.summarize((t["amount"] for t in stored if "amount" in t),
                                         rollover_amount=balance.get("rolloverAmount"), ended=ended).view()

    def _preview(self, caller: Caller, key: str, balance_id: str, body: dict, next_token: str | None) -> dict:
        """The schedule as a create would store it (checked the same way), not stored: its
        id names nothing."""
        if next_token:
            raise MockError.bad_request("nextToken: a preview answers in one page; no token was issued for it")
        service = self._service(key)
        scope = {"balanceId": balance_id}
        service.check_parents(caller, scope)
        fields = service.kind.prepare(self.backend, caller, body, None)
        service.check_references(caller, fields)
        return {"id": str(uuid.uuid4()), "version": 1, "balanceId": balance_id, **fields,
                **_stamp(self.backend, caller, None)}

    def preview_transaction_schedule(self, caller: Caller, balance_id: str, body: dict,
                                     next_token: str | None = None) -> dict:
        with self.backend.store.lock:
            shown = self._preview(caller, TRANSACTION_SCHEDULES, balance_id, body, next_token)
            start = money_rules.parse_instant(body["startDate"], "startDate")
            end = money_rules.parse_instant(body["endDate"], "endDate")
            money_rules.check_period(start, end, "startDate", "endDate")
            times = money_rules.run_times(start, end, body["frequency"], body["frequencyInterval"])
            return {**shown, **_runs(times, _now(self.backend))}

    def preview_charge_schedule(self, caller: Caller, balance_id: str, body: dict,
                                next_token: str | None = None) -> dict:
        """``amount``, or ``units`` with ``unitPrice`` (whose product is the amount)."""
        with self.backend.store.lock:
            shown = self._preview(caller, CHARGE_SCHEDULES, balance_id, body, next_token)
            units, price, amount = body.get("units"), body.get("unitPrice"), body.get("amount")
            if units is not None or price is not None:
                if amount is not None:
                    raise MockError.bad_request("amount: leave it out when units and unitPrice are given")
                if units is None:
                    raise MockError.bad_request("units: required with unitPrice")
                if price is None:
                    raise MockError.bad_request("unitPrice: required with units")
                shown["amount"] = money_rules.as_number(money_rules.money(units) * money_rules.money(price))
            elif amount is None:
                raise MockError.bad_request("amount: required (or units and unitPrice)")
            start = money_rules.parse_instant(body["servicePeriodStartDate"], "servicePeriodStartDate")
            end = money_rules.parse_instant(body["servicePeriodEndDate"], "servicePeriodEndDate")
            money_rules.check_period(start, end, "servicePeriodStartDate", "servicePeriodEndDate")
            times = money_rules.charge_times(start, end, body["billFrequency"], body["billFrequencyInterval"],
                                             bool(body["billInAdvance"]))
            return {**shown, **_runs(times, _now(self.backend))}


def _runs(times, now: datetime) -> dict:
    previous, upcoming = money_rules.previous_and_next(times, now)
    shown = {}
    if previous is not None:
        shown["previousRun"] = isoformat(previous)
    if upcoming is not None:
        shown["nextRun"] = isoformat(upcoming)
    return shown


# == one place the HTTP layer reaches them through ===============================================

class Platform:
    def __init__(self, backend):
        self.lookup_data = LookupData(backend)
        self.integration_runs = IntegrationRuns(backend)
        self.balances = Balances(backend)


def platform(backend) -> Platform:
    """The platform services over ``backend`` (they hold no state of their own)."""
    return Platform(backend)
