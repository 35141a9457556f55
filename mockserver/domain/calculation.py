r"""Notification rule calculations: parse, check against an event's fields, evaluate.

A notification rule's ``calculation`` decides whether an event triggers it, e.g.
the seed's "Commitment has under 10% remaining" rule::

    (new.amountSpent >= ((new.amount*100)/90)) AND
    ((old.amountSpent <= ((old.amount*100)/90)) OR (old.amountSpent == null))

The grammar (``calculation.lark``) is parsed with lark's LALR parser; nothing is
ever handed to Python's ``eval``.

Syntax
-------------------------------------------------------------------------------
* ``OR``, ``AND``, ``NOT``; ``== != < <= > >=``; ``+ - * /``; unary ``-``;
  parentheses. Precedence, loosest first: OR, AND, NOT, comparison, ``+ -``,
  ``* /``, unary minus. Comparisons do not chain (``a < b < c`` is an error).
* Keywords ``AND OR NOT true false null`` are case-insensitive.
* Numbers: ``90``, ``0.1``, ``1e3``. Strings: ``"..."`` or ``'...'`` with the
  escapes ``\\ \" \' \n \r \t \uXXXX``.
* Fields: ``new.<key>`` / ``old.<key>``, with further ``.<key>`` steps into
  maps (``new.customFields.tier``). Field names are case-sensitive.

Semantics (what m3ter does not document is the mock's choice)
-------------------------------------------------------------------------------
* Every number is a float (event data has ``15000.0`` and ``1`` alike), so
  ``7 / 2`` is ``3.5`` and ``1 + 2`` evaluates to ``3.0``.
* A missing field -- unknown key, a step into something that is not a map, or
  no ``old`` object at all (created events) -- is ``null``.
* Arithmetic needs two numbers; anything else (``null``, strings, booleans --
  booleans are not numbers) gives ``null``, as does division by zero or a
  result too large for a float. Evaluation never raises.
* ``==`` / ``!=`` compare values of the same kind (null, boolean, number,
  string, array, map); values of different kinds are never equal, so
  ``null == null`` is true, ``old.x == null`` is true for a missing field,
  ``1 == "1"`` and ``true == 1`` are false.
* ``< <= > >=`` order two numbers, or two strings (by code point); any other
  pair, including anything with ``null``, gives false.
* ``AND``, ``OR`` and ``NOT`` treat only ``true`` as true: ``null``, numbers
  and strings in a boolean position count as false (so ``NOT null`` is true).
* A rule *fires* only when the whole calculation evaluates to exactly ``true``.

Errors are ``MockError`` 400s naming the position, e.g.
``calculation: syntax error at line 1, column 17: unexpected ')'``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from numbers import Real
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from mockserver.domain.errors import MockError

__all__ = ["MAX_DEPTH", "Calculation", "check", "parse"]

# Deeper trees are refused at parse time so that evaluating one (which takes
# a few stack frames per operator) can never hit Python's recursion limit.
MAX_DEPTH = 100


# ---- Value semantics ---------------------------------------------------------


def _kind(value: object) -> str:
    if value is None:
        return "null"  # pragma: no mutate: these names are only compared with one another
    if isinstance(value, bool):
        return "boolean"  # pragma: no mutate: these names are only compared with one another
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"  # pragma: no mutate: these names are only compared with one another
    return "array"  # pragma: no mutate: as above; lists are the one other kind event JSON holds


def _from_event(value: object) -> object:
    """An event value as the language sees it: every number becomes a float."""
    if isinstance(value, (Real, Decimal)) and not isinstance(value, bool):
        return float(value)
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, float)


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}

_ORDERINGS: dict[str, Callable[[object, object], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _arithmetic(symbol: str, left: object, right: object) -> float | None:
    if not (_is_number(left) and _is_number(right)):
        return None
    if symbol == "/" and right == 0:
        return None
    result = _ARITHMETIC[symbol](left, right)
    return result if math.isfinite(result) else None


def _negate(value: object) -> float | None:
    return -value if _is_number(value) else None


def _compare(symbol: str, left: object, right: object) -> bool:
    same_kind = _kind(left) == _kind(right)
    if symbol == "==":
        return same_kind and left == right
    if symbol == "!=":
        return not (same_kind and left == right)
    return same_kind and _kind(left) in ("number", "string") and _ORDERINGS[symbol](left, right)


def _both(left: object, right: object) -> bool:
    return left is True and right is True


def _either(left: object, right: object) -> bool:
    return left is True or right is True


def _not(value: object) -> bool:
    return value is not True


# ---- The evaluable tree ------------------------------------------------------


class _Node:
    __slots__ = ("depth",)

    def evaluate(self, scopes: Mapping[str, object]) -> object:
        raise NotImplementedError

    def fields(self) -> list[_Field]:
        return []


class _Literal(_Node):
    __slots__ = ("value",)

    def __init__(self, value: object):
        self.value = value
        self.depth = 1

    def evaluate(self, scopes: Mapping[str, object]) -> object:
        return self.value


class _Field(_Node):
    __slots__ = ("scope", "path", "line", "column")

    def __init__(self, scope: str, path: tuple[str, ...], line: int, column: int):
        self.scope, self.path = scope, path
        self.line, self.column = line, column
        self.depth = 1

    @property
    def name(self) -> str:
        return ".".join((self.scope, *self.path))

    def evaluate(self, scopes: Mapping[str, object]) -> object:
        value = scopes.get(self.scope)
        for key in self.path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return _from_event(value)

    def fields(self) -> list[_Field]:
        return [self]


class _Operation(_Node):
    __slots__ = ("apply", "operands")

    def __init__(self, apply: Callable[..., object], *operands: _Node):
        self.apply, self.operands = apply, operands
        self.depth = 1 + max(operand.depth for operand in operands)
        if self.depth > MAX_DEPTH:
            raise MockError.bad_request(f"calculation: nested more than {MAX_DEPTH} operators deep")

    def evaluate(self, scopes: Mapping[str, object]) -> object:
        return self.apply(*(operand.evaluate(scopes) for operand in self.operands))

    def fields(self) -> list[_Field]:
        return [field for operand in self.operands for field in operand.fields()]


# ---- Parsing -----------------------------------------------------------------


class _SyntaxProblem(Exception):
    """A syntax error found while building the tree, after lark accepted the tokens."""

    def __init__(self, line: int, column: int, reason: str):
        super().__init__(reason)  # pragma: no mutate: only .reason is ever read
        self.line, self.column, self.reason = line, column, reason


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


def _unescape(token: Token) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape in _ESCAPES:
            return _ESCAPES[escape]
        if len(escape) == 5:
            return chr(int(escape[1:], 16))
        # +1 for the opening quote, which match positions do not count.
        column = token.column + 1 + match.start()
        raise _SyntaxProblem(token.line, column, f"unknown escape '\\{escape}' in string")

    return _ESCAPE.sub(replace, token[1:-1])


@v_args(inline=True)
class _TreeBuilder(Transformer):
    """The callbacks the LALR parser calls as it reduces each aliased alternative."""

    def or_(self, left: _Node, right: _Node) -> _Node:
        return _Operation(_either, left, right)

    def and_(self, left: _Node, right: _Node) -> _Node:
        return _Operation(_both, left, right)

    def not_(self, operand: _Node) -> _Node:
        return _Operation(_not, operand)

    def compare(self, left: _Node, comparator: Token, right: _Node) -> _Node:
        return _Operation(functools.partial(_compare, str(comparator)), left, right)

    def arithmetic(self, left: _Node, symbol: Token, right: _Node) -> _Node:
        return _Operation(functools.partial(_arithmetic, str(symbol)), left, right)

    def negate(self, _minus: Token, operand: _Node) -> _Node:
        return _Operation(_negate, operand)

    def number(self, token: Token) -> _Node:
        value = float(token)
        if not math.isfinite(value):
            raise _SyntaxProblem(token.line, token.column, f"number {token} is too large")
        return _Literal(value)

    def string(self, token: Token) -> _Node:
        return _Literal(_unescape(token))

    def true(self, _token: Token) -> _Node:
        return _Literal(True)

    def false(self, _token: Token) -> _Node:
        return _Literal(False)

    def null(self, _token: Token) -> _Node:
        return _Literal(None)

    def field(self, scope: Token, *keys: Token) -> _Node:
        # The grammar ignores whitespace between all tokens; a field reference
        # is one word, so only the dot may sit between its parts.
        previous = scope
        for key in keys:
            if key.start_pos != previous.end_pos + 1:
                raise _SyntaxProblem(scope.line, scope.column, "a field reference must not contain spaces")
            previous = key
        return _Field(str(scope), tuple(str(key) for key in keys), scope.line, scope.column)


@functools.cache
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "calculation.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", transformer=_TreeBuilder())


# Terminal names from calculation.lark, grouped into what a reader would call them.
_VALUE_STARTS = {"NUMBER", "STRING", "TRUE", "FALSE", "NULL", "SCOPE", "_LPAR", "_NOT"}
_COMPARATOR = "COMPARATOR"
_OPERATORS = {"_OR", "_AND", _COMPARATOR, "PLUS", "MINUS", "STAR", "SLASH"}
_CHARACTER_HINTS = {"=": "use '==' to compare", "&": "use AND", "|": "use OR", "!": "use NOT or '!='"}


def _describe_expected(expected: set[str]) -> str:
    wanted = []
    if expected & _VALUE_STARTS:
        wanted.append("a value")
    if "NAME" in expected:
        wanted.append("a field name")
    if "_DOT" in expected:
        wanted.append("'.'")
    if expected & _OPERATORS and not expected & _VALUE_STARTS:
        wanted.append("an operator")
    if "_RPAR" in expected:
        wanted.append("')'")
    if "$END" in expected:
        wanted.append("end of input")
    if not wanted:
        return ""  # pragma: no mutate: unreachable, every terminal is in one of the groups above
    if len(wanted) == 1:
        return f", expected {wanted[0]}"
    return f", expected {', '.join(wanted[:-1])} or {wanted[-1]}"


def _end_position(text: str) -> tuple[int, int]:
    body = text.rstrip()
    line = body.count("\n") + 1
    return line, len(body) - (body.rfind("\n") + 1) + 1


def _syntax_error(line: int, column: int, reason: str) -> MockError:
    return MockError.bad_request(f"calculation: syntax error at line {line}, column {column}: {reason}")


def _translate(error: UnexpectedCharacters | UnexpectedToken, text: str) -> MockError:
    """Turn lark's exception into a one-line message a rule author can act on."""
    if isinstance(error, UnexpectedCharacters):
        char = error.char
        if char in "'\"":  # pragma: no mutate: a letter added here is a name character, never unexpected
            reason = "unterminated string"
        elif char in _CHARACTER_HINTS:
            reason = f"unexpected '{char}' ({_CHARACTER_HINTS[char]})"
        else:
            reason = f"unexpected character {char!r}"
        return _syntax_error(error.line, error.column, reason)
    token = error.token
    # `accepts` replays the parser on each terminal, so unlike `expected` it is
    # exact -- LALR merges lookaheads, and the lexer's set lacks end of input.
    expected = error.accepts or error.expected
    if token.type == "$END":
        line, column = _end_position(text)
        return _syntax_error(line, column, "unexpected end of input" + _describe_expected(expected))
    # Right after a whole operand (an operator may follow, a value may not) a second comparator
    # is a chain; where a value belongs it is just a missing value.
    if (token.type == _COMPARATOR and _COMPARATOR not in expected and expected & _OPERATORS
            and not expected & _VALUE_STARTS):
        reason = f"unexpected '{token}': comparisons do not chain, join them with AND"
    else:
        reason = f"unexpected '{token}'" + _describe_expected(expected)
    return _syntax_error(token.line, token.column, reason)


