"""The contract suite's policy in a plain ``schemathesis run``.

``schemathesis.toml`` at the top of the source tree names this module (``hooks =``), so that

    schemathesis run openapi/m3ter.yaml --url http://127.0.0.1:4010 --checks all

run from there tests the mock the way ``contracts/`` does, without the suite:

* **Authentication**: m3ter's token flow, as the suite runs it (``contracts/auth.py``): HTTP
  Basic client credentials on ``POST /oauth/token``, a bearer token from it everywhere else,
  fetched again after a 401 to it. The client is ``M3TER_API_KEY`` / ``M3TER_API_SECRET`` (the
  SDK's variables), by default ``schemathesis`` / ``schemathesis-pass``: README's command serves
  the mock with that client (``--client schemathesis:schemathesis-pass``).
* **One organization**: every schema-valid request, in every phase (the stateful one too: a
  ``[parameters]`` value in the toml does not reach it), goes to the organization
  ``M3TER_ORG_ID`` (default ``schemathesis-org``), whose state the run then knows.
* **The semantic 400s**: a ``Schema-valid request rejected`` failure with status 400 is dropped
  (``filter_failure``) only when ``policy.judge_rejection`` accepts it, exactly as the suite's
  ``positive_data_acceptance_m3ter`` does against the mock: the message is a rule's own
  wording for that operation, the run sees the breach itself (its witness: an id this run
  never created, a cursor the mock never returned to it, a name missing from the mock's own
  ``GET /events/types``...), and a rule about the request alone never excuses the values of
  the spec's own examples. Any other 400 stays a failure, with the reason appended.

What the run learns for the witnesses comes from its own answers (``after_call``): the ids
its creates returned and its deletes removed, the cursors and finished export jobs its lists
showed (``suite.remember``, shared with the suite).

The module is inert for a spec that is not m3ter's (no ``/oauth/token`` path) and for the
schemas the contract suite builds itself (they carry their own auth).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import requests
import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

from . import policy
from .auth import TOKEN_PATH, TokenSource
from .suite import RawClient, RunKnowledge, Tracker, operation_id, remember, request_of
from .target import Target

ENV_CLIENT_ID = "M3TER_API_KEY"
ENV_CLIENT_SECRET = "M3TER_API_SECRET"
ENV_ORG_ID = "M3TER_ORG_ID"
DEFAULT_CLIENT_ID = "schemathesis"
DEFAULT_CLIENT_SECRET = "schemathesis-pass"
DEFAULT_ORG_ID = "schemathesis-org"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def org_id() -> str:
    return _env(ENV_ORG_ID, DEFAULT_ORG_ID)


def _is_m3ter(schema: Any) -> bool:
    raw = getattr(schema, "raw_schema", None)
    return isinstance(raw, dict) and TOKEN_PATH in (raw.get("paths") or {})


class PlainRun:
    """What one plain run knows about the mock at one base URL: its token, what it created,
    and what the mock showed it. It has the attributes ``suite.RunKnowledge`` reads of a
    runner (``tokens``, ``raw``, ``tracker``, ``target``)."""

    def __init__(self, base_url: str):
        self.target = Target(name="plain", org_id=org_id(), client_id=_env(ENV_CLIENT_ID, DEFAULT_CLIENT_ID),
                             client_password=_env(ENV_CLIENT_SECRET, DEFAULT_CLIENT_SECRET),
                             base_url=base_url.rstrip("/"), is_mock=True)
        self.raw = RawClient(self.target, requests.Session())
        self.tokens = TokenSource(self.target.client_id, self.target.client_password,
                                  lambda path, headers, body: self.raw.request("POST", path, headers=headers,
                                                                               json=body))
        self.tracker = Tracker()
        self.knowledge = RunKnowledge(self)


_RUNS: dict[str, PlainRun] = {}
_LOCK = threading.Lock()


def run_for(case) -> PlainRun:
    base_url = case.operation.schema.get_base_url()
    with _LOCK:
        if base_url not in _RUNS:
            _RUNS[base_url] = PlainRun(base_url)
        return _RUNS[base_url]


def _plain(case) -> bool:
    """A case of a plain run: m3ter's spec, with no auth of the suite's own on its schema."""
    schema = case.operation.schema
    return _is_m3ter(schema) and not schema.auth.providers


def _is_positive(case) -> bool:
    meta = case.meta
    return meta is None or meta.generation.mode.is_positive


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    """A schema-valid request goes to the run's organization. The spec allows any ``orgId``
    (a new one is a new, empty organization), so narrowing the spec to one would turn every
    other id into an "invalid" value the mock accepts; and an invalid request keeps what
    was generated, so that it stays invalid."""
    if _plain(case) and _is_positive(case) and isinstance(case.path_parameters, dict) \
            and "orgId" in case.path_parameters:
        case.path_parameters["orgId"] = org_id()


@schemathesis.auth(refresh_interval=None)
class M3terClientCredentials:
    """Basic client credentials on the token endpoint, a bearer token everywhere else."""

    def get(self, case, context):
        if not _plain(case):
            return None
        tokens = run_for(case).tokens
        return tokens.basic if case.operation.path == TOKEN_PATH else "Bearer " + tokens.token()

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": data}


@schemathesis.hook
def after_call(context, case, response) -> None:
    if not _plain(case):
        return
    run = run_for(case)
    if response.status_code == 401:
        sent = (response.request.headers or {}).get("Authorization", "")
        if sent == "Bearer " + (run.tokens.current() or ""):
            run.tokens.invalidate(run.tokens.current())  # expired or revoked: the next call fetches one
        return
    remember(case, response, run.tracker, run.knowledge)


def _message(response) -> str:
    try:
        body = response.json()
    except Exception:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else ""


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but a 400 the policy accepts as the breach of one of its rules."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400 or not _plain(case):
        return True
    verdict = policy.judge_rejection(operation_id(case), _message(response), request_of(case),
                                     run_for(case).knowledge, exact_messages=True)
    if verdict.accepted:
        return False
    failure.message = f"{failure.message}\nNot exempt (contracts/policy.py): {verdict.why}"
    return True
