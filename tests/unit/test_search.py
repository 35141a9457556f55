"""m3ter's search syntax (mockserver/domain/search.py), without a server."""

from __future__ import annotations

import pytest

from mockserver.domain.errors import MockError
from mockserver.domain.search import SearchField, Term, matcher, ordered, page, parse_query, phrase_prefix

FIELDS = {
    "name": SearchField("name"),
    "code": SearchField("code"),
    "codes": SearchField("code", many_values=True),
    "ids": SearchField("id", many_values=True),
    "locked": SearchField("locked", "boolean"),
    "startDate": SearchField("startDate", "date"),
    "dtCreated": SearchField("dtCreated", "date-time"),
    "amount": SearchField("amount", "number"),
    "productId": SearchField("productIds", holds_list=True),
    "productIds": SearchField("productIds", many_values=True, holds_list=True),
}

ENTITIES = [
    {"id": "a", "name": "Premium Online", "code": "p-1", "locked": True, "startDate": "2024-01-01",
     "dtCreated": "2024-01-01T10:00:00.000Z", "amount": 100, "productIds": ["x", "y"]},
    {"id": "b", "name": "Acme Premium Online Ltd", "code": "p-2", "locked": False, "startDate": "2024-03-01",
     "dtCreated": "2024-02-01T10:00:00Z", "amount": 20.5, "productIds": ["y"]},
    {"id": "c", "name": "Premiums", "code": "p-3", "startDate": "2023-12-31",
     "dtCreated": "2024-03-01T10:00:00+00:00", "productIds": []},
    {"id": "d", "name": "premium on-line", "code": "P-1"},
]


def ids(query, operator=None):
    match = matcher(parse_query(query), FIELDS, operator, "Account")
    return [e["id"] for e in ENTITIES if match(e)]


def test_terms_are_joined_by_dollar_and_take_the_longest_comparator():
    assert parse_query("startDate>=2024-01-01$name~Premium On$code:a") == [
        Term("startDate", ">=", "2024-01-01"), Term("name", "~", "Premium On"), Term("code", ":", "a")]
    assert parse_query(None) == [] and parse_query("") == [] and parse_query("$ $") == []
    assert parse_query("code:a:b") == [Term("code", ":", "a:b")]


@pytest.mark.parametrize("query, fragment", [
    ("name", "'name' is not a term"),
    ("code:", "has no value"),
    ("=x", "is not a term"),
])
def test_malformed_terms_are_400s_naming_them(query, fragment):
    with pytest.raises(MockError) as raised:
        parse_query(query)
    assert raised.value.status == 400 and fragment in raised.value.message
    assert raised.value.message.startswith("searchQuery: ")


def test_an_unknown_field_is_a_400_naming_it_and_the_searchable_ones():
    with pytest.raises(MockError) as raised:
        ids("nme:Premium")
    assert raised.value.status == 400
    assert raised.value.message.startswith("searchQuery: 'nme' is not a searchable field of Account (searchable: ")
    assert "codes, dtCreated" in raised.value.message


def test_phrase_prefix_is_word_based_case_insensitive_and_anywhere_in_the_field():
    assert ids("name~Premium On") == ["a", "b", "d"]
    assert ids("name~premium") == ["a", "b", "c", "d"]
    assert ids("name~Premium Online Ltd") == ["b"]
    assert ids("name~remium") == []
    assert ids("name~Premiums") == ["c"]
    assert phrase_prefix("premium on-line", ["on", "li"])
    assert not phrase_prefix("Premium", ["premium", "online"])


def test_equality_is_exact_for_text_and_lists_take_alternatives():
    assert ids("code:p-1") == ["a"]
    assert ids("codes:p-1,p-3") == ["a", "c"]
    assert ids("codes: p-2 , P-1 ") == ["b", "d"]
    assert ids("ids:d,a,zzz") == ["a", "d"]


def test_a_field_holding_a_list_matches_on_any_element():
    assert ids("productId:y") == ["a", "b"]
    assert ids("productIds:x,zzz") == ["a"]


