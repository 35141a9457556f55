"""The fault rules of one running mock (``/_mock/faults``), consulted by the HTTP layer
before a request of the m3ter API reaches its handler.

Rules are the mock's control state, not an organization's data: they live here, under a
lock of their own (the store's lock is never taken on a request's way in), and a reset
drops them. Rules are tried in the order they were made; the first that fires decides."""

from __future__ import annotations

import secrets
import threading
import uuid
from typing import Any

from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.faults import Fault, FaultRule, MAX_SEED, parse_rule

# A bound on what a client can make the mock keep; spent rules count until deleted.
MAX_RULES = 100


class FaultRules:
    def __init__(self, backend):
        self.backend = backend
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        # operationId -> the rules that may fire on it, in order; rebuilt after each change,
        # so a request looks at its own operation's rules only (at most one per operation of
        # the spec: bounded).
        self._index: dict[str, tuple[FaultRule, ...]] = {}
        self.operations = frozenset(
            operation["operationId"]
            for item in backend.spec.get("paths", {}).values()
            for method, operation in item.items()
            if isinstance(operation, dict) and "operationId" in operation)

    @property
    def active(self) -> bool:
        """Whether any rule is held: read on every request, without the lock (a rule made
        while a request is on its way in may miss that request, as it may by a moment)."""
        return bool(self._rules)

    def create(self, body: Any) -> dict:
        rule = parse_rule(body, str(uuid.uuid4()), isoformat(self.backend.clock.now()), self.operations,
                          default_seed=secrets.randbelow(MAX_SEED + 1))
        with self._lock:
            if len(self._rules) >= MAX_RULES:
                raise MockError.conflict(f"there are {MAX_RULES} fault rules already (the most the mock keeps); "
                                         f"delete some first")
            self._set([*self._rules, rule])
            return rule.view()

    def list(self, org_id: str | None = None) -> list[dict]:
        with self._lock:
            return [rule.view() for rule in self._rules if org_id is None or rule.org_id == org_id]

    def get(self, rule_id: str) -> dict:
        with self._lock:
            return self._find(rule_id).view()

    def delete(self, rule_id: str) -> dict:
        with self._lock:
            rule = self._find(rule_id)
            self._set([other for other in self._rules if other is not rule])
            return rule.view()

    def clear(self) -> int:
        with self._lock:
            count = len(self._rules)
            self._set([])
            return count

    def _set(self, rules: list[FaultRule]) -> None:
        # The list first, then a fresh index: a reader that sees the new index sees the new list.
        self._rules = rules
        self._index = {}

    def _candidates(self, operation_id: str) -> tuple[FaultRule, ...]:
        index = self._index
        found = index.get(operation_id)
        if found is None:
            found = tuple(rule for rule in self._rules  # pragma: no mutate  speed only: callers check covers()
                          if rule.operation_id is None or rule.operation_id == operation_id)  # pragma: no mutate  as above
            index[operation_id] = found
        return found

    def _find(self, rule_id: str) -> FaultRule:
        for rule in self._rules:
            if rule.id == rule_id:
                return rule
        raise MockError.not_found(f"no fault rule with id {rule_id!r}")

    # -- on a request's way in ---------------------------------------------------------
    def needs_body(self, operation_id: str, org_id: str | None) -> bool:
        """Whether deciding on this call needs its JSON body (a rule that could fire on it
        matches on a body field)."""
        return any(rule.needs_body and rule.covers(operation_id, org_id) for rule in self._candidates(operation_id))

    def fire(self, operation_id: str, org_id: str | None, body: Any = None) -> Fault | None:
        """The fault for this call, if a rule fires on it; counts the call on every rule
        that matched it up to the one that fired."""
        with self._lock:
            for rule in self._candidates(operation_id):
                if rule.covers(operation_id, org_id) and rule.body_matches(body):
                    fault = rule.try_fire()
                    if fault is not None:
                        return fault
            return None
