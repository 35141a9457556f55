"""Fault rules: what an injected fault answers and when a rule fires (pure rules, no I/O).

A rule names what it matches (an operationId, an organization, a field of the JSON body
equal to a value; each optional) and what it does (answer a status, wait, or drop the
connection). It fires on every matching call, on the next ``times`` of them, or on each
with ``probability``, drawn from a generator seeded with ``seed`` so that a run can be
replayed exactly: the n-th matching call of a rule with a given seed always gets the same
draw."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .errors import MockError

ACTIONS = ("status", "delay", "drop")
# The statuses the m3ter SDKs retry (408, 409, 429, every 5xx): the paths a fault exercises.
RETRYABLE_STATUSES = frozenset([408, 409, 429, *range(500, 600)])
MAX_DELAY_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 3600
DEFAULT_RETRY_AFTER_SECONDS = 1  # a 429 always says when to come back
MAX_TIMES = 1_000_000
MAX_SEED = 2**32 - 1
MAX_MESSAGE = 500
MAX_BODY_FIELD = 200

_FIELDS = ("operationId", "orgId", "bodyField", "bodyEquals", "action", "status", "retryAfter",
           "message", "delaySeconds", "times", "probability", "seed")


@dataclass(frozen=True)
class Fault:
    """What one firing of a rule does to the request it fired on."""
    rule_id: str
    action: str
    delay_seconds: float
    status: int | None = None
    body: dict | None = None
    headers: dict = field(default_factory=dict)


@dataclass
class FaultRule:
    id: str
    action: str
    created_at: str
    operation_id: str | None = None
    org_id: str | None = None
    body_field: str | None = None
    body_equals: Any = None
    status: int | None = None
    retry_after: int | None = None
    message: str | None = None
    delay_seconds: float = 0.0
    times: int | None = None
    probability: float | None = None
    seed: int | None = None
    matched: int = 0
    fired: int = 0
    _rng: random.Random | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.probability is not None and self._rng is None:
            self._rng = random.Random(self.seed)

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times

    @property
    def needs_body(self) -> bool:
        return self.body_field is not None

    def covers(self, operation_id: str, org_id: str | None) -> bool:
        """Whether the rule may fire on a call of ``operation_id`` in ``org_id`` (the body
        aside)."""
        return (not self.spent
                and (self.operation_id is None or self.operation_id == operation_id)
                and (self.org_id is None or self.org_id == org_id))

    def body_matches(self, body: Any) -> bool:
        if self.body_field is None:
            return True
        found, value = lookup(body, self.body_field)
        return found and same_json(value, self.body_equals)

    def try_fire(self) -> Fault | None:
        """One matching call: counts it, draws when the rule has a probability, and gives
        the fault when the rule fires."""
        self.matched += 1
        if self._rng is not None and not self._rng.random() < self.probability:
            return None
        self.fired += 1
        return self.fault()

    def fault(self) -> Fault:
        if self.action != "status":
            return Fault(self.id, self.action, self.delay_seconds)
        headers = {}
        retry_after = self.retry_after
        if retry_after is None and self.status == 429:
            retry_after = DEFAULT_RETRY_AFTER_SECONDS
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Server Error"
        text = self.message or reason
        return Fault(self.id, "status", self.delay_seconds, self.status,
                     {"message": f"injected fault (m3ter-mock fault rule {self.id}): {text}"}, headers)

    def view(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "action": self.action}
        for key, value in (("operationId", self.operation_id), ("orgId", self.org_id),
                           ("bodyField", self.body_field)):
            if value is not None:
                out[key] = value
        if self.body_field is not None:
            out["bodyEquals"] = self.body_equals
        for key, value in (("status", self.status), ("retryAfter", self.retry_after),
                           ("message", self.message), ("times", self.times),
                           ("probability", self.probability), ("seed", self.seed)):
            if value is not None:
                out[key] = value
        if self.delay_seconds:
            out["delaySeconds"] = self.delay_seconds
        if self.times is not None:
            out["remaining"] = max(self.times - self.fired, 0)
        out.update(matched=self.matched, fired=self.fired, active=not self.spent,
                   createdAt=self.created_at)
        return out


def lookup(body: Any, path: str) -> tuple[bool, Any]:
    """The value at a dotted path of a JSON object (``a.b``): (found, value)."""
    value = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def same_json(a: Any, b: Any) -> bool:
    """Equality of JSON values as JSON sees them: ``true`` is not ``1`` (Python says it is),
    while ``1`` and ``1.0`` are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(body: dict, name: str, low: float, high: float, *, integer: bool) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise MockError.bad_request(f"{name}: must be {'an integer' if integer else 'a number'}")
    if not low <= value <= high:
        # An integer bound as written (1000000, not 1e+06); a float one without a trailing .0.
        raise MockError.bad_request(f"{name}: must be between {_bound(low)} and {_bound(high)}")
    return value


