"""HTTP handlers of measurement ingest and the measurements file upload service: parse,
call ``mockserver.backend.usage``, shape. The rules are in the backend and in
``mockserver.domain.measurements``."""

from __future__ import annotations

import flask

from mockserver.domain import measurements as rules
from mockserver.domain.errors import MockError

from ..context import backend, caller, page


def _base_url() -> str:
    return flask.request.host_url


def submit_measurements(orgId, user, body):
    # m3ter's limit is on the payload (under 512,000 bytes), below the mock's body limit.
    size = flask.request.content_length
    if size is None:
        size = len(flask.request.get_data(cache=True))
    if size >= rules.MAX_BATCH_BYTES:
        raise MockError(413, f"body: {size} bytes; a measurements payload must be smaller than "
                             f"{rules.MAX_BATCH_BYTES} bytes (send fewer measurements per call)")
    return backend().usage.submit(caller(orgId, user), body["measurements"], base_url=_base_url())


def failed_ingest_download_url(orgId, user, file=None):
    return backend().usage.failure_url(caller(orgId, user), file, _base_url())


def generate_upload_url(orgId, user, body):
    return backend().usage.upload_url(caller(orgId, user), body, _base_url())


def list_upload_jobs(orgId, user, pageSize=None, nextToken=None, dateCreatedStart=None, dateCreatedEnd=None,
                     fileKey=None):
    # ``fileKey`` is deprecated in m3ter's spec and selects nothing.
    return page(*backend().usage.jobs(caller(orgId, user), dateCreatedStart, dateCreatedEnd, pageSize, nextToken))


def get_upload_job(orgId, id, user):
    return backend().usage.job(caller(orgId, user), id)


def original_file_url(orgId, id, user):
    return backend().usage.original_url(caller(orgId, user), id, _base_url())


HANDLERS = {
    "SubmitMeasurements": submit_measurements,
    "GetValidationErrorDownloadUrl": failed_ingest_download_url,
    "GenerateUploadUrl": generate_upload_url,
    "ListJobs": list_upload_jobs,
    "GetUploadJobResponse": get_upload_job,
    "GetJobOriginalFileDownloadUrl": original_file_url,
}
