"""The rules of a Lookup Table Revision's data (mockserver.domain.lookup_data)."""

from __future__ import annotations

import pytest

from mockserver.domain import lookup_data as rules
from mockserver.domain.errors import MockError

SCHEMA = rules.DataSchema(fields=(("customer", "STRING"), ("tier", "NUMBER"), ("rate", "NUMBER"),
                                  ("note", "STRING")), keys=("customer", "tier"))


def refused(call, *args) -> str:
    with pytest.raises(MockError) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value.message


def test_schema_of_a_revision():
    schema = rules.DataSchema.of({"fields": [{"name": "a", "type": "STRING"}, {"name": "b", "type": "NUMBER"}],
                                  "keys": ["a"]})
    assert schema == rules.DataSchema((("a", "STRING"), ("b", "NUMBER")), ("a",))
    assert schema.same_as(rules.DataSchema((("b", "NUMBER"), ("a", "STRING")), ("a",)))
    assert not schema.same_as(rules.DataSchema((("a", "STRING"), ("b", "STRING")), ("a",)))
    assert not schema.same_as(rules.DataSchema((("a", "STRING"), ("b", "NUMBER")), ("b",)))


def test_a_checked_item_keeps_the_revision_field_order_and_drops_nulls():
    item = {"note": None, "rate": 1.5, "tier": 2, "customer": "acme"}
    assert list(rules.check_item(SCHEMA, item).items()) == [("customer", "acme"), ("tier", 2), ("rate", 1.5)]


@pytest.mark.parametrize("item, message", [
    ({"customer": "acme", "tier": 1, "colour": "red"},
     "item.colour: not a field of this revision (its fields: customer, tier, rate, note)"),
    ({"customer": "acme", "tier": "1"}, "item.tier: '1' is not a number (a NUMBER field)"),
    ({"customer": "acme", "tier": False}, "item.tier: False is not a number (a NUMBER field)"),
    ({"customer": "acme", "tier": 1, "note": 5}, "item.note: 5 is not a string (a STRING field)"),
    ({"customer": "acme"}, "item.tier: required (a key field of this revision)"),
    ({"customer": None, "tier": 1}, "item.customer: required (a key field of this revision)"),
    ({"customer": "", "tier": 1}, "item.customer: a key field's value cannot be empty"),
    ({"customer": "a,b", "tier": 1},
     "item.customer: a key field's value cannot contain ',' (it separates the values of a lookup key)"),
    ([1, 2], "item: must be an object of field values"),
])
def test_an_item_that_breaks_the_schema_is_refused_naming_the_field(item, message):
    assert refused(rules.check_item, SCHEMA, item) == message


def test_a_non_key_string_may_hold_a_comma_or_be_empty():
    assert rules.check_item(SCHEMA, {"customer": "acme", "tier": 1, "note": ""}) == {
        "customer": "acme", "tier": 1, "note": ""}
    assert rules.check_item(SCHEMA, {"customer": "acme", "tier": 1, "note": "a,b"})["note"] == "a,b"


def test_the_lookup_key_joins_the_key_values_in_key_order():
    assert rules.lookup_key(SCHEMA, {"tier": 3, "customer": "acme"}) == "acme,3"
    assert rules.lookup_key(SCHEMA, {"tier": 3.0, "customer": "acme"}) == "acme,3"
    assert rules.lookup_key(SCHEMA, {"tier": 2.5, "customer": "acme"}) == "acme,2.5"


def test_key_values_read_a_lookup_key():
    assert rules.key_values(SCHEMA, "acme,3") == {"customer": "acme", "tier": 3}
    assert rules.key_values(SCHEMA, "acme,2.5") == {"customer": "acme", "tier": 2.5}
    assert refused(rules.key_values, SCHEMA, "acme") == (
        "lookupKey: 'acme' has 1 value(s); this revision has 2 key field(s) (customer, tier), "
        "given comma-separated in that order")
    assert refused(rules.key_values, SCHEMA, "acme,high") == (
        "lookupKey: 'high' is not a number (key field tier is a NUMBER)")
    assert refused(rules.key_values, SCHEMA, "acme,nan") == (
        "lookupKey: 'nan' is not a number (key field tier is a NUMBER)")
    assert refused(rules.key_values, SCHEMA, ",3") == "lookupKey: the value of key field customer is empty"


