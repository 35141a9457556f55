"""Export files: which columns a data type has, how rows become CSV or JSONL, how several
files become one zip, and where m3ter would put each file in a bucket.

Pure functions; the export runner decides what to render and when. Files are UTF-8: a
string that cannot be encoded (a lone surrogate, which m3ter never stores) is a
``RenderError`` naming the row and the field, never a half-written file.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime

from . import catalogue

# Operational data type -> the entity name m3ter uses for it (in event names and object keys).
OPERATIONAL_ENTITIES = {
    "BILLS": "bill", "COMMITMENTS": "commitment", "ACCOUNTS": "account", "BALANCES": "balance",
    "CONTRACTS": "contract", "ACCOUNT_PLANS": "accountplan", "AGGREGATIONS": "aggregation", "PLANS": "plan",
    "PRICING": "pricing", "PRICING_BANDS": "pricingband", "BILL_LINE_ITEMS": "billlineitem", "METERS": "meter",
    "PRODUCTS": "product", "COMPOUND_AGGREGATIONS": "compoundaggregation", "PLAN_GROUPS": "plangroup",
    "PLAN_GROUP_LINKS": "plangrouplink", "PLAN_TEMPLATES": "plantemplate",
    "BALANCE_TRANSACTIONS": "balancetransaction", "TRANSACTION_TYPES": "transactiontype", "CHARGES": "charge",
}
USAGE_TYPE = "measurements"

# For entities the event catalogue does not describe: the fields every m3ter entity has.
_BASE_COLUMNS = ["id", "version", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy"]
_USAGE_COLUMNS = ["ts", "accountId", "accountCode", "meterId", "meterCode"]


def operational_columns(data_type: str) -> list[str]:
    entity = OPERATIONAL_ENTITIES[data_type]
    fields = catalogue.entity_fields(entity)
    if not fields:
        return list(_BASE_COLUMNS)
    return ["id"] + sorted(f for f in fields if f != "id")


def usage_columns(selection: dict) -> list[str]:
    """Raw measurements have a timestamp, the account, the meter and the meter's fields;
    aggregated usage has the period, the groups and one column per aggregation."""
    aggregations = selection.get("aggregations") or []
    if not aggregations:
        fields = [f["fieldCode"] for f in selection.get("dimensionFilters") or []]
        return _USAGE_COLUMNS + sorted(set(fields))
    columns = ["startDate", "endDate"]
    for group in selection.get("groups") or []:
        kind = group.get("groupType")
        columns.append({"ACCOUNT": "accountId", "TIME": "timeGroup"}.get(kind, group.get("fieldCode") or "dimension"))
    columns += [f"{a['fieldCode']}_{a['function'].lower()}" for a in aggregations]
    return list(dict.fromkeys(columns))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RenderError(ValueError):
    """Rows that cannot be written as an export file."""


def _jsonl_line(row: dict) -> str:
    return json.dumps(row, separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False,  # pragma: no mutate: json reads None here as it reads False
                      )


def render(rows: list[dict], columns: list[str], file_format: str) -> bytes:
    """CSV with a header row (nested values JSON-encoded), or JSONL (one object a line)."""
    try:
        if file_format == "JSONL":
            return b"".join(_jsonl_line(row).encode() + b"\n" for row in rows)
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")  # pragma: no mutate: "\r\n" is csv's default too
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return out.getvalue().encode()
    except UnicodeEncodeError:
        raise RenderError(_not_unicode(rows, columns, file_format)) from None


def _not_unicode(rows: list[dict], columns: list[str], file_format: str) -> str:
    """Which row and field hold text that is not valid Unicode (looked for only on failure)."""
    def encodes(text: str) -> bool:
        try:
            text.encode()
            return True
        except UnicodeEncodeError:
            return False

    for column in columns:
        if not encodes(column):
            return f"column {column!r} is not valid Unicode text (it holds a lone surrogate)"
    for row in rows:
        for key, value in row.items():
            text = _jsonl_line({key: value}) if file_format == "JSONL" else _cell(value)
            if not encodes(text):
                return (f"row {row.get('id')!r}: field {key!r} "
                        "is not valid Unicode text (it holds a lone surrogate); m3ter stores only valid Unicode")
    return "the rows are not valid Unicode text"  # pragma: no mutate: unreachable, a field above fails first


def file_name(job_id: str, type_name: str, file_format: str) -> str:
    return f"{job_id}_{type_name}.{file_format.lower()}"


def object_key(*, prefix: str | None, org_id: str, when: datetime, type_name: str, name: str,
               partition_order: str) -> str:
    """Where m3ter writes a file in the bucket (compressed, hence ``.gz``):
    ``{prefix}/orgId={org}/date=YYYY-MM-DD/hour=HH/type={type}/{file}.gz`` (TIME_FIRST) or
    with ``type=`` before the date (TYPE_FIRST)."""
    date, hour, kind = f"date={when:%Y-%m-%d}", f"hour={when:%H}", f"type={type_name}"
    parts = [p for p in (prefix or "").split("/") if p] + [f"orgId={org_id}"]
    parts += [kind, date, hour] if partition_order == "TYPE_FIRST" else [date, hour, kind]
    return "/".join(parts + [f"{name}.gz"])


def bundle(files: list[tuple[str, bytes]]) -> tuple[str, bytes, str]:
    """(download name, bytes, media type): one file as it is, several as one zip."""
    if len(files) == 1:
        name, content = files[0]
        media = "application/x-ndjson" if name.endswith(".jsonl") else "text/csv"
        return name, content, media
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            archive.writestr(name, content)
    return "export.zip", buffer.getvalue(), "application/zip"
