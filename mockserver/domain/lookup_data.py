"""The data of a Lookup Table Revision: the rules its items follow, their lookup keys,
the revision's status moves, and the CSV/JSONL files the data travels in.

A Revision declares its fields (a name and STRING or NUMBER) and which of them are its key
fields, in order. An item is an object of field values:

* every key of the item is a field of the revision; a STRING field holds a string, a
  NUMBER field a number; a null value counts as absent (nothing is stored as null);
* every key field has a value, and a key value that is a string is not empty and holds no
  comma: the item's *lookup key* is its key values joined by commas, in the revision's key
  order (``acme,EU`` for keys ``customer, region``), as m3ter's path parameter takes it;
* non-key fields may be left out.

A revision's status only moves forward: DRAFT -> PUBLISHED -> ARCHIVED (DRAFT may also go
straight to ARCHIVED); setting the status it already has changes nothing.

Files: CSV has a header row naming fields of the revision (every key field among them) and
one row per item, an empty cell being an absent value; JSONL has one item object per line.
Both are UTF-8. Reading a file checks every item as above and names the line at fault.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import MockError

STRING, NUMBER = "STRING", "NUMBER"
KEY_SEPARATOR = ","
LOOKUP_KEY = "lookupKey"  # the one name ``additional=`` accepts
CSV, JSONL = "text/csv", "application/jsonl"
CONTENT_TYPES = (JSONL, CSV)
EXTENSIONS = {CSV: "csv", JSONL: "jsonl"}
STATUSES = ("DRAFT", "PUBLISHED", "ARCHIVED")  # in the only order a status moves
_QUOTE = 60  # characters of a value an error message may quote


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE else text[:_QUOTE] + "...'"


@dataclass(frozen=True)
class DataSchema:
    """What a revision says its items look like."""

    fields: tuple[tuple[str, str], ...]  # (name, STRING|NUMBER), in the revision's order
    keys: tuple[str, ...]

    @classmethod
    def of(cls, revision: dict) -> "DataSchema":
        fields = tuple((f.get("name", ""), f.get("type", STRING)) for f in revision.get("fields") or ())
        return cls(fields, tuple(revision.get("keys") or ()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.fields)

    def type_of(self, name: str) -> str | None:
        for field_name, field_type in self.fields:
            if field_name == name:
                return field_type
        return None

    def same_as(self, other: "DataSchema") -> bool:
        """The same fields (in any order, with the same types) and the same keys in order."""
        return sorted(self.fields) == sorted(other.fields) and self.keys == other.keys


def check_revision_schema(fields: list[dict], keys: list[str]) -> None:
    """A revision's fields and keys as m3ter states them: every field named once, every key
    one of the fields (each once), and at least one field that is not a key."""
    names: list[str] = []
    for index, field in enumerate(fields):
        name = field.get("name")
        if not name:
            raise MockError.bad_request(f"fields[{index}].name: required")
        if name in names:
            raise MockError.bad_request(f"fields[{index}].name: {_shown(name)} is given twice")
        names.append(name)
    for index, key in enumerate(keys):
        if key not in names:
            raise MockError.bad_request(f"keys[{index}]: {_shown(key)} is not one of the fields ({', '.join(names)})")
        if key in keys[:index]:
            raise MockError.bad_request(f"keys[{index}]: {_shown(key)} is given twice")
    if not set(names) - set(keys):
        raise MockError.bad_request("fields: at least one field must not be a key (it holds the looked-up value)")


def check_revision_change(existing: dict, fields: dict) -> None:
    """An update of a revision: only a DRAFT one changes, and one that holds data
    (``itemCount`` above 0) keeps its fields and keys (delete the data, or create a new
    revision, first)."""
    status = existing.get("status", "DRAFT")
    if status != "DRAFT":
        raise MockError.conflict(f"Lookup Table Revision {existing.get('id')!r} is {status}: only a DRAFT revision "
                                 f"changes")
    if existing.get("itemCount", 0) and not DataSchema.of(fields).same_as(DataSchema.of(existing)):
        raise MockError.bad_request(
            f"fields: Lookup Table Revision {existing.get('id')!r} holds data, so its fields and keys stay as they "
            f"are (delete its data first, or create a new revision)")


# -- items -----------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_value(schema: DataSchema, name: str, value: Any, where: str) -> None:
    field_type = schema.type_of(name)
    if field_type is None:
        raise MockError.bad_request(
            f"{where}.{name}: not a field of this revision (its fields: {', '.join(schema.names)})")
    if field_type == NUMBER and not _is_number(value):
        raise MockError.bad_request(f"{where}.{name}: {_shown(value)} is not a number (a NUMBER field)")
    if field_type == STRING and not isinstance(value, str):
        raise MockError.bad_request(f"{where}.{name}: {_shown(value)} is not a string (a STRING field)")
    if name in schema.keys and isinstance(value, str):
        if not value:
            raise MockError.bad_request(f"{where}.{name}: a key field's value cannot be empty")
        if KEY_SEPARATOR in value:
            raise MockError.bad_request(
                f"{where}.{name}: a key field's value cannot contain ',' (it separates the values of a lookup key)")


def check_item(schema: DataSchema, item: Any, where: str = "item") -> dict:
    """The item as stored (fields in the revision's order, nulls left out), or a 400 naming
    the field at fault."""
    if not isinstance(item, dict):
        raise MockError.bad_request(f"{where}: must be an object of field values")
    for name, value in item.items():
        if value is not None:
            _check_value(schema, name, value, where)
    for key in schema.keys:
        if item.get(key) is None:
            raise MockError.bad_request(f"{where}.{key}: required (a key field of this revision)")
    return {name: item[name] for name in schema.names if item.get(name) is not None}


def _key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def lookup_key(schema: DataSchema, item: dict) -> str:
    """The lookup key of a checked item."""
    return KEY_SEPARATOR.join(_key_text(item[key]) for key in schema.keys)


def item_for_key(schema: DataSchema, key: str, item: Any, where: str = "item") -> dict:
    """The checked item of an upsert by lookup key: its key fields may be left out (the key
    gives them) but, when given, must agree with the key."""
    values = key_values(schema, key)
    if not isinstance(item, dict):
        raise MockError.bad_request(f"{where}: must be an object of field values")
    merged = {**values, **{k: v for k, v in item.items() if v is not None}}
    checked = check_item(schema, merged, where)
    found = lookup_key(schema, checked)
    if found != lookup_key(schema, values):
        raise MockError.bad_request(
            f"{where}: its key fields give the lookup key {_shown(found)}, not {_shown(key)} as the path says")
    return checked


def key_values(schema: DataSchema, key: str) -> dict:
    """Key field -> value, read from a lookup key (``a,b`` for two key fields)."""
    parts = key.split(KEY_SEPARATOR)
    if len(parts) != len(schema.keys):
        raise MockError.bad_request(
            f"lookupKey: {_shown(key)} has {len(parts)} value(s); this revision has {len(schema.keys)} key field(s) "
            f"({', '.join(schema.keys)}), given comma-separated in that order")
    values: dict[str, Any] = {}
    for name, text in zip(schema.keys, parts):
        if schema.type_of(name) == NUMBER:
            number = _number(text)
            if number is None:
                raise MockError.bad_request(f"lookupKey: {_shown(text)} is not a number (key field {name} is a NUMBER)")
            values[name] = number
        else:
            if not text:
                raise MockError.bad_request(f"lookupKey: the value of key field {name} is empty")
            values[name] = text
    return values


def _number(text: str) -> int | float | None:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# -- the revision's status ----------------------------------------------------------------

def check_status_change(current: str, wanted: str) -> None:
    """400 unless ``wanted`` is ``current`` or comes after it."""
    if wanted not in STATUSES:
        raise MockError.bad_request(f"status: {_shown(wanted)} is not one of {list(STATUSES)}")
    if STATUSES.index(wanted) < STATUSES.index(current):
        raise MockError.bad_request(
            f"status: a {current} revision cannot go back to {wanted} (a status only moves forward: "
            f"{' -> '.join(STATUSES)})")


# -- files -------------------------------------------------------------------------------

def file_name(revision_id: str, content_type: str) -> str:
    return f"{revision_id}.{EXTENSIONS[content_type]}"


def render(schema: DataSchema, items: Iterable[dict], content_type: str) -> bytes:
    """The items as a CSV (header row of the revision's fields) or JSONL file."""
    if content_type == JSONL:
        return "".join(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"
                       for item in items).encode("utf-8")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(schema.names)
    for item in items:
        writer.writerow(["" if item.get(name) is None else _key_text(item[name]) for name in schema.names])
    return out.getvalue().encode("utf-8")


def parse(schema: DataSchema, content: bytes, content_type: str) -> list[dict]:
    """The checked items of a CSV or JSONL file (a 400 naming the line at fault); a lookup
    key given twice is refused too."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MockError.bad_request(f"file: not UTF-8 (byte {error.start})") from None
    if content_type == JSONL:
        items = list(_parse_jsonl(schema, text))
    elif content_type == CSV:
        items = list(_parse_csv(schema, text))
    else:
        raise MockError.bad_request(f"contentType: {_shown(content_type)} is not one of {list(CONTENT_TYPES)}")
    unique_keys([item for _, item in items], schema, [where for where, _ in items])
    return [item for _, item in items]


def unique_keys(items: list[dict], schema: DataSchema, places: list[str]) -> None:
    """400 when two items have the same lookup key."""
    seen: dict[str, str] = {}
    for place, item in zip(places, items):
        key = lookup_key(schema, item)
        if key in seen:
            raise MockError.bad_request(f"{place}: lookup key {_shown(key)} is given twice (also {seen[key]})")
        seen[key] = place


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_jsonl(schema: DataSchema, text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            value = json.loads(line, parse_constant=_reject_constant)
        except ValueError as error:
            raise MockError.bad_request(f"{where}: not a JSON object ({error})") from None
        yield where, check_item(schema, value, where)


def _parse_csv(schema: DataSchema, text: str):
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise MockError.bad_request(f"file: not CSV ({error})") from None
    if not rows:
        raise MockError.bad_request("line 1: the header row naming the revision's fields is missing")
    header = [name.strip() for name in rows[0]]
    for name in header:
        if schema.type_of(name) is None:
            raise MockError.bad_request(
                f"line 1: column {_shown(name)} is not a field of this revision "
                f"(its fields: {', '.join(schema.names)})")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise MockError.bad_request(f"line 1: column {_shown(duplicated[0])} appears twice")
    for key in schema.keys:
        if key not in header:
            raise MockError.bad_request(f"line 1: key field {key} has no column")
    for number, row in enumerate(rows[1:], start=2):
        if not row or row == [""]:
            continue
        where = f"line {number}"
        if len(row) != len(header):
            raise MockError.bad_request(f"{where}: {len(row)} value(s) for {len(header)} column(s)")
        item: dict[str, Any] = {}
        for name, cell in zip(header, row):
            if cell == "":
                continue
            if schema.type_of(name) == NUMBER:
                value = _number(cell)
                if value is None:
                    raise MockError.bad_request(f"{where}.{name}: {_shown(cell)} is not a number (a NUMBER field)")
                item[name] = value
            else:
                item[name] = cell
        yield where, check_item(schema, item, where)
