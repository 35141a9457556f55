"""Measurements: what a usage data submission holds, and the rules one must pass.

A measurement names its Meter and Account by code, carries a timestamp ``ts`` (and an
optional end ``ets``), an optional ``uid``, and values grouped by data field category
(``who``, ``where``, ``what``, ``other``, ``metadata`` hold text; ``measure``, ``cost``,
``income`` numbers). Each value must belong to a data field of that category on its Meter;
a Meter's derived fields are computed from the values when their calculation can be
evaluated (see ``MeterSchema``).

Numbers become ``Decimal`` from their shortest round-trip text (``Decimal(repr(x))``), so
``0.1`` stays ``0.1``; times become int epoch milliseconds, UTC. Everything here is pure:
the backend (``mockserver.backend.usage``) finds the Meters and stores the results.
"""

from __future__ import annotations

import decimal
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from mockserver.domain.clock import from_iso
from mockserver.domain.errors import MockError

__all__ = ["Measurement", "MeterSchema", "Invalid", "read", "epoch_ms", "to_decimal", "wire", "CATEGORIES",
           "NUMERIC_CATEGORIES", "MAX_BATCH", "MAX_BATCH_BYTES"]

MAX_BATCH = 1000  # measurements per SubmitMeasurements call (m3ter's spec)
MAX_BATCH_BYTES = 512_000  # a SubmitMeasurements body must be smaller than this (m3ter's spec)
MAX_CODE = 80  # meter and account codes
MAX_UID = 50
MAX_METADATA = 256  # characters of a metadata value (m3ter's spec)

# Request key -> DataFieldCategory, in the order m3ter's MeasurementRequest lists them.
CATEGORIES = {"who": "WHO", "where": "WHERE", "what": "WHAT", "other": "OTHER", "metadata": "METADATA",
              "measure": "MEASURE", "cost": "COST", "income": "INCOME"}
NUMERIC_CATEGORIES = frozenset({"MEASURE", "COST", "INCOME"})
_KEY_OF = {category: key for key, category in CATEGORIES.items()}
_TOP_LEVEL = frozenset({"uid", "meter", "account", "ts", "ets", *CATEGORIES})
# The codes m3ter allows for meters and accounts: printable, no surrounding whitespace.
CODE_PATTERN = re.compile(r"^[^\x00-\x20\x7F-\x9F](?:[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F])?$")


@dataclass(frozen=True, slots=True)
class Measurement:
    uid: str | None
    meter: str            # the meter's code, as sent
    account: str          # the account's code, as sent
    ts: int               # epoch milliseconds, UTC
    ets: int | None
    values: Mapping[str, str | Decimal]   # field code -> Decimal (numeric categories) or str (text)

    def __init__(self, uid: str | None, meter: str, account: str, ts: int, ets: int | None,
                 values: Mapping[str, str | Decimal]):
        # What the frozen dataclass would generate, through the slots' own setters: a third
        # of the time, and ingest makes one per measurement.
        _set_uid(self, uid)
        _set_meter(self, meter)
        _set_account(self, account)
        _set_ts(self, ts)
        _set_ets(self, ets)
        _set_values(self, values)

    def __deepcopy__(self, memo):
        # Never changed once made (``values`` is not handed out for writing), so a snapshot of
        # the store can share it: copying a million of them would cost seconds for nothing.
        return self

    def __reduce__(self):
        # Pickled (the state file) as the constructor's arguments: half the time, both ways,
        # of the frozen dataclass's own slot-by-slot state.
        return Measurement, (self.uid, self.meter, self.account, self.ts, self.ets, self.values)


_set_uid, _set_meter, _set_account, _set_ts, _set_ets, _set_values = (
    getattr(Measurement, name).__set__ for name in ("uid", "meter", "account", "ts", "ets", "values"))


# -- numbers and times --------------------------------------------------------------------

_FLOATS: dict[float, Decimal] = {}
_INTS: dict[int, Decimal] = {}
_CACHE_LIMIT = 4096