def test_an_item_for_a_key_takes_its_key_fields_from_the_key():
    assert rules.item_for_key(SCHEMA, "acme,3", {"rate": 9}) == {"customer": "acme", "tier": 3, "rate": 9}
    assert rules.item_for_key(SCHEMA, "acme,3", {"tier": 3.0, "rate": 9}) == {"customer": "acme", "tier": 3.0,
                                                                               "rate": 9}
    assert refused(rules.item_for_key, SCHEMA, "acme,3", {"customer": "zeta"}) == (
        "item: its key fields give the lookup key 'zeta,3', not 'acme,3' as the path says")


def test_a_status_only_moves_forward():
    for current, wanted in [("DRAFT", "PUBLISHED"), ("DRAFT", "ARCHIVED"), ("PUBLISHED", "ARCHIVED"),
                            ("DRAFT", "DRAFT"), ("ARCHIVED", "ARCHIVED")]:
        rules.check_status_change(current, wanted)
    assert refused(rules.check_status_change, "PUBLISHED", "DRAFT") == (
        "status: a PUBLISHED revision cannot go back to DRAFT (a status only moves forward: "
        "DRAFT -> PUBLISHED -> ARCHIVED)")
    assert refused(rules.check_status_change, "ARCHIVED", "PUBLISHED").startswith("status: a ARCHIVED revision")
    assert refused(rules.check_status_change, "DRAFT", "LIVE") == (
        "status: 'LIVE' is not one of ['DRAFT', 'PUBLISHED', 'ARCHIVED']")


@pytest.mark.parametrize("fields, keys, message", [
    ([{"type": "STRING"}, {"name": "b", "type": "NUMBER"}], ["b"], "fields[0].name: required"),
    ([{"name": "a", "type": "STRING"}, {"name": "a", "type": "NUMBER"}], ["a"], "fields[1].name: 'a' is given twice"),
    ([{"name": "a", "type": "STRING"}, {"name": "b", "type": "NUMBER"}], ["c"],
     "keys[0]: 'c' is not one of the fields (a, b)"),
    ([{"name": "a", "type": "STRING"}, {"name": "b", "type": "NUMBER"}], ["a", "a"], "keys[1]: 'a' is given twice"),
    ([{"name": "a", "type": "STRING"}, {"name": "b", "type": "NUMBER"}], ["a", "b"],
     "fields: at least one field must not be a key (it holds the looked-up value)"),
])
def test_a_revision_schema(fields, keys, message):
    assert refused(rules.check_revision_schema, fields, keys) == message


def test_a_revision_schema_that_is_right():
    rules.check_revision_schema([{"name": "a", "type": "STRING"}, {"name": "b", "type": "NUMBER"}], ["a"])


def test_a_revision_that_holds_data_keeps_its_fields_and_keys():
    fields = [{"name": "a", "type": "STRING"}, {"name": "b", "type": "NUMBER"}]
    existing = {"id": "r1", "status": "DRAFT", "itemCount": 0, "fields": fields, "keys": ["a"]}
    rules.check_revision_change(existing, {"fields": fields[:1] + [{"name": "c", "type": "STRING"}], "keys": ["a"]})
    holding = {**existing, "itemCount": 3}
    rules.check_revision_change(holding, {"fields": list(reversed(fields)), "keys": ["a"]})
    assert refused(rules.check_revision_change, holding, {"fields": fields, "keys": ["b"]}).startswith(
        "fields: Lookup Table Revision 'r1' holds data, so its fields and keys stay as they are")
    with pytest.raises(MockError) as caught:
        rules.check_revision_change({**existing, "status": "PUBLISHED"}, {"fields": fields, "keys": ["a"]})
    assert (caught.value.status, caught.value.message) == (
        409, "Lookup Table Revision 'r1' is PUBLISHED: only a DRAFT revision changes")