def test_dates_compare_as_instants_a_date_being_midnight_utc():
    assert ids("startDate>2024-01-01") == ["b"]
    assert ids("startDate>=2024-01-01") == ["a", "b"]
    assert ids("startDate<2024-01-01") == ["c"]
    assert ids("startDate:2024-01-01T00:00:00Z") == ["a"]
    assert ids("dtCreated>=2024-02-01") == ["b", "c"]
    assert ids("dtCreated<2024-02-01T10:00:00.001Z") == ["a", "b"]
    assert ids("dtCreated:2024-03-01T11:00:00+01:00") == ["c"]


def test_booleans_numbers_and_the_operator():
    assert ids("locked:TRUE") == ["a"]
    assert ids("locked:false") == ["b"]  # an entity without the field never matches
    assert ids("amount>20") == ["a", "b"]
    assert ids("amount<=20.5") == ["b"]
    assert ids("locked:true$amount<50") == []
    assert ids("locked:true$amount<50", "OR") == ["a", "b"]
    assert ids("") == ["a", "b", "c", "d"]


@pytest.mark.parametrize("query, fragment", [
    ("startDate~2024", "'~' applies to text fields only, not to 'startDate'"),
    ("codes~p", "'~' applies to text fields only, not to 'codes'"),
    ("locked>true", "'>' does not apply to 'locked'"),
    ("ids>=a", "'>=' does not apply to 'ids'"),
    ("locked:yes", "'locked' is true or false, not 'yes'"),
    ("startDate>last week", "'startDate' takes a date (YYYY-MM-DD) or an ISO-8601 date-time, not 'last week'"),
    ("amount>many", "'amount' takes a number, not 'many'"),
    ("name~--", "has no letter or digit"),
    ("codes:,", "names no value"),
])
def test_a_comparator_that_does_not_fit_the_field_is_a_400(query, fragment):
    with pytest.raises(MockError) as raised:
        ids(query)
    assert raised.value.status == 400 and fragment in raised.value.message


def test_an_unknown_operator_is_a_400():
    with pytest.raises(MockError) as raised:
        ids("code:a", "XOR")
    assert raised.value.message == "operator: 'XOR' is not one of ['AND', 'OR']"


def test_sorting_puts_entities_without_the_field_last_and_keeps_creation_order_for_ties():
    rows = [{"id": "1", "n": "b"}, {"id": "2"}, {"id": "3", "n": "a"}, {"id": "4", "n": "b"}]
    assert [r["id"] for r in ordered(rows, "n")] == ["3", "1", "4", "2"]
    assert [r["id"] for r in ordered(rows, "n", descending=True)] == ["1", "4", "3", "2"]
    assert [r["id"] for r in ordered(rows, None, descending=True)] == ["4", "3", "2", "1"]
    dated = [{"id": "x", "d": "2024-01-02T00:00:00Z"}, {"id": "y", "d": "2024-01-01T23:00:00-02:00"}]
    assert [r["id"] for r in ordered(dated, "d", "date-time")] == ["x", "y"]
    numbers = [{"id": "p", "v": 10}, {"id": "q", "v": 9.5}]
    assert [r["id"] for r in ordered(numbers, "v", "number")] == ["q", "p"]


def test_pages_are_offsets_and_the_next_token_is_the_next_offset():
    rows = [{"id": str(i)} for i in range(5)]
    assert page(rows, None, 2) == ([{"id": "0"}, {"id": "1"}], "2")
    assert page(rows, 2, 2) == ([{"id": "2"}, {"id": "3"}], "4")
    assert page(rows, 4, 2) == ([{"id": "4"}], None)
    assert page(rows, 9, 2) == ([], None)
    assert len(page(rows * 3, None, None)[0]) == 10
    with pytest.raises(MockError) as raised:
        page(rows, -1, 2)
    assert raised.value.message == "fromDocument: must be 0 or more, not -1"
