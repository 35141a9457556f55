"""The pure rules of fault injection (mockserver/domain/faults.py): what a rule matches, when
it fires, and what its fault answers."""

from __future__ import annotations

import pytest

from mockserver.domain.errors import MockError
from mockserver.domain.faults import lookup, parse_rule, same_json

OPERATIONS = frozenset({"ListProducts", "PostProduct"})


def rule(**body):
    return parse_rule(body, "r1", "2026-01-01T00:00:00.000Z", OPERATIONS, default_seed=99)


def test_json_equality_keeps_true_apart_from_1_and_1_apart_from_the_string():
    assert same_json(1, 1.0)
    assert not same_json(True, 1)
    assert not same_json(1, True)
    assert not same_json("1", 1)
    assert same_json({"a": [1, True]}, {"a": [1.0, True]})
    assert not same_json({"a": [1, True]}, {"a": [1, 1]})
    assert same_json(None, None) and not same_json(None, False)


def test_a_dotted_field_reaches_into_nested_objects_only():
    assert lookup({"a": {"b": 0}}, "a.b") == (True, 0)
    assert lookup({"a": {"b": None}}, "a.b") == (True, None)
    assert lookup({"a": [{"b": 1}]}, "a.b") == (False, None)
    assert lookup(None, "a") == (False, None)


def test_a_body_rule_matches_the_value_and_never_a_missing_field():
    equals_null = rule(action="drop", bodyField="code", bodyEquals=None)
    assert equals_null.body_matches({"code": None})
    assert not equals_null.body_matches({})
    assert not equals_null.body_matches(None)


def test_a_rule_covers_its_operation_and_organization_until_spent():
    limited = rule(action="drop", operationId="PostProduct", orgId="o1", times=2)
    assert limited.covers("PostProduct", "o1")
    assert not limited.covers("ListProducts", "o1")
    assert not limited.covers("PostProduct", "o2")
    assert not limited.covers("PostProduct", None)
    assert limited.try_fire() and limited.try_fire()
    assert not limited.covers("PostProduct", "o1")
    assert limited.view()["remaining"] == 0 and limited.view()["active"] is False
    every = rule(action="drop")
    assert every.covers("ListProducts", None) and every.covers("PostProduct", "any")


def test_the_same_seed_draws_the_same_calls_and_counts_every_draw():
    first, second = rule(action="drop", probability=0.5, seed=11), rule(action="drop", probability=0.5, seed=11)
    draws = [first.try_fire() is not None for _ in range(50)]
    assert draws == [second.try_fire() is not None for _ in range(50)]
    assert first.matched == 50 and first.fired == sum(draws)


def test_a_probability_rule_without_a_seed_gets_the_default_one():
    assert rule(action="drop", probability=0.5).seed == 99
    assert rule(action="drop").seed is None


def test_a_429_says_retry_after_1_by_default_other_statuses_only_when_told():
    assert rule(action="status", status=429).fault().headers == {"Retry-After": "1"}
    assert rule(action="status", status=429, retryAfter=0).fault().headers == {"Retry-After": "0"}
    assert rule(action="status", status=503).fault().headers == {}
    assert rule(action="status", status=503, retryAfter=5).fault().headers == {"Retry-After": "5"}


def test_the_message_says_the_fault_is_injected():
    assert rule(action="status", status=503).fault().body == {
        "message": "injected fault (m3ter-mock fault rule r1): Service Unavailable"}
    assert rule(action="status", status=599).fault().body == {
        "message": "injected fault (m3ter-mock fault rule r1): Server Error"}
    assert rule(action="status", status=409, message="locked").fault().body == {
        "message": "injected fault (m3ter-mock fault rule r1): locked"}


def test_a_delay_may_come_before_any_action_and_is_at_most_30_seconds():
    assert rule(action="drop", delaySeconds=2).fault().delay_seconds == 2.0
    assert rule(action="delay", delaySeconds=30).fault().delay_seconds == 30.0
    with pytest.raises(MockError, match="delaySeconds: must be between 0 and 30"):
        rule(action="delay", delaySeconds=30.5)


@pytest.mark.parametrize("body, field", [
    ({"action": "status", "status": 200}, "status"),
    ({"action": "status", "status": True}, "status"),
    ({"action": "delay", "delaySeconds": "1"}, "delaySeconds"),
    ({"action": "drop", "times": 0}, "times"),
    ({"action": "drop", "probability": 1.5}, "probability"),
    ({"action": "drop", "bodyField": "a..b", "bodyEquals": 1}, "bodyField"),
    ({"action": "drop", "orgId": ""}, "orgId"),
    ({"action": "drop", "colour": "red"}, "colour"),
    ({"action": "delay", "delaySeconds": 1, "message": "x"}, "message"),
])
def test_a_bad_rule_is_a_400_naming_its_field(body, field):
    with pytest.raises(MockError) as raised:
        parse_rule(body, "r1", "now", OPERATIONS, default_seed=1)
    assert raised.value.status == 400
    assert raised.value.message.startswith(field + ":")