# ---- Public API --------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Calculation:
    """A parsed calculation; immutable, so one parse can be reused for every event."""

    text: str
    _root: _Node = dataclasses.field(repr=False)
    _fields: tuple[_Field, ...] = dataclasses.field(repr=False)

    def field_references(self) -> list[str]:
        """Each field the calculation reads, once, in order of first appearance."""
        return list(dict.fromkeys(field.name for field in self._fields))

    def evaluate(self, new: Mapping[str, object] | None, old: Mapping[str, object] | None) -> object:
        """The calculation's value for an event: True/False, a float, a string, None, ..."""
        return self._root.evaluate({"new": new, "old": old})

    def fires(self, new: Mapping[str, object] | None, old: Mapping[str, object] | None) -> bool:
        """Whether the rule triggers: only a value of exactly ``true`` does."""
        return self.evaluate(new, old) is True


@functools.lru_cache(maxsize=256)
def parse(text: str) -> Calculation:
    """Parse a calculation, raising a 400 ``MockError`` that gives the position of any syntax error."""
    if not text.strip():
        raise MockError.bad_request("calculation: must not be empty")
    try:
        root = _parser().parse(text)
    except (UnexpectedCharacters, UnexpectedToken) as error:
        raise _translate(error, text) from None
    except _SyntaxProblem as problem:
        raise _syntax_error(problem.line, problem.column, problem.reason) from None
    return Calculation(text, root, tuple(root.fields()))


def _is_known(name: str, fields: Mapping[str, str]) -> bool:
    if name in fields:
        return True
    # `new.customFields.tier` is valid when `new.customFields` is a map.
    parts = name.split(".")
    return any(fields.get(".".join(parts[:end])) == "map" for end in range(2, len(parts)))


def check(text: str, fields: Mapping[str, str], event_name: str | None = None) -> Calculation:
    """Parse a calculation and verify every field it references is one of ``fields``.

    ``fields`` maps each field reference to its type, as the m3ter events/fields
    call lists them (``{"new.amount": "double", "new.customFields": "map"}``).
    """
    calculation = parse(text)
    for field in calculation._fields:
        if not _is_known(field.name, fields):
            where = f"at line {field.line}, column {field.column}"
            if event_name:
                where += f" for event {event_name}"
            raise MockError.bad_request(f"calculation: unknown field '{field.name}' {where}")
    return calculation
