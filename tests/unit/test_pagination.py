"""Cursors (``nextToken``): what a client sees of them, and what binds them to their list."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from mockserver.domain.errors import MockError
from mockserver.domain.pagination import Cursors, ListScope

KEY = b"k" * 32
REJECTED = ("nextToken: not a token issued by this list (it was altered, or comes from "
            "another organization, collection or set of filters)")


@pytest.mark.parametrize("position", [0, 1, 9, 10, 99, 1000, 123456, 2**40])
def test_a_token_needs_no_escaping_in_a_query_string(position):
    """URL-safe base64 without '=' padding: the token goes into ?nextToken= as it is."""
    scope = ListScope("org", "things", {})
    token = Cursors(KEY).encode(scope, position)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token), token
    assert Cursors(KEY).decode(scope, token) == position


def test_the_filters_bind_as_a_set_not_in_the_order_they_were_given():
    cursors = Cursors(KEY)
    token = cursors.encode(ListScope("org", "things", {"codes": ["a"], "ids": ["1"]}), 7)
    assert cursors.decode(ListScope("org", "things", {"ids": ["1"], "codes": ["a"]}), token) == 7


def test_filters_that_are_dates_bind_a_token_too():
    cursors = Cursors(KEY)
    january = ListScope("org", "events", {"from": datetime(2026, 1, 1, tzinfo=timezone.utc)})
    february = ListScope("org", "events", {"from": datetime(2026, 2, 1, tzinfo=timezone.utc)})
    token = cursors.encode(january, 3)
    assert cursors.decode(january, token) == 3
    with pytest.raises(MockError):
        cursors.decode(february, token)


@pytest.mark.parametrize("other", [ListScope("org-2", "things", {}), ListScope("org", "things", {"codes": ["x"]})])
def test_a_token_from_another_list_is_refused_with_the_rules_message(other):
    cursors = Cursors(KEY)
    with pytest.raises(MockError) as raised:
        cursors.decode(other, cursors.encode(ListScope("org", "things", {}), 5))
    assert (raised.value.status, raised.value.message) == (400, REJECTED)


@pytest.mark.parametrize("token", ["", "no-dot", "a.b.c", "!!.!!"])
def test_a_malformed_token_is_refused_with_the_rules_message(token):
    with pytest.raises(MockError) as raised:
        Cursors(KEY).decode(ListScope("org", "things", {}), token)
    assert (raised.value.status, raised.value.message) == (400, REJECTED)