def parse_rule(body: Any, rule_id: str, created_at: str, operations: frozenset[str] | set[str],
               default_seed: int) -> FaultRule:
    """A rule from the body of ``POST /_mock/faults``: a 400 naming the field for anything
    the rule could not mean. ``default_seed`` seeds a probability rule that gives no seed
    (it is shown in the listing, so that run can be replayed)."""
    if not isinstance(body, dict):
        raise MockError.bad_request("body: must be a JSON object")
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise MockError.bad_request(f"{unknown[0]}: not a field of a fault rule")
    action = body.get("action")
    if action not in ACTIONS:
        raise MockError.bad_request(f"action: must be one of {list(ACTIONS)}")
    operation_id = body.get("operationId")
    if operation_id is not None and (not isinstance(operation_id, str) or operation_id not in operations):
        raise MockError.bad_request(f"operationId: no operation {str(operation_id)[:100]!r} in the m3ter API")
    org_id = body.get("orgId")
    if org_id is not None and (not isinstance(org_id, str) or not org_id):
        raise MockError.bad_request("orgId: must be a non-empty string")
    body_field = body.get("bodyField")
    if body_field is not None:
        if (not isinstance(body_field, str) or not body_field or len(body_field) > MAX_BODY_FIELD
                or "" in body_field.split(".")):
            raise MockError.bad_request("bodyField: must be a field name, or a dotted path such as 'a.b'")
        if "bodyEquals" not in body:
            raise MockError.bad_request("bodyEquals: required with bodyField")
    elif "bodyEquals" in body:
        raise MockError.bad_request("bodyEquals: only with bodyField")

    status = _number(body, "status", 100, 599, integer=True)
    retry_after = _number(body, "retryAfter", 0, MAX_RETRY_AFTER_SECONDS, integer=True)
    message = body.get("message")
    if action == "status":
        if status is None:
            raise MockError.bad_request("status: required when action is 'status'")
        if status not in RETRYABLE_STATUSES:
            raise MockError.bad_request("status: must be 408, 409, 429 or a 5xx")
        if message is not None and (not isinstance(message, str) or len(message) > MAX_MESSAGE):
            raise MockError.bad_request(f"message: must be a string of at most {MAX_MESSAGE} characters")
    else:
        for name in ("status", "retryAfter", "message"):
            if body.get(name) is not None:
                raise MockError.bad_request(f"{name}: only when action is 'status'")

    delay = _number(body, "delaySeconds", 0, MAX_DELAY_SECONDS, integer=False)
    if action == "delay" and not delay:
        raise MockError.bad_request(f"delaySeconds: required when action is 'delay' "
                                    f"(more than 0, at most {MAX_DELAY_SECONDS:g})")
    times = _number(body, "times", 1, MAX_TIMES, integer=True)
    probability = _number(body, "probability", 0, 1, integer=False)
    if probability == 0:
        raise MockError.bad_request("probability: must be more than 0 (a rule that never fires is no rule)")
    seed = _number(body, "seed", 0, MAX_SEED, integer=True)
    if seed is not None and probability is None:
        raise MockError.bad_request("seed: only with probability")
    if probability is not None and seed is None:
        seed = default_seed
    return FaultRule(id=rule_id, action=action, created_at=created_at, operation_id=operation_id,
                     org_id=org_id, body_field=body_field, body_equals=body.get("bodyEquals"),
                     status=status, retry_after=retry_after, message=message,
                     delay_seconds=float(delay or 0), times=times,
                     probability=float(probability) if probability is not None else None, seed=seed)
