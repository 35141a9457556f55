import time
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


# -- the retry policy at its edges (README: back-off 1, 2, 4, 8 s, 5 attempts) ------------------

def test_the_default_policy_waits_1_2_4_8_seconds_and_makes_5_attempts():
    policy = RetryPolicy()
    assert [policy.delay_after(n) for n in (1, 2, 3, 4)] == [timedelta(seconds=s) for s in (1, 2, 4, 8)]
    assert [policy.should_retry(n, None) for n in (1, 2, 3, 4, 5)] == [True, True, True, True, False]


@pytest.mark.parametrize(("status", "succeeded"), [
    (None, False), (199, False), (200, True), (204, True), (299, True), (300, False), (500, False)])
def test_only_2xx_is_a_success(status, succeeded):
    assert RetryPolicy.succeeded(status) is succeeded


@pytest.mark.parametrize(("status", "retryable"), [(428, False), (430, False), (499, False)])
def test_a_4xx_next_to_429_or_below_500_is_not_retried(status, retryable):
    assert RetryPolicy.retryable(status) is retryable


def test_one_attempt_and_no_delay_are_allowed_below_that_a_clear_error():
    assert not RetryPolicy(max_attempts=1, base_delay_seconds=0).should_retry(1, 503)
    assert RetryPolicy(base_delay_seconds=0).delay_after(3) == timedelta(0)
    with pytest.raises(ValueError, match="^max_attempts must be at least 1$"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="^base_delay_seconds must not be negative$"):
        RetryPolicy(base_delay_seconds=-0.001)


# -- the clock ----------------------------------------------------------------------------------

def test_a_naive_start_is_read_as_utc_and_an_aware_one_is_kept():
    assert Clock(frozen_at=datetime(2030, 1, 1)).now() == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert Clock(frozen_at=datetime(2030, 1, 1)).now().utcoffset() == timedelta(0)
    paris = datetime(2030, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert Clock(frozen_at=paris).now().utcoffset() == timedelta(hours=1)
    assert Clock(frozen_at=paris).now() == datetime(2030, 1, 1, tzinfo=timezone.utc)


def test_going_back_is_refused_with_one_message():
    clock = Clock(frozen_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(ValueError) as back:
        clock.advance(timedelta(microseconds=-1))
    with pytest.raises(ValueError) as earlier:
        clock.set(datetime(2029, 12, 31, tzinfo=timezone.utc))
    assert str(back.value) == str(earlier.value) == "the clock only moves forward"


def test_a_clock_moved_ahead_and_released_keeps_its_lead_when_moved_again():
    clock = Clock()
    real = datetime.now(timezone.utc)
    clock.advance(timedelta(days=1))
    clock.unfreeze()
    moved = clock.advance(timedelta(minutes=1))
    assert moved.utcoffset() == timedelta(0)
    # A day and a minute ahead of real time, give or take how long the lines above took.
    assert real + timedelta(days=1, minutes=1) <= moved < real + timedelta(days=1, minutes=2)


def test_listeners_hear_where_a_released_clock_runs_on_from():
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    clock = Clock(frozen_at=start)
    heard = []
    clock.add_listener(heard.append)
    clock.unfreeze()
    assert len(heard) == 1 and heard[0].utcoffset() == timedelta(0)
    assert start <= heard[0] < start + timedelta(minutes=1)
    clock.unfreeze()  # already running: nothing to tell
    assert len(heard) == 1


def _about(moment, expected):
    """Equal but for the moments the test itself takes; the mistakes it catches are a day off."""
    return expected - timedelta(minutes=1) <= moment <= expected + timedelta(minutes=1)


def test_a_new_clock_runs_at_real_time():
    assert _about(Clock().now(), datetime.now(timezone.utc))


def test_freezing_a_running_clock_stops_it_where_it_stands_lead_included():
    clock = Clock()
    clock.advance(timedelta(days=1))
    clock.unfreeze()
    stopped = clock.freeze()
    assert _about(stopped, datetime.now(timezone.utc) + timedelta(days=1))
    assert clock.frozen and clock.now() == stopped


def test_freezing_a_frozen_clock_keeps_its_time():
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    clock = Clock(frozen_at=start)
    assert clock.freeze() == start and clock.now() == start


def test_reset_goes_back_to_real_time_without_a_lead():
    clock = Clock()
    clock.advance(timedelta(days=3))
    clock.unfreeze()
    clock.reset()
    assert not clock.frozen and _about(clock.now(), datetime.now(timezone.utc))


def test_isoformat_is_utc_whatever_the_machines_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        text = isoformat(datetime(2030, 1, 2, 3, 4, 5, 678900, tzinfo=timezone(timedelta(hours=2))))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert text == "2030-01-02T01:04:05.678Z"