# -- files ------------------------------------------------------------------------------

ITEMS = [{"customer": "acme", "tier": 1, "rate": 1.5, "note": 'say "hi", then go'},
         {"customer": "zeta", "tier": 2, "rate": 2}]


def test_csv_has_a_header_of_the_fields_and_a_row_per_item():
    assert rules.render(SCHEMA, ITEMS, rules.CSV) == (
        b'customer,tier,rate,note\nacme,1,1.5,"say ""hi"", then go"\nzeta,2,2,\n')


def test_jsonl_has_an_item_per_line():
    assert rules.render(SCHEMA, ITEMS, rules.JSONL) == (
        b'{"customer":"acme","tier":1,"rate":1.5,"note":"say \\"hi\\", then go"}\n'
        b'{"customer":"zeta","tier":2,"rate":2}\n')


@pytest.mark.parametrize("content_type", [rules.CSV, rules.JSONL])
def test_a_rendered_file_reads_back(content_type):
    assert rules.parse(SCHEMA, rules.render(SCHEMA, ITEMS, content_type), content_type) == ITEMS


def test_a_csv_may_name_its_columns_in_any_order_and_leave_cells_empty():
    content = "\ufefftier,customer,rate\n1,acme,\n\n2,zeta,3.25\n".encode()
    assert rules.parse(SCHEMA, content, rules.CSV) == [{"customer": "acme", "tier": 1},
                                                       {"customer": "zeta", "tier": 2, "rate": 3.25}]


@pytest.mark.parametrize("content, message", [
    (b"", "line 1: the header row naming the revision's fields is missing"),
    (b"customer,tier,colour\n",
     "line 1: column 'colour' is not a field of this revision (its fields: customer, tier, rate, note)"),
    (b"customer,tier,tier\n", "line 1: column 'tier' appears twice"),
    (b"customer,rate\nacme,1\n", "line 1: key field tier has no column"),
    (b"customer,tier\nacme,1,2\n", "line 2: 3 value(s) for 2 column(s)"),
    (b"customer,tier\nacme,one\n", "line 2.tier: 'one' is not a number (a NUMBER field)"),
    (b"customer,tier\nacme,1\nacme,1.0\n", "line 3: lookup key 'acme,1' is given twice (also line 2)"),
    (b"customer,tier\n\xff,1\n", "file: not UTF-8 (byte 14)"),
])
def test_a_bad_csv_names_the_line(content, message):
    assert refused(rules.parse, SCHEMA, content, rules.CSV) == message


@pytest.mark.parametrize("content, message", [
    (b'{"customer":"acme","tier":1}\n{"customer":"zeta"\n', "line 2: not a JSON object"),
    (b'{"customer":"acme","tier":NaN}\n', "line 1: not a JSON object"),
    (b'\n["acme",1]\n', "line 2: must be an object of field values"),
    (b'{"customer":"acme","tier":"1"}\n', "line 1.tier: '1' is not a number (a NUMBER field)"),
])
def test_a_bad_jsonl_file_names_the_line(content, message):
    assert refused(rules.parse, SCHEMA, content, rules.JSONL).startswith(message)


def test_a_file_of_another_type_is_refused():
    assert refused(rules.parse, SCHEMA, b"", "text/plain") == (
        "contentType: 'text/plain' is not one of ['application/jsonl', 'text/csv']")


def test_file_names():
    assert rules.file_name("r1", rules.CSV) == "r1.csv"
    assert rules.file_name("r1", rules.JSONL) == "r1.jsonl"
