from datetime import datetime, timedelta, timezone

import pytest

from mockserver.domain.clock import Clock, isoformat
from mockserver.domain.delivery_policy import RetryPolicy


@pytest.mark.parametrize(("status", "retryable"), [
    (None, True), (429, True), (500, True), (503, True), (599, True),
    (400, False), (401, False), (404, False), (409, False), (200, False), (301, False)])
def test_what_is_retried(status, retryable):
    assert RetryPolicy.retryable(status) is retryable


def test_backoff_doubles_from_the_base():
    policy = RetryPolicy(max_attempts=5, base_delay_seconds=1.5)
    assert [policy.delay_after(n).total_seconds() for n in (1, 2, 3, 4)] == [1.5, 3.0, 6.0, 12.0]


def test_attempt_limit():
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(2, 503) and not policy.should_retry(3, 503)
    assert not policy.should_retry(1, 404)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_frozen_clock_moves_only_when_told():
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    clock = Clock(frozen_at=start)
    seen = []
    clock.add_listener(seen.append)
    assert clock.now() == start and clock.frozen
    clock.advance(timedelta(minutes=5))
    assert clock.now() == start + timedelta(minutes=5) and seen == [clock.now()]
    with pytest.raises(ValueError):
        clock.set(start)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    stopped_at = clock.now()
    clock.unfreeze()
    assert not clock.frozen and clock.now() >= stopped_at  # runs on; never goes back
    clock.reset()
    assert clock.now() < start


def test_isoformat_is_utc_with_milliseconds():
    when = datetime(2030, 1, 2, 3, 4, 5, 678900, tzinfo=timezone(timedelta(hours=2)))
    assert isoformat(when) == "2030-01-02T01:04:05.678Z"
