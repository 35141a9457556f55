"""Aggregations: how the values of a meter's field become one quantity, in units.

Pure rules over measurements (anything with ``ts`` and ``values``, such as
``mockserver.domain.measurements.Measurement``). Quantities are ``Decimal`` from end to end;
a number that arrives as a JSON float is read through its shortest text (``decimal_of``).

What m3ter documents, and the mock's choice where it is silent:

* ``aggregate``: SUM, MIN, MAX, COUNT (the values present), LATEST (the value of the latest
  ``ts``; on a tie, the one stored last), MEAN, UNIQUE (distinct values, text or numbers).
  No value at all is ``None``: the aggregation's ``defaultValue`` then applies.
  CUSTOM_SQL is not evaluated (a 501 naming the aggregation).
* ``to_units``: the value divided by ``quantityPerUnit``, then rounded to a whole number:
  UP towards +infinity, DOWN towards -infinity, NEAREST to the nearest whole number with
  halves away from zero (3.5 is 4, 5.1 is 5), NONE not at all.
* ``segment_of``: a segmented aggregation's ``segments`` are tried in the order given; a
  measurement belongs to the first whose every field matches, where ``"*"`` (or a field the
  segment leaves out) matches any value and ``""`` matches a measurement without the field.
  Without ``segments``, each distinct combination of the ``segmentedFields`` values is a
  segment of its own.
* ``Compound``: a compound aggregation's calculation, in the notification rules' language
  (``calculation.lark``: ``+ - * /``, unary minus, parentheses, comparisons, AND/OR/NOT,
  ``null``), whose fields are ``aggregation.<code>`` -- the simple aggregation's value
  before its quantityPerUnit and rounding. Arithmetic is exact (Decimal); anything with
  ``null``, or a division by zero, is ``null``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .errors import MockError

FUNCTIONS = ("SUM", "MIN", "MAX", "COUNT", "LATEST", "MEAN", "UNIQUE")
NUMERIC_FUNCTIONS = frozenset({"SUM", "MIN", "MAX", "LATEST", "MEAN"})
ROUNDINGS = {"UP": ROUND_CEILING, "DOWN": ROUND_FLOOR, "NEAREST": ROUND_HALF_UP}
WILDCARD = "*"

Segment = tuple[tuple[str, str], ...]


def decimal_of(value: object, field: str = "value") -> Decimal:
    """A stored number as the Decimal it stands for: a float through its shortest text, so
    0.1 stays 0.1."""
    if isinstance(value, bool):
        raise MockError.bad_request(f"{field}: {value!r} is not a number")
    if isinstance(value, Decimal):
        number = value
    else:
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value))
        except (InvalidOperation, ValueError):
            raise MockError.bad_request(f"{field}: {value!r} is not a number") from None
    if not number.is_finite():
        raise MockError.bad_request(f"{field}: {value!r} is not a number")
    return number


# -- one function over values ---------------------------------------------------------------

def aggregate(function: str, values: Iterable[Decimal | str]) -> Decimal | None:
    """``function`` over ``values`` (given in ``ts`` order), or None when there is none."""
    if function == "CUSTOM_SQL":
        raise MockError.not_implemented("aggregation: CUSTOM_SQL aggregations are not evaluated by the mock")
    if function == "COUNT":
        count = sum(1 for _ in values)
        return Decimal(count) if count else None
    if function == "UNIQUE":
        distinct = set(values)
        return Decimal(len(distinct)) if distinct else None
    if function not in NUMERIC_FUNCTIONS:
        raise MockError.bad_request(f"aggregation: {function!r} is not one of {', '.join(FUNCTIONS)}")
    numbers = values if isinstance(values, list) else list(values)
    if not numbers:
        return None
    try:
        if function == "SUM":
            result = sum(numbers, Decimal(0))
        elif function == "MIN":
            result = min(numbers)
        elif function == "MAX":
            result = max(numbers)
        elif function == "LATEST":
            result = numbers[-1]
        else:
            result = sum(numbers, Decimal(0)) / len(numbers)
    except TypeError:  # text among numbers
        result = None
    if not isinstance(result, Decimal):
        raise MockError.bad_request(f"aggregation: {function} needs numbers, and the target field holds text")
    return result


def to_units(value: Decimal, quantity_per_unit: Decimal, rounding: str) -> Decimal:
    """``value`` in units of ``quantity_per_unit``, rounded as the aggregation says."""
    if quantity_per_unit <= 0:
        raise MockError.bad_request(f"quantityPerUnit: {quantity_per_unit} is not greater than 0")
    units = value / quantity_per_unit if quantity_per_unit != 1 else value
    if rounding == "NONE":
        return units
    if rounding not in ROUNDINGS:
        raise MockError.bad_request(f"rounding: {rounding!r} is not one of UP, DOWN, NEAREST, NONE")
    return units.to_integral_value(rounding=ROUNDINGS[rounding])


def units_of(aggregation: Mapping, value: Decimal | None) -> Decimal:
    """The billable quantity of an aggregation's (or a compound's) value: its
    ``defaultValue`` when there is no value, 0 when it has none either, then in units."""
    if value is None:
        default = aggregation.get("defaultValue")
        value = decimal_of(default, "defaultValue") if default is not None else Decimal(0)
    per_unit = aggregation.get("quantityPerUnit")
    return to_units(value, decimal_of(per_unit if per_unit is not None else 1, "quantityPerUnit"),
                    aggregation.get("rounding") or "NONE")


def base_value(aggregation: Mapping, value: Decimal | None) -> Decimal | None:
    """The value a compound aggregation reads: before quantityPerUnit and rounding, with
    the ``defaultValue`` when there is no value."""
    if value is None and aggregation.get("defaultValue") is not None:
        return decimal_of(aggregation["defaultValue"], "defaultValue")
    return value


# -- segments -------------------------------------------------------------------------------

def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # pragma: no mutate  "F" formats a finite Decimal alike; 10 and 10.0 as "10", never "1E+1"
    return str(value)


def segment_of(aggregation: Mapping, measurement) -> dict[str, str] | None:
    """The segment of a segmented aggregation that ``measurement`` belongs to (a declared
    segment as written, or the measurement's own values when none are declared), or None
    when it belongs to none. Not segmented: None."""
    fields = aggregation.get("segmentedFields") or []
    if not fields:
        return None
    values = measurement.values
    segments = aggregation.get("segments") or []
    if not segments:
        return {field: _text(values.get(field)) for field in fields}
    for segment in segments:
        for field, wanted in segment.items():
            if wanted != WILDCARD and wanted != _text(values.get(field)):
                break
        else:
            return dict(segment)
    return None


def segment_key(segment: Mapping[str, str] | None) -> Segment | None:
    return tuple(sorted(segment.items())) if segment is not None else None


def is_segmented(aggregation: Mapping) -> bool:
    return bool(aggregation.get("segmentedFields"))


def declared_segments(aggregation: Mapping) -> list[Segment]:
    return [segment_key(s) for s in aggregation.get("segments") or []] if is_segmented(aggregation) else []


def values_by_segment(aggregation: Mapping, measurements: Iterable) -> dict[Segment | None, Decimal | None]:
    """The aggregation's raw value (before defaultValue, quantityPerUnit and rounding) per
    segment: ``{None: value}`` when it is not segmented; every declared segment is there,
    with None when no measurement fell in it."""
    field = aggregation["targetField"]
    function = aggregation["aggregation"]
    if not is_segmented(aggregation):
        return {None: aggregate(function, _present(measurements, field))}
    grouped: dict[Segment | None, list] = {key: [] for key in declared_segments(aggregation)}
    for measurement in measurements:
        value = measurement.values.get(field)
        if value is None:
            continue
        segment = segment_of(aggregation, measurement)
        if segment is not None:
            grouped.setdefault(segment_key(segment), []).append(value)
    return {key: aggregate(function, values) for key, values in grouped.items()}


def _present(measurements: Iterable, field: str) -> list:
    return [v for v in (m.values.get(field) for m in measurements) if v is not None]


# -- compound aggregations --------------------------------------------------------------------

_SCOPE = "aggregation"


@functools.cache
def _compound_parser() -> Lark:
    """The notification rules' grammar with ``aggregation`` as its one scope: the same
    operators and literals, read without the float semantics of ``calculation.py``."""
    grammar = (Path(__file__).parent / "calculation.lark").read_text(encoding="utf-8")
    rule = "SCOPE: /(new|old)\\b/"
    if rule not in grammar:  # pragma: no cover - a guard for whoever edits the grammar
        raise RuntimeError("calculation.lark no longer defines SCOPE as compound aggregations expect")
    return Lark(grammar.replace(rule, f"SCOPE: /({_SCOPE})\\b/"), parser="lalr")


@dataclass(frozen=True, eq=False)
class Compound:
    """A parsed compound aggregation calculation."""

    text: str
    tree: Tree
    codes: tuple[str, ...]  # the aggregation codes it reads, in order of first use

    def evaluate(self, values: Mapping[str, Decimal | None]) -> Decimal | None:
        """The calculation's number for the aggregations' values (by code), or None when
        it is not a number (null, a boolean, a string, or beyond what a Decimal holds, as a
        division by zero is)."""
        try:
            result = _evaluate(self.tree, values)
        except RecursionError:
            raise MockError.bad_request("calculation: nested too deeply to evaluate") from None
        except ArithmeticError:  # decimal's Overflow, InvalidOperation: 9e999999 * 9e999999
            return None
        return result if isinstance(result, Decimal) else None


_TOKEN = re.compile(r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
                    r"""|([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"""
                    r"""|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)""")
_KEYWORDS = frozenset({"and", "or", "not", "true", "false", "null"})


def _scoped(text: str) -> tuple[str, list[int]]:
    """``text`` with each bare name (``storage_gb``) written ``aggregation.storage_gb``, and
    for each character of the result the index in ``text`` it came from."""
    parts: list[str] = []
    origin: list[int] = []
    done = 0
    for match in _TOKEN.finditer(text):
        name = match.group(3)
        if name is None or "." in name or name.lower() in _KEYWORDS:
            continue
        parts.append(text[done:match.start()])
        origin.extend(range(done, match.start()))
        prefix = f"{_SCOPE}."
        parts.append(prefix)
        origin.extend([match.start()] * len(prefix))
        done = match.start()
    parts.append(text[done:])
    origin.extend(range(done, len(text)))
    return "".join(parts), origin


@functools.lru_cache(maxsize=256)
def compound(text: str) -> Compound:
    """Parse a compound aggregation's calculation (a 400 naming line and column when it
    does not parse). A bare name is read as an aggregation code, as ``aggregation.<code>``."""
    if not text or not text.strip():
        raise MockError.bad_request("calculation: must not be empty")
    scoped, origin = _scoped(text)
    try:
        tree = _compound_parser().parse(scoped)
    except UnexpectedInput as error:
        raise _syntax_error(text, scoped, origin, error) from None
    return _compiled(text, tree)


def _syntax_error(text: str, scoped: str, origin: list[int], error: UnexpectedInput) -> MockError:
    """The error at its place in ``text`` (lark reports it in ``scoped``)."""
    def place(line: int, column: int) -> str:
        index = sum(len(row) + 1 for row in scoped.split("\n")[:line - 1]) + column - 1
        at = origin[index] if index < len(origin) else len(text)
        before = text[:at]
        return f"line {before.count(chr(10)) + 1}, column {at - (before.rfind(chr(10)) + 1) + 1}"

    if isinstance(error, UnexpectedCharacters):
        return MockError.bad_request(
            f"calculation: syntax error at {place(error.line, error.column)}: unexpected character "
            f"{error.char!r} (an aggregation is written by its code, or aggregation.<code>)")
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        written = _TOKEN.match(text, origin[error.token.start_pos])  # the name as written, not as scoped
        shown = written.group(0) if written and error.token.type in ("NAME", "SCOPE") else str(error.token)
        return MockError.bad_request(
            f"calculation: syntax error at {place(error.line, error.column)}: unexpected {shown!r}")
    return MockError.bad_request("calculation: syntax error at the end: unexpected end of input")


def _compiled(text: str, tree: Tree) -> Compound:
    codes = []
    for field in tree.find_data("field"):
        parts = [str(t) for t in field.children]
        if len(parts) != 2:
            raise MockError.bad_request(
                f"calculation: {'.'.join(parts)!r} is not a field; write aggregation.<code>")
        codes.append(parts[1])
    return Compound(text, tree, tuple(dict.fromkeys(codes)))


def _number(value: object) -> bool:
    return isinstance(value, Decimal)


def _evaluate(node: Tree | Token, values: Mapping[str, Decimal | None]) -> object:
    kind = node.data
    children = node.children
    if kind == "number":
        return Decimal(str(children[0]))
    if kind == "field":
        return values.get(str(children[1]))
    if kind == "string":
        return str(children[0])[1:-1]
    if kind in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[kind]
    if kind == "negate":
        operand = _evaluate(children[1], values)
        return -operand if _number(operand) else None
    if kind == "arithmetic":
        left, right = _evaluate(children[0], values), _evaluate(children[2], values)
        if not (_number(left) and _number(right)):
            return None
        symbol = str(children[1])
        if symbol == "+":
            return left + right
        if symbol == "-":
            return left - right
        if symbol == "*":
            return left * right
        return left / right if right != 0 else None
    if kind == "compare":
        left, right = _evaluate(children[0], values), _evaluate(children[2], values)
        symbol = str(children[1])
        same = type(left) is type(right) or (_number(left) and _number(right))
        if symbol == "==":
            return same and left == right
        if symbol == "!=":
            return not (same and left == right)
        if not same or not isinstance(left, (Decimal, str)):
            return False
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[symbol]
    if kind == "and_":
        return _evaluate(children[0], values) is True and _evaluate(children[1], values) is True
    if kind == "or_":
        return _evaluate(children[0], values) is True or _evaluate(children[1], values) is True
    if kind == "not_":
        return _evaluate(children[0], values) is not True
    raise MockError.bad_request(f"calculation: {kind!r} cannot be evaluated")  # pragma: no cover


def compound_segments(aggregations: Iterable[Mapping]) -> list[Segment] | None:
    """The segments of a compound aggregation: those every segmented aggregation it reads
    declares (in the first one's order), or None -- not segmented -- when it reads no
    segmented aggregation or they share no declared segment."""
    segmented = [a for a in aggregations if is_segmented(a)]
    if not segmented:
        return None
    common = declared_segments(segmented[0])
    for other in segmented[1:]:
        theirs = set(declared_segments(other))
        common = [s for s in common if s in theirs]
    return common or None
