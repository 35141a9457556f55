"""The contract suite's machinery: one ``Runner`` per target builds the Schemathesis schema
from ``openapi/m3ter.yaml`` (always the local spec: it is what is being compared), signs
every call with a bearer token from the token flow, sends it in-process or over HTTP,
keeps writes against a real organization recognisable and cleans them up, runs every
check on the response, and counts what it generated.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import hypothesis
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mockserver.app import load_spec

from . import policy
from .auth import TOKEN_PATH, AuthFailed, TokenSource
from .target import RunOptions, Target

# Everything the suite creates in a real organization carries this prefix in its `code`
# (or, for integration configurations, which have no code, in its `name`).
CODE_PREFIX = "m3ter_contract_"
SAFE_WEBHOOK_HOST = "m3ter-contract.invalid"  # .invalid never resolves (RFC 2606)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATEFUL_STEPS = 12  # enough for create -> retrieve -> update -> list -> delete and a cross-family link

# The token sources of the run: a 401 to a token one of them holds means authentication broke.
_TOKEN_SOURCES: list[TokenSource] = []


@lru_cache(maxsize=1)
def spec() -> dict:
    return load_spec()


def spec_for_org(org_id: str) -> dict:
    """The spec as the run sends it: ``orgId`` narrowed to the run's organization (its
    example too). A token is good for one organization; Schemathesis's configured parameter
    values do not reach its stateful phase, and overwriting a generated value afterwards
    would turn negative cases into positive ones. A negative case may still send another
    organization, which must get a 4xx."""
    document = copy.deepcopy(spec())
    org = document["components"]["parameters"]["OrgId"]
    org["schema"] = {**org["schema"], "enum": [org_id]}
    org["example"] = org_id
    return document


def _resolve(node: Any, seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        if "$ref" in node and node["$ref"] not in seen:
            target: Any = spec()
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _resolve(target, seen + (node["$ref"],))
        return {k: _resolve(v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, seen) for v in node]
    return node


def _declared_properties(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    found = set(schema.get("properties", {}))
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(keyword, []):
            found |= _declared_properties(branch)
    return found


_PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Family:
    """A collection the suite can create in: a POST on a collection path whose item path
    (the collection path and one parameter) has a DELETE. The suite tracks what it
    creates there, marks it (over HTTP) and deletes it at the end."""

    create: str  # operationId
    collection: str  # path template of the collection (the create's path)
    delete_path: str  # path template of the delete
    marker: str | None  # "code" or "name": the field that carries CODE_PREFIX (None: the body has neither)
    linked: bool = False  # the create's response links to the delete: a stateful group forms around it

    @property
    def nested(self) -> bool:
        """Under a parent entity (``/balances/{balanceId}/transactions``): listed per parent only."""
        return len(_PARAMETER.findall(self.collection)) > 1


@lru_cache(maxsize=1)
def families() -> tuple[Family, ...]:
    ops = {op["operationId"]: (path, method) for path, method, op in policy.operations()}
    deletes = {path: op["operationId"] for path, method, op in policy.operations() if method == "delete"}
    found: list[Family] = []
    depends: dict[str, set[str]] = {}
    for path, method, op in policy.operations():
        if method != "post":
            continue
        delete_path = next((p for p in deletes if p.startswith(path + "/{") and p.endswith("}")
                            and "/" not in p[len(path) + 1:]), None)
        if delete_path is None:
            continue
        response_links = op.get("responses", {}).get("200", {}).get("links", {})
        resolved = {name: _resolve(link) for name, link in response_links.items()}
        linked = any(ops.get(link.get("operationId"), ("", ""))[1] == "delete" for link in resolved.values())
        content = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
        fields = _declared_properties(_resolve(content.get("schema", {})))
        marker = "code" if "code" in fields else "name" if "name" in fields else None
        found.append(Family(op["operationId"], path, delete_path, marker, linked))
        # A link from this create to another create: that one refers to this one.
        for link in resolved.values():
            target = link.get("operationId")
            if target != op["operationId"] and ops.get(target, ("", ""))[1] == "post":
                depends.setdefault(target, set()).add(op["operationId"])
    # Delete dependents first (a schedule before its destination, a configuration before its
    # webhook); the clean-up goes round again for what was still referenced (409).
    order = {f.create: len(depends.get(f.create, ())) for f in found}
    return tuple(sorted(found, key=lambda f: -order[f.create]))


def family_of_path(path: str) -> Family | None:
    """The family whose collection holds ``path`` (the longest collection path it starts with)."""
    found = [f for f in families() if path == f.collection or path.startswith(f.collection + "/")]
    return max(found, key=lambda f: len(f.collection), default=None)


@dataclass(frozen=True)
class StatefulGroup:
    """Families whose links lead into each other, tested by one state machine: a machine
    over all 43 operations picks a given create -> delete -> retrieve chain so rarely that
    a DELETE which does not delete went unnoticed in 200 scenarios."""

    name: str
    paths: tuple[str, ...]  # collection paths; an operation belongs when its path starts with one

    @property
    def path_regex(self) -> str:
        return "^(" + "|".join(re.escape(p) for p in self.paths) + ")(/|$)"


@lru_cache(maxsize=1)
def stateful_groups() -> tuple[StatefulGroup, ...]:
    """One group per family, closed over the links that leave it (a destination's create
    links to a schedule's; a notification's and a webhook's to an integration
    configuration's); groups inside another are dropped."""
    by_id = {op["operationId"]: (path, op) for path, _, op in policy.operations()}
    collections = {f.create: f.collection for f in families() if f.linked}

    def family_of(path: str) -> str | None:
        return next((c for c in collections.values() if path == c or path.startswith(c + "/")), None)

    groups = []
    for family in families():
        if not family.linked:
            continue
        members, pending = set(), [family.collection]
        while pending:
            collection = pending.pop()
            if collection in members:
                continue
            members.add(collection)
            for path, op in by_id.values():
                if family_of(path) != collection:
                    continue
                for response in op.get("responses", {}).values():
                    for link in (response.get("links") or {}).values():
                        target = by_id.get(_resolve(link).get("operationId"), (None, None))[0]
                        if target and family_of(target):
                            pending.append(family_of(target))
        name = (by_id[family.create][1].get("tags") or [family.create])[0]
        groups.append(StatefulGroup(name, tuple(sorted(members))))
    return tuple(g for g in groups if not any(set(g.paths) < set(other.paths) for other in groups))


# -- checks of the suite's own ------------------------------------------------------------
def _message(response) -> str:
    try:
        body = response.json()
    except Exception:
        return ""
    return body.get("message", "") if isinstance(body, dict) else ""


def request_of(case) -> "policy.Request":
    """The parts of a case the policy's rules read."""

    def part(value):
        return value if isinstance(value, dict) else None

    return policy.Request(body=part(case.body), query=part(case.query), path=part(case.path_parameters),
                          operation=operation_id(case))


def positive_data_acceptance_check(runner: "Runner"):
    """Schemathesis's ``positive_data_acceptance``, except that a 400 which
    ``policy.judge_rejection`` finds to be the breach of a rule no schema can state is
    accepted. The runner supplies what the run knows (``RunKnowledge``)."""

    def positive_data_acceptance_m3ter(ctx, response, case):
        try:
            return positive_data_acceptance(ctx, response, case)
        except RejectedPositiveData as rejected:
            if response.status_code != 400:
                raise
            verdict = policy.judge_rejection(operation_id(case), _message(response), request_of(case),
                                             runner.knowledge, exact_messages=runner.target.is_mock)
            if verdict.accepted:
                return None
            raise RejectedPositiveData(operation=rejected.operation,
                                       message=f"{rejected.message}\nNot exempt: {verdict.why}",
                                       status_code=rejected.status_code,
                                       allowed_statuses=rejected.allowed_statuses) from None

    return positive_data_acceptance_m3ter


def suite_credentials_accepted(ctx, response, case):
    """A 401 to the suite's own, current credentials means authentication is broken: every
    other result of such a run would be meaningless (Schemathesis only warns about it)."""
    if response.status_code != 401:
        return None
    sent = response.request.headers.get("Authorization", "")
    if any(sent == "Bearer " + (source.current() or "") for source in _TOKEN_SOURCES):
        raise AssertionError("The target refused the suite's current bearer token (401): authentication is broken")
    if (any(sent == source.basic for source in _TOKEN_SOURCES) and case.operation.path == TOKEN_PATH
            and case.body == {"grant_type": "client_credentials"}):
        raise AssertionError("The target refused the suite's client credentials (401)")
    return None


# -- raw calls (token, cleanup) -------------------------------------------------------------
class RawClient:
    """Plain calls outside Schemathesis (the token, the clean-up), through the runner's
    session: over HTTP, or in-process through the ASGI app."""

    def __init__(self, target: Target, session: requests.Session):
        self.target = target
        self.session = session

    def request(self, method: str, path: str, *, headers: dict | None = None, json: Any = None,
                params: dict | None = None) -> tuple[int, Any]:
        url = (self.target.base_url or "") + path
        if path.startswith("/_mock/") and self.target.admin_token:
            headers = {"X-m3ter-mock-admin-token": self.target.admin_token, **(headers or {})}
        response = self.session.request(method, url, headers=headers, json=json, params=params, timeout=30)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body


# -- what the suite created ---------------------------------------------------------------
@dataclass
class Tracker:
    """Ids of everything created, so that all of it is deleted at the end, even after a
    failure; then a sweep deletes anything else carrying ``CODE_PREFIX``."""

    # family's create operationId -> id -> the path parameters it was created under (its parent's id)
    created: dict[str, dict[str, dict]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, operation_id: str, entity_id: str, path_parameters: dict | None = None) -> None:
        with self.lock:
            self.created.setdefault(operation_id, {})[entity_id] = dict(path_parameters or {})

    def discard(self, entity_id: str) -> None:
        with self.lock:
            for ids in self.created.values():
                ids.pop(entity_id, None)

    def count(self) -> int:
        return sum(len(ids) for ids in self.created.values())

    def clear(self) -> None:
        with self.lock:
            self.created.clear()


class RunKnowledge:
    """What the run knows about the target, for the policy's witnesses (``policy.Knowledge``):
    the entities it created (its tracker), the cursors and finished export jobs the target
    showed it, and, asked once or per question, the target's own event types and verdict on
    a calculation."""

    DOWNLOADABLE_FOR = timedelta(hours=24)

    def __init__(self, runner: "Runner"):
        self.runner = runner
        self.cursors: dict[str, tuple] = {}  # nextToken -> the list (policy.list_key) it came from
        self.succeeded_jobs: dict[str, datetime] = {}  # job id -> dateCreated
        self._event_types: frozenset[str] | None = None

    def holds(self, create_operation: str, entity_id: str) -> bool:
        return entity_id in self.runner.tracker.created.get(create_operation, {})

    def issued_cursor(self, token: str, list_key: tuple | None = None) -> bool:
        return token in self.cursors and (list_key is None or self.cursors[token] == list_key)

    def seen_downloadable(self, job_id: str) -> bool:
        created = self.succeeded_jobs.get(job_id)
        return created is not None and datetime.now(timezone.utc) - created < self.DOWNLOADABLE_FOR

    def event_types(self) -> frozenset[str] | None:
        if self._event_types is None:
            status, body = self._call("GET", "/events/types")
            events = body.get("events") if status == 200 and isinstance(body, dict) else None
            if isinstance(events, list):
                self._event_types = frozenset(e for e in events if isinstance(e, str))
        return self._event_types

    def calculation_valid(self, calculation: str, event_name: str) -> bool | None:
        status, body = self._call("POST", "/notifications/evaluate",
                                  json={"calculation": calculation, "eventName": event_name})
        success = body.get("success") if status == 200 and isinstance(body, dict) else None
        return success if isinstance(success, bool) else None

    def singleton_version(self, operation_id: str) -> int | None:
        path = next((p for p, _, op in policy.operations() if op.get("operationId") == operation_id), None)
        if path is None or path.count("{") != 1:  # a singleton's path names only the organization
            return None
        status, body = self._call("GET", path[len("/organizations/{orgId}"):])
        version = body.get("version") if status == 200 and isinstance(body, dict) else None
        return version if isinstance(version, int) else None

    def holds_code(self, list_path: str, code: str) -> bool | None:
        status, body = self._call("GET", f"{list_path}?{urlencode({'codes': code})}")
        data = body.get("data") if status == 200 and isinstance(body, dict) else None
        return any(isinstance(e, dict) and e.get("code") == code for e in data) if isinstance(data, list) else None

    def stored_meter(self, code: str) -> dict | None:
        # ``codes`` is split at commas (an array filter), so a code holding one is looked for page by page.
        query = {"codes": code} if "," not in code else {"pageSize": 100}
        for _ in range(1000):
            status, body = self._call("GET", f"/meters?{urlencode(query)}")
            data = body.get("data") if status == 200 and isinstance(body, dict) else None
            if not isinstance(data, list):
                return None
            found = next((e for e in data if isinstance(e, dict) and e.get("code") == code), None)
            if found is not None or "codes" in query or not isinstance(body.get("nextToken"), str):
                return found
            query = {**query, "nextToken": body["nextToken"]}
        return None

    def saw(self, op_id: str | None, body: Any, list_key: tuple | None = None) -> None:
        """Remember what a 2xx answer shows: a cursor, export jobs that succeeded."""
        if not isinstance(body, dict):
            return
        if isinstance(body.get("nextToken"), str):
            self.cursors[body["nextToken"]] = list_key
        jobs = body.get("data") if op_id == "listJobStatuses" else [body] if op_id == "GetJob" else []
        for job in jobs if isinstance(jobs, list) else []:
            if isinstance(job, dict) and job.get("status") == "SUCCEEDED" and isinstance(job.get("id"), str):
                try:
                    created = datetime.fromisoformat(str(job.get("dateCreated")).replace("Z", "+00:00"))
                except ValueError:
                    continue
                if created.tzinfo is not None:
                    self.succeeded_jobs[job["id"]] = created

    def _call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        runner = self.runner
        try:
            headers = {"Authorization": "Bearer " + runner.tokens.token()}
        except AuthFailed:
            return 0, None
        return runner.raw.request(method, f"/organizations/{runner.target.org_id}{path}", headers=headers, json=json)


@dataclass
class Stats:
    phases: Counter = field(default_factory=Counter)  # phase -> cases
    statuses: Counter = field(default_factory=Counter)  # (operationId, status) -> responses
    bearer_cases: int = 0  # cases of operations that take a bearer token
    authenticated_2xx: int = 0
    phase_bearer: Counter = field(default_factory=Counter)  # phase -> bearer cases
    phase_2xx: Counter = field(default_factory=Counter)  # phase -> their 2xx answers
    linked_2xx: int = 0  # stateful 2xx answers on an entity's own path (a link gave a real id)

    def vacuous(self) -> list[str]:
        """Why this run proved nothing, if it did not: a phase in which no authenticated call
        succeeded (every answer 401/403/4xx passes most checks), or a stateful phase whose
        links never reached an entity."""
        problems = [f"{phase}: {count} authenticated cases and not one 2xx answer"
                    for phase, count in sorted(self.phase_bearer.items())
                    if count >= 20 and not self.phase_2xx[phase]]
        if self.phase_bearer["stateful"] >= 20 and not self.linked_2xx:
            problems.append("stateful: no link ever led to an existing entity")
        return problems


class Runner:
    def __init__(self, target: Target, options: RunOptions):
        self.target = target
        self.options = options
        self.read_only = not target.writes
        self.stats = Stats()
        self.tracker = Tracker()
        if target.over_http:
            self.session = requests.Session()
        else:
            from schemathesis.python import asgi

            self.session = asgi.get_client(target.app).__enter__()
        if target.is_mock:
            self.session.trust_env = False  # no proxy look-up per call (a real org may need one)
        self.raw = RawClient(target, self.session)
        self.tokens = TokenSource(target.client_id, target.client_password, self._post_token)
        _TOKEN_SOURCES.append(self.tokens)
        self.knowledge = RunKnowledge(self)
        self.checks = [positive_data_acceptance_check(self), suite_credentials_accepted]
        self.schema = self._build_schema()
        self._serial = 0
        self.cleaned = 0  # entities the clean-up deleted
        self.cleanup_problems: list[str] = []
        self._swept = False

    # -- set-up ---------------------------------------------------------------------------
    def _build_schema(self):
        config = SchemathesisConfig.from_dict(policy.schemathesis_config(
            org_id=self.target.org_id, examples=self.options.examples, seed=self.options.seed,
            read_only=self.read_only))
        schema = schemathesis.openapi.from_dict(spec_for_org(self.target.org_id), config=config)
        if not self.target.over_http:
            schema.app = self.target.app
        elif self.target.base_url:
            schema.config.update(base_url=self.target.base_url)
        if self.read_only:
            schema = schema.exclude(lambda ctx: ctx.operation.method.upper() != "GET")  # (see state_machine)
        tokens = self.tokens

        @schema.auth(refresh_interval=None)
        class M3terClientCredentials:
            """Basic client credentials on the token endpoint, a bearer token everywhere else."""

            def get(self, case, context):
                return tokens.basic if case.operation.path == TOKEN_PATH else "Bearer " + tokens.token()

            def set(self, case, data, context):
                case.headers = {**(case.headers or {}), "Authorization": data}

        del M3terClientCredentials
        return schema

    def _post_token(self, path: str, headers: dict, body: dict) -> tuple[int, Any]:
        return self.raw.request("POST", path, headers=headers, json=body)

    def start(self, base_url: str | None = None) -> None:
        if base_url is not None:
            self.target.base_url = base_url
            self.schema.config.update(base_url=base_url)

    def call_kwargs(self) -> dict:
        kwargs: dict[str, Any] = {"session": self.session}
        if self.target.over_http:
            kwargs["base_url"] = self.target.base_url
        return kwargs

    def transport_kwargs(self) -> dict:
        return {"base_url": self.target.base_url} if self.target.over_http else {}

    # -- one case -------------------------------------------------------------------------
    def prepare(self, case) -> None:
        """Refuse writes in a read-only run; in a run over HTTP (a real org's path), make what
        a positive case creates recognisable and harmless."""
        if self.read_only and case.method.upper() not in READ_METHODS:
            raise RuntimeError(f"read-only run: refusing to send {case.method} {case.path}")
        sent = (case.headers or {}).get("Authorization", "")
        if sent.startswith("Bearer ") and self.tokens.issued(sent[len("Bearer "):]):
            # Generated earlier (the explicit examples are generated while pytest collects):
            # send the token the suite holds now, fetched again if that one has expired.
            case.headers["Authorization"] = "Bearer " + self.tokens.token()
        path_parameters = case.path_parameters if isinstance(case.path_parameters, dict) else {}
        if (not self.target.is_mock and case.method.upper() not in READ_METHODS
                and path_parameters.get("orgId", self.target.org_id) != self.target.org_id):
            # A negative case may name another organization; the credentials may reach it.
            path_parameters["orgId"] = self.target.org_id
        if not self.target.over_http or not isinstance(case.body, dict):
            return
        body = case.body
        if isinstance(body.get("url"), str):
            parts = urlsplit(body["url"])
            if parts.scheme in ("http", "https") and parts.hostname:
                body["url"] = urlunsplit((parts.scheme, SAFE_WEBHOOK_HOST, parts.path, parts.query, ""))
        if not _is_positive(case) or case.method.upper() not in ("POST", "PUT"):
            return
        family = self._family_of(case)
        if family is None or family.marker is None:
            return
        self._serial += 1
        body[family.marker] = f"{CODE_PREFIX}{self._serial:05d}_{uuid.uuid4().hex[:8]}"
        if "eventName" in body and not self.target.is_mock:
            body["active"] = False  # a real org's notifications created here never fire

    def _family_of(self, case) -> Family | None:
        path = case.operation.path
        for family in families():
            if path in (family.collection, family.delete_path):
                return family
        return None

    def call(self, case):
        """Send the case; a 401 to the current token makes the suite fetch a new one and
        send once more (the token expired or was revoked)."""
        response = case.call(**self.call_kwargs())
        sent = response.request.headers.get("Authorization", "")
        if response.status_code == 401 and sent == "Bearer " + (self.tokens.current() or ""):
            self.tokens.invalidate(self.tokens.current())
            case.headers = {**(case.headers or {}), "Authorization": "Bearer " + self.tokens.token()}
            response = case.call(**self.call_kwargs())
        return response

    def record(self, case, response) -> None:
        op_id = operation_id(case)
        phase = case.meta.phase.name.value if case.meta is not None else "unknown"
        self.stats.phases[phase] += 1
        self.stats.statuses[(op_id, response.status_code)] += 1
        ok = 200 <= response.status_code < 300
        if case.operation.path != TOKEN_PATH:
            self.stats.bearer_cases += 1
            self.stats.authenticated_2xx += ok
            self.stats.phase_bearer[phase] += 1
            self.stats.phase_2xx[phase] += ok
            if ok and phase == "stateful" and "{id}" in case.operation.path:
                self.stats.linked_2xx += 1
        remember(case, response, self.tracker, self.knowledge)

    def validate(self, case, response) -> None:
        case.validate_response(response, additional_checks=self.checks,
                               transport_kwargs=self.transport_kwargs() or None)

    def run_case(self, case) -> None:
        __tracebackhide__ = True
        self.prepare(case)
        response = self.call(case)
        self.record(case, response)
        self.validate(case, response)

    # -- stateful -------------------------------------------------------------------------
    def reset(self) -> None:
        """Empty the mock before a stateful scenario, so every scenario starts from the same
        state (Hypothesis requires that); a real org cannot be emptied, and is only cleaned
        of what the run created, at the end."""
        if not self.target.is_mock:
            return
        if self.target.app is not None:
            self.target.reset()
            self.tracker.clear()  # what the run "still holds" is gone too
        else:
            if not self._swept:
                # First, delete what the earlier phases created the way a real org is
                # cleaned up (by id, then by prefix), so that path is proven on every run.
                self._swept = True
                self.cleanup_problems += self.cleanup()
            status, body = self.raw.request("POST", "/_mock/reset")
            if status != 200:
                raise RuntimeError(f"POST /_mock/reset answered {status}: {body!r:.200}")
            self.tracker.clear()

    def state_machine(self, group: "StatefulGroup"):
        """The Hypothesis state machine over the spec's links between the operations of one
        group of families, with this runner's calls and checks."""
        runner = self
        # ``exclude``: Schemathesis 4 ORs an ``include`` with the configuration's per-operation
        # entries (policy.schemathesis_config), so an include would keep every operation.
        pattern = re.compile(group.path_regex)
        base = self.schema.exclude(lambda ctx: not pattern.match(ctx.operation.path)).as_state_machine()

        class ContractStateMachine(base):  # type: ignore[valid-type, misc]
            def setup(self):
                runner.reset()

            def before_call(self, case):
                runner.prepare(case)

            def get_call_kwargs(self, case):
                return runner.call_kwargs()

            def call(self, case, **kwargs):
                return runner.call(case)

            def after_call(self, response, case):
                super().after_call(response, case)
                runner.record(case, response)

            def validate_response(self, response, case, additional_checks=None, **kwargs):
                __tracebackhide__ = True
                super().validate_response(response, case, additional_checks=runner.checks,
                                          **runner.transport_kwargs())

        ContractStateMachine.__name__ = f"ContractStateMachine_{self.target.name}_{group.name}"
        hypothesis.seed(self.options.seed)(ContractStateMachine)
        return ContractStateMachine

    def stateful_settings(self) -> hypothesis.settings:
        """``stateful_examples`` scenarios per target, shared among the groups."""
        per_group = -(-self.options.stateful_examples // len(stateful_groups()))
        return hypothesis.settings(
            max_examples=per_group,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )

    def run_stateful(self, group: "StatefulGroup") -> None:
        __tracebackhide__ = True
        self.state_machine(group).run(settings=self.stateful_settings())

    # -- the end --------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Delete everything the run created (tracked ids first, then a sweep for the
        prefix). Returns what could not be deleted."""
        if self.read_only:
            return []
        if not self.target.over_http:
            self.target.reset()
            return []
        try:
            self._bearer()
        except AuthFailed as problem:
            return [f"cleanup impossible: {problem}"]
        org = self.target.org_id
        pending = [(family, entity_id, parameters) for family in families()
                   for entity_id, parameters in list(self.tracker.created.get(family.create, {}).items())]
        for family in families():
            pending += [(family, entity_id, {}) for entity_id in self._sweep(family)]
        unique: dict[tuple[str, str], tuple] = {}
        for entry in pending:
            unique.setdefault((entry[0].create, entry[1]), entry)
        pending = list(unique.values())
        left: list[str] = []
        # An entity another one still references is refused (409) until that one is gone:
        # go round again while that frees something.
        for _ in range(len(families()) + 1):
            referenced = []
            for family, entity_id, parameters in pending:
                path = _item_path(family.delete_path, {**parameters, "orgId": org}, entity_id)
                status, body = self.raw.request("DELETE", path, headers=self._bearer())
                if status in (200, 204, 404):
                    self.tracker.discard(entity_id)
                    self.cleaned += status != 404
                elif status == 409:
                    referenced.append((family, entity_id, parameters))
                else:
                    left.append(f"DELETE {path}: {status} {body!r:.200}")
            if not referenced or len(referenced) == len(pending):
                left += [f"DELETE {_item_path(f.delete_path, {**p, 'orgId': org}, i)}: still referenced (409)"
                         for f, i, p in referenced]
                break
            pending = referenced
        for family in families():
            for entity_id in self._sweep(family):
                left.append(f"{family.collection.replace('{orgId}', org)}: {entity_id} is still there")
        return left

    def _bearer(self) -> dict:
        """The current token (a long clean-up outlives a short-lived one)."""
        return {"Authorization": "Bearer " + self.tokens.token()}

    def _sweep(self, family: Family) -> list[str]:
        """Ids in the family's collection that carry CODE_PREFIX (a collection under a parent
        is listed per parent, so only what the run tracked is deleted there)."""
        if family.marker is None or family.nested:
            return []
        path = family.collection.replace("{orgId}", self.target.org_id)
        found, token = [], None
        for _ in range(1000):
            params = {"pageSize": 100, **({"nextToken": token} if token else {})}
            status, body = self.raw.request("GET", path, headers=self._bearer(), params=params)
            if status != 200 or not isinstance(body, dict):
                break
            for item in body.get("data") or []:
                marker = item.get(family.marker)
                if isinstance(marker, str) and marker.startswith(CODE_PREFIX):
                    found.append(item["id"])
            token = body.get("nextToken")
            if not token:
                break
        return found


def _item_path(template: str, parameters: dict, entity_id: str) -> str:
    """The delete path of one entity: its id in the last parameter, the others (the
    organization, the parent) from where it was created."""
    names = _PARAMETER.findall(template)
    values = {**{k: str(v) for k, v in parameters.items()}, names[-1]: entity_id}
    return _PARAMETER.sub(lambda m: quote(values[m.group(1)], safe="") if m.group(1) in values else m.group(0),
                          template)


def remember(case, response, tracker: Tracker, knowledge: RunKnowledge) -> None:
    """What a 2xx answer tells the policy's witnesses: the cursors and finished export jobs a
    GET shows, the entity a POST made, the entity a DELETE removed. (The suite's runner and
    a plain Schemathesis run, ``contracts/hooks.py``, both learn this way.)"""
    if not 200 <= response.status_code < 300:
        return
    method = case.method.upper()
    if method == "GET":
        knowledge.saw(operation_id(case), _json_body(response), policy.list_key(request_of(case)))
    elif method == "POST":
        # What a create made, and what an action made in the same collection (a replaced
        # account plan, a copied revision): the family's entity, to know and to delete.
        family = family_of_path(case.operation.path)
        entity_id = _json_field(response, "id")
        if family is not None and entity_id:
            tracker.add(family.create, entity_id,
                        case.path_parameters if isinstance(case.path_parameters, dict) else None)
    elif method == "DELETE":
        entity_id = _json_field(response, "id")
        if entity_id:
            tracker.discard(entity_id)


def operation_id(case) -> str | None:
    return case.operation.definition.raw.get("operationId")


def _is_positive(case) -> bool:
    meta = case.meta
    return meta is None or meta.generation.mode.is_positive


def _json_body(response) -> Any:
    try:
        return response.json()
    except Exception:
        return None


def _json_field(response, name: str) -> str | None:
    body = _json_body(response)
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


# -- the run ------------------------------------------------------------------------------
_RUN: dict[str, Any] = {"options": None, "runners": None}


def configure(options: RunOptions) -> None:
    _RUN["options"] = options
    _RUN["runners"] = None
    _RUN["delegates"] = None


def options() -> RunOptions:
    if _RUN["options"] is None:
        from .target import run_options

        _RUN["options"] = run_options()
    return _RUN["options"]


def runners() -> dict[str, Runner]:
    """One runner per target of this run, built once (the mock apps with them)."""
    if _RUN["runners"] is None:
        from .target import make_mock_app, mock_target, url_target

        built: dict[str, Runner] = {}
        for name in options().targets:
            if name in options().delegated:
                continue
            if name == "url":
                target = url_target()
            elif name == "http":
                target = mock_target(name, **_serve())
            else:
                target = mock_target(name, app=make_mock_app())
            built[name] = Runner(target, options())
        _RUN["runners"] = built
    return _RUN["runners"]


def delegates() -> dict:
    """The targets a second pytest process runs (see ``contracts/delegate.py``)."""
    if _RUN.get("delegates") is None:
        from .delegate import Delegate

        _RUN["delegates"] = {name: Delegate(name, options()) for name in options().delegated}
    return _RUN["delegates"]


def _serve(timeout: float = 60.0) -> dict:
    """Start ``python -m contracts.serve`` on a socket bound here to a free 127.0.0.1 port
    and return its URL and admin token (chosen here, handed down by the environment). It
    runs until ``stop_servers`` (or the end of this process): Schemathesis generates the
    explicit examples, with their tokens, while pytest collects, so the server must be up
    by then."""
    import atexit
    import os
    import secrets
    import selectors
    import socket
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    # This package is ``contracts`` in a source checkout and ``mockserver.contracts`` when
    # installed: the server is started under the same name, from where its top package is.
    top = sys.modules[__package__.partition(".")[0]]
    root = Path(top.__file__).resolve().parent.parent
    from .target import ENV_ADMIN_TOKEN

    admin_token = secrets.token_urlsafe(24)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
           ENV_ADMIN_TOKEN: admin_token}
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen([sys.executable, "-m", f"{__package__}.serve", str(sock.fileno())],
                               pass_fds=(sock.fileno(),), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=log, cwd=root, env=env, text=True)
    sock.close()  # the server holds its own copy
    _RUN.setdefault("servers", []).append((process, log))
    if len(_RUN["servers"]) == 1:
        atexit.register(stop_servers)
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout) and process.stdout.readline().strip() == "ready"
    if not ready:
        log.seek(0)
        raise RuntimeError(f"the mock server for the contract suite did not start:\n{log.read()[-3000:]}")
    return {"base_url": f"http://127.0.0.1:{port}", "admin_token": admin_token}


def server_errors() -> str:
    """What the suite's mock servers wrote on stderr (tracebacks of crashes, if any)."""
    text = []
    for _, log in _RUN.get("servers") or []:
        log.seek(0)
        text.append(log.read())
    return "".join(text)


def stop_servers() -> None:
    servers = _RUN.get("servers") or []
    while servers:
        process, log = servers.pop()
        if process.poll() is None:
            process.stdin.close()
            try:
                process.wait(timeout=10)
            except Exception:
                process.kill()
                process.wait()
        log.close()
