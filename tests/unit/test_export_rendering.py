"""Export files as a client downloads them: cells, lines, bundles and bucket keys
(README "Data exports")."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone

import pytest

from mockserver.domain import catalogue
from mockserver.domain import export_rendering as rendering


def test_csv_writes_missing_values_empty_and_booleans_as_json_does():
    rows = [{"id": "1", "active": True, "gone": False, "note": None}]
    assert rendering.render(rows, ["id", "active", "gone", "note", "absent"], "CSV") == \
        b"id,active,gone,note,absent\r\n1,true,false,,\r\n"


def test_nested_values_are_compact_json_with_their_keys_in_order_so_files_are_byte_stable():
    one = {"id": "1", "meta": {"b": 1, "a": [1, 2]}}
    other = {"id": "1", "meta": {"a": [1, 2], "b": 1}}
    csv_one = rendering.render([one], ["id", "meta"], "CSV")
    assert csv_one == b'id,meta\r\n1,"{""a"":[1,2],""b"":1}"\r\n'
    assert rendering.render([other], ["id", "meta"], "CSV") == csv_one


def test_jsonl_is_one_object_a_line_the_same_whatever_the_key_order():
    rows = [{"name": "x", "id": "1"}, {"id": "2", "name": "y"}]
    assert rendering.render(rows, ["id", "name"], "JSONL") == b'{"id":"1","name":"x"}\n{"id":"2","name":"y"}\n'


def test_jsonl_is_utf8_not_escaped():
    assert rendering.render([{"id": "1", "city": "Zürich"}], ["id", "city"], "JSONL") == \
        '{"city":"Zürich","id":"1"}\n'.encode("utf-8")


def test_a_lone_surrogate_inside_a_nested_jsonl_value_is_named_with_its_row_and_field():
    rows = [{"id": "r1", "meta": {"k": "\udc80"}}]
    with pytest.raises(rendering.RenderError) as error:
        rendering.render(rows, ["id", "meta"], "JSONL")
    assert str(error.value) == ("row 'r1': field 'meta' is not valid Unicode text (it holds a lone surrogate); "
                                "m3ter stores only valid Unicode")


def test_one_file_is_served_as_it_is_with_its_media_type():
    assert rendering.bundle([("j_bill.csv", b"id\r\n")]) == ("j_bill.csv", b"id\r\n", "text/csv")
    assert rendering.bundle([("j_bill.jsonl", b"{}\n")]) == ("j_bill.jsonl", b"{}\n", "application/x-ndjson")


def test_several_files_are_one_compressed_zip():
    name, content, media = rendering.bundle([("j_bill.csv", b"a" * 1000), ("j_plan.csv", b"b" * 1000)])
    assert (name, media) == ("export.zip", "application/zip")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist() == ["j_bill.csv", "j_plan.csv"]
        assert archive.read("j_plan.csv") == b"b" * 1000
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}


@pytest.mark.parametrize(("prefix", "order", "key"), [
    ("exports/billing/", "TIME_FIRST", "exports/billing/orgId=o1/date=2026-01-02/hour=03/type=bill/j1_bill.csv.gz"),
    ("exports//billing", "TYPE_FIRST", "exports/billing/orgId=o1/type=bill/date=2026-01-02/hour=03/j1_bill.csv.gz"),
    (None, "TIME_FIRST", "orgId=o1/date=2026-01-02/hour=03/type=bill/j1_bill.csv.gz"),
])
def test_the_object_key_is_the_prefix_then_the_partitions(prefix, order, key):
    when = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    assert rendering.object_key(prefix=prefix, org_id="o1", when=when, type_name="bill",
                                name=rendering.file_name("j1", "bill", "CSV"), partition_order=order) == key


def test_raw_usage_has_its_fixed_columns_then_each_filtered_field_once_in_order():
    selection = {"dimensionFilters": [{"fieldCode": "region"}, {"fieldCode": "az"}, {"fieldCode": "region"}]}
    assert rendering.usage_columns(selection) == ["ts", "accountId", "accountCode", "meterId", "meterCode",
                                                  "az", "region"]


def test_aggregated_usage_has_the_period_each_group_and_each_aggregation():
    selection = {"aggregations": [{"fieldCode": "gb", "function": "SUM"}],
                 "groups": [{"groupType": "TIME"}, {"groupType": "ACCOUNT"},
                            {"groupType": "DIMENSION", "fieldCode": "region"}, {"groupType": "DIMENSION"}]}
    assert rendering.usage_columns(selection) == ["startDate", "endDate", "timeGroup", "accountId", "region",
                                                  "dimension", "gb_sum"]


def test_a_catalogued_entity_has_id_first_then_its_catalogue_fields_in_order():
    fields = catalogue.entity_fields("compoundaggregation")
    columns = rendering.operational_columns("COMPOUND_AGGREGATIONS")
    assert columns[0] == "id" and columns.count("id") == 1
    assert columns[1:] == sorted(set(fields) - {"id"}) and len(columns) == len(fields)
    assert {"name", "calculation", "version"} <= set(columns)


def test_an_entity_the_catalogue_does_not_describe_has_the_fields_every_entity_has():
    assert rendering.operational_columns("CHARGES") == [
        "id", "version", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy"]


def test_a_csv_error_names_the_field_whose_cell_fails_not_a_nested_one_csv_escapes():
    rows = [{"id": "r1", "meta": {"k": "\udc80"}, "name": "\udc80"}]
    with pytest.raises(rendering.RenderError) as error:
        rendering.render(rows, ["id", "meta", "name"], "CSV")
    assert str(error.value).startswith("row 'r1': field 'name' is not valid Unicode text")