def to_decimal(value: object) -> Decimal | None:
    """A JSON number as a Decimal (None for anything else: a bool, a string, NaN or an
    infinity). Repeated values share one Decimal, so a million measurements of ``1`` hold
    one object, not a million."""
    kind = type(value)
    if kind is float:
        found = _FLOATS.get(value)
        if found is None:
            if not math.isfinite(value):
                return None
            if len(_FLOATS) >= _CACHE_LIMIT:  # pragma: no mutate  memory only
                _FLOATS.clear()
            # repr: the shortest text that reads back as the same float, so 0.1 stays 0.1.
            found = _FLOATS[value] = Decimal(repr(value))
        return found
    if kind is int:
        found = _INTS.get(value)
        if found is None:
            if len(_INTS) >= _CACHE_LIMIT:  # pragma: no mutate  memory only
                _INTS.clear()
            found = _INTS[value] = Decimal(value)
        return found
    if kind is Decimal:
        return value if value.is_finite() else None
    return None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)


def epoch_ms(text: object) -> int | None:
    """An ISO-8601 date-time as int epoch milliseconds (a time without an offset is UTC);
    None when it is not one. Sub-millisecond digits are dropped (floor)."""
    if type(text) is not str:
        return None
    try:
        moment = from_iso(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // _MILLISECOND


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as m3ter writes a timestamp (UTC, milliseconds, ``Z``)."""
    return (_EPOCH + ms * _MILLISECOND).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- a meter's fields ---------------------------------------------------------------------

# A derived field's calculation: arithmetic over the Meter's fields, evaluated in Decimal
# (exact, as quantities must be). Numbers, field codes, + - * /, unary minus, parentheses.
_ARITHMETIC_TOKEN = re.compile(r"\s*(?:([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)|([A-Za-z_$][A-Za-z0-9_$]*)|(.))")
# Its own context (34 digits, half-even), whatever a thread's default context says.
_ARITHMETIC = decimal.Context(prec=34)


class Arithmetic:
    """A parsed derived field calculation; ``evaluate`` gives None when a field it uses has
    no number, or on a division by zero."""

    __slots__ = ("_program",)

    def __init__(self, program: tuple):
        self._program = program  # postfix: ("n", Decimal) | ("f", code) | ("u", "-") | ("b", op)

    def evaluate(self, values: Mapping[str, object]) -> Decimal | None:
        stack: list[Decimal] = []
        for kind, item in self._program:
            if kind == "n":
                stack.append(item)
            elif kind == "f":
                value = values.get(item)
                if type(value) is not Decimal:
                    return None
                stack.append(value)
            elif kind == "u":
                stack.append(_ARITHMETIC.minus(stack.pop()))
            else:
                right, left = stack.pop(), stack.pop()
                if item == "+":
                    stack.append(_ARITHMETIC.add(left, right))
                elif item == "-":
                    stack.append(_ARITHMETIC.subtract(left, right))
                elif item == "*":
                    stack.append(_ARITHMETIC.multiply(left, right))
                elif right == 0:
                    return None
                else:
                    stack.append(_ARITHMETIC.divide(left, right))
        return stack[0]


def derived_calculation(text: str, codes: frozenset[str]) -> Arithmetic | None:
    """The derived field's calculation, or None when the mock cannot evaluate it: it names
    something that is not a field of the Meter (a custom field, a timestamp), uses anything
    but arithmetic (a function, a comparison), or does not parse."""
    tokens: list[tuple[str, object]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _ARITHMETIC_TOKEN.match(text, position)
        number, name, symbol = match.groups()
        position = match.end()
        if number is not None:
            tokens.append(("n", Decimal(number)))
        elif name is not None:
            if name not in codes:
                return None
            tokens.append(("f", name))
        elif symbol in "+-*/()":  # pragma: no mutate  "X" always lexes as a name before this
            tokens.append(("s", symbol))
        else:
            return None
    program: list[tuple[str, object]] = []
    at = 0

    # Precedence climbing: sum := product (('+'|'-') product)*; product := unary (('*'|'/') unary)*;
    # unary := '-' unary | atom; atom := number | field | '(' sum ')'.
    def peek() -> object:
        return tokens[at][1] if at < len(tokens) and tokens[at][0] == "s" else None

    def atom(depth: int) -> bool:
        nonlocal at
        if depth > 100 or at >= len(tokens):
            return False
        kind, item = tokens[at]
        if kind in ("n", "f"):
            program.append((kind, item))
            at += 1
            return True
        if item == "-":
            at += 1
            if not atom(depth + 1):
                return False
            program.append(("u", "-"))
            return True
        if item == "(":
            at += 1
            if not binary(0, depth + 1) or peek() != ")":
                return False
            at += 1
            return True
        return False

    def binary(level: int, depth: int) -> bool:
        nonlocal at
        operators = ("+", "-") if level == 0 else ("*", "/")
        if not (binary(1, depth) if level == 0 else atom(depth)):
            return False
        while peek() in operators:
            symbol = peek()
            at += 1
            if not (binary(1, depth) if level == 0 else atom(depth)):
                return False
            program.append(("b", symbol))
        return True

    if not tokens or not binary(0, 0) or at != len(tokens):
        return None
    return Arithmetic(tuple(program))


@dataclass(frozen=True, slots=True)
class DerivedField:
    code: str
    category: str
    calculation: Arithmetic | None


@dataclass(frozen=True)
class MeterSchema:
    """What a measurement is checked against, worked out once per version of a Meter."""

    meter_id: str
    code: str
    fields: Mapping[str, Mapping[str, str]]  # request key ('measure') -> {field code: the code}
    categories: Mapping[str, str]            # field code -> its category (derived fields too)
    derived: tuple[DerivedField, ...]

    @classmethod
    def of(cls, meter: Mapping) -> "MeterSchema":
        fields: dict[str, dict[str, str]] = {key: {} for key in CATEGORIES}
        categories: dict[str, str] = {}
        for field in meter.get("dataFields") or ():
            key = _KEY_OF.get(field.get("category"))
            code = field.get("code")
            if key is not None and isinstance(code, str):
                fields[key][code] = code
                categories[code] = field["category"]
        derived_fields = [f for f in meter.get("derivedFields") or ()
                          if isinstance(f.get("code"), str) and f.get("category") in _KEY_OF]
        codes = frozenset(categories) | {f["code"] for f in derived_fields}
        derived = []
        for field in derived_fields:
            categories.setdefault(field["code"], field["category"])
            text = field.get("calculation")
            derived.append(DerivedField(field["code"], field["category"],
                                        derived_calculation(text, codes) if isinstance(text, str) else None))
        return cls(meter["id"], meter.get("code", ""), fields, categories, tuple(derived))

    def derived_codes(self) -> frozenset[str]:
        return frozenset(field.code for field in self.derived)

    def _unknown(self, key: str, name: str) -> str:
        category = CATEGORIES[key]
        other = self.categories.get(name)
        if other is not None and any(f.code == name for f in self.derived):
            return (f"{name!r} is a derived field of Meter {self.code!r}: its value is calculated, "
                    f"not submitted")
        if other is not None:
            return (f"{name!r} is a {other} field of Meter {self.code!r}, not a {category} field "
                    f"(send it in {_KEY_OF[other]})")
        known = sorted(self.fields[key])
        listed = ", ".join(known) if known else "none"
        return f"Meter {self.code!r} has no {category} field {name!r} (its {category} fields: {listed})"


# -- one measurement ----------------------------------------------------------------------

class Invalid(MockError):
    """A measurement that fails a rule: a 400 naming the field (relative to the measurement,
    ``measure.requests``; empty for the measurement as a whole), so a batch can put the
    measurement's own path in front (``measurements[3].measure.requests``)."""

    def __init__(self, field: str, reason: str):
        super().__init__(400, f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason

    def at(self, path: str) -> str:
        """The message with ``path`` (the measurement's place) in front."""
        return f"{path}.{self.field}: {self.reason}" if self.field else f"{path}: {self.reason}"


_TIMES: dict[str, int | None] = {}


def _time(text: object) -> int | None:
    # Batches repeat timestamps (a minute's events share one); parsing one costs ten lookups.
    if type(text) is not str:
        return None
    found = _TIMES.get(text, _TIMES)
    if found is _TIMES:
        if len(_TIMES) >= _CACHE_LIMIT:  # pragma: no mutate  memory only
            _TIMES.clear()
        found = _TIMES[text] = epoch_ms(text)
    return found


_TEXTS: dict[str, str] = {}
_NUMERIC_KEYS = frozenset(key for key, category in CATEGORIES.items() if category in NUMERIC_CATEGORIES)


def read(raw: object, schema_for: Callable[[str], MeterSchema | None]) -> tuple[Measurement, MeterSchema]:
    """The measurement ``raw`` (a MeasurementRequest as JSON gives it) checked against its
    Meter, or ``Invalid`` naming the field at fault. ``schema_for`` finds a Meter's schema by
    code (None: no such Meter). Whether the Account exists is the caller's to check."""
    if type(raw) is not dict:
        raise Invalid("", "must be an object (a measurement)")
    if not _TOP_LEVEL.issuperset(raw):
        name = sorted(set(raw) - _TOP_LEVEL, key=str)[0]
        raise Invalid(str(name), f"not a field of a measurement (it has uid, meter, account, ts, ets and the "
                                 f"categories {', '.join(CATEGORIES)})")
    meter_code = raw.get("meter")
    if type(meter_code) is not str or not meter_code:
        raise Invalid("meter", "required, the code of a Meter")
    schema = schema_for(meter_code)
    if schema is None:
        raise Invalid("meter", f"no Meter with code {meter_code!r}")
    account = raw.get("account")
    if type(account) is not str or not 0 < len(account) <= MAX_CODE:
        raise Invalid("account", f"required, the code of an Account (1 to {MAX_CODE} characters)")
    uid = raw.get("uid")
    if uid is not None and (type(uid) is not str or len(uid) > MAX_UID):
        raise Invalid("uid", f"must be a string of at most {MAX_UID} characters")
    ts = _time(raw.get("ts"))
    if ts is None:
        if raw.get("ts") is None:
            raise Invalid("ts", "required, an ISO-8601 date-time")
        raise Invalid("ts", f"{_shown(raw['ts'])} is not an ISO-8601 date-time")
    ets = raw.get("ets")
    if ets is not None:
        ets = _time(ets)
        if ets is None:
            raise Invalid("ets", f"{_shown(raw['ets'])} is not an ISO-8601 date-time")
        if ets < ts:
            raise Invalid("ets", f"{raw['ets']} is earlier than ts ({raw['ts']})")
    values: dict[str, str | Decimal] = {}
    fields_of = schema.fields
    for key, group in raw.items():
        fields = fields_of.get(key)
        if fields is None or group is None:
            continue  # meter, account, uid, ts, ets; or a category sent as null
        if type(group) is not dict:
            raise Invalid(key, "must be an object of field code to value")
        numeric = key in _NUMERIC_KEYS
        for name, value in group.items():
            code = fields.get(name)
            if code is None:
                raise Invalid(f"{key}.{name}", schema._unknown(key, name))
            if numeric:
                number = to_decimal(value) if type(value) is not bool else None
                if number is None:
                    raise Invalid(f"{key}.{name}", f"{_shown(value)} is not a number")
                values[code] = number
            elif type(value) is not str:
                raise Invalid(f"{key}.{name}", f"{_shown(value)} is not a string")
            elif key == "metadata" and len(value) > MAX_METADATA:
                raise Invalid(f"{key}.{name}", f"longer than {MAX_METADATA} characters")
            else:
                # Text values repeat (a region, a plan name): stored measurements share one string.
                shared = _TEXTS.get(value)
                if shared is None:
                    if len(_TEXTS) >= _CACHE_LIMIT:  # pragma: no mutate  memory only
                        _TEXTS.clear()
                    shared = _TEXTS[value] = value
                values[code] = shared
    if schema.derived:
        _derive(schema, values)
    # The Meter's own code string and one string per Account code: a million measurements
    # share them instead of holding a copy each.
    return Measurement(uid, schema.code, sys.intern(account), ts, ets, values), schema


def _derive(schema: MeterSchema, values: dict) -> None:
    """Each numeric derived field whose calculation has a value for these values, in the
    Meter's order (a later one may use an earlier one's value). Text derived fields are not
    computed: the mock evaluates arithmetic only."""
    for field in schema.derived:
        if field.calculation is not None and field.category in NUMERIC_CATEGORIES:
            result = field.calculation.evaluate(values)
            if result is not None:
                values[field.code] = result


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def wire(measurement: Measurement, categories: Mapping[str, str]) -> dict:
    """The measurement in the shape it was submitted (MeasurementRequest), numbers as
    Decimal; ``categories`` maps field codes to categories (``MeterSchema.categories``),
    and a value whose field the Meter no longer has goes under ``other`` (text) or
    ``measure`` (numbers)."""
    shown: dict = {}
    if measurement.uid is not None:
        shown["uid"] = measurement.uid
    shown.update(meter=measurement.meter, account=measurement.account, ts=iso_ms(measurement.ts))
    if measurement.ets is not None:
        shown["ets"] = iso_ms(measurement.ets)
    for code, value in measurement.values.items():
        category = categories.get(code)
        key = _KEY_OF[category] if category else ("other" if isinstance(value, str) else "measure")
        shown.setdefault(key, {})[code] = value
    return shown
