"""m3ter's search syntax (``GET .../accounts/search``, ``.../commitments/search``,
``.../bills/search``), as plain functions over stored entities.

A ``searchQuery`` is a list of terms joined by ``$``; a term is ``<field><comparator><value>``
with one of the comparators ``:`` (equal), ``~`` (phrase prefix), ``>``, ``>=``, ``<``, ``<=``.
``operator`` (``AND``, the default, or ``OR``) combines the terms. Where m3ter's reference
says no more, the rules are the simplest consistent ones, and they are the mock's:

* blank terms (``a:b$``) are skipped; a term without a comparator, without a value, or on a
  field that is not searchable is a 400 naming it;
* ``:`` is exact equality (case-sensitive) for text; ``true``/``false`` (any case) for a
  boolean; the same instant for a date or date-time (a date is midnight UTC); the same
  number for a number. A plural field (``ids``, ``codes``) takes a comma-separated list and
  matches any of its values; a field that holds a list (``productIds``) matches when one
  of its elements does;
* ``~`` is a phrase prefix, as a search engine's ``match_phrase_prefix`` is: case-insensitive,
  on words (runs of letters, digits and ``_``), the value's words must appear one after the
  other in the field, the last one as a prefix (``name~Premium On`` matches "Premium Online"
  and "Acme Premium Online", not "Premiums"). Text fields only;
* ``>``/``>=``/``<``/``<=`` compare instants for dates, numbers for numbers, and text in
  code-point order; not on a boolean or a plural field;
* an entity without the field never matches a term on it;
* ``sortBy`` sorts on any scalar field (entities without it last, in either order), ties
  and the default in creation order; ``sortOrder`` (``ASC`` by default) also applies to
  that default order;
* paging is by offset: ``fromDocument`` (default 0) is the index of the first result, and
  ``nextToken`` is the ``fromDocument`` of the next page, absent on the last.

No web framework here; errors are ``MockError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Sequence

from .clock import from_iso
from .errors import MockError

COMPARATORS = (">=", "<=", ">", "<", ":", "~")
ORDERING = (">", ">=", "<", "<=")
KINDS = ("text", "boolean", "date", "date-time", "number")
_TERM = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(>=|<=|>|<|:|~)(.*)", re.DOTALL)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Term:
    field: str
    comparator: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.comparator}{self.value}"


@dataclass(frozen=True)
class SearchField:
    """How a searchable name reads an entity.

    ``attribute``: the entity field; ``kind``: one of ``KINDS``; ``many_values``: the term's
    value is a comma-separated list of alternatives (``ids``, ``codes``); ``holds_list``: the
    entity field is a list, which matches when one of its elements does."""

    attribute: str
    kind: str = "text"
    many_values: bool = False
    holds_list: bool = False


def parse_query(text: str | None) -> list[Term]:
    """The terms of a ``searchQuery`` (none for an absent or blank one)."""
    terms = []
    for part in (text or "").split("$"):
        if not part.strip():
            continue
        found = _TERM.fullmatch(part)
        if found is None:
            raise MockError.bad_request(
                f"searchQuery: {part.strip()!r} is not a term <field><comparator><value> "
                f"(comparators: {' '.join(COMPARATORS)}; terms are joined by '$')")
        name, comparator, value = found.group(1), found.group(2), found.group(3).strip()
        if not value:
            raise MockError.bad_request(f"searchQuery: the term {part.strip()!r} has no value")
        terms.append(Term(name, comparator, value))
    return terms


# -- values -----------------------------------------------------------------------------

def instant(value: Any) -> datetime | None:
    """A date (midnight UTC) or an ISO-8601 date-time (UTC when it has no offset) as an
    aware datetime; None when it is neither."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        parsed = from_iso(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _number(value: Any) -> Decimal | None:
    # A bool is refused too: str(True) is not a number. NaN is refused because ordering a
    # Decimal NaN raises (``amount>NaN`` would be a 500), an infinity as no JSON number is one.
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def phrase_prefix(text: str, phrase_words: Sequence[str]) -> bool:
    """The words of ``text`` hold ``phrase_words`` one after the other, the last as a prefix."""
    have = words(text)
    *whole, last = phrase_words
    size = len(phrase_words)
    for start in range(len(have) - size + 1):
        if have[start:start + size - 1] == list(whole) and have[start + size - 1].startswith(last):
            return True
    return False


def _compare(comparator: str, have: Any, want: Any) -> bool:
    if comparator == ":":
        return have == want
    if comparator == ">":
        return have > want
    if comparator == ">=":
        return have >= want
    if comparator == "<":
        return have < want
    return have <= want


# -- one term -----------------------------------------------------------------------------

def _term_matcher(term: Term, spec: SearchField) -> Callable[[Any], bool]:
    """A check of one (scalar) field value against ``term``; the term is validated here,
    so a bad one is refused before any entity is looked at."""
    kind, comparator, raw = spec.kind, term.comparator, term.value
    if comparator == "~" and (kind != "text" or spec.many_values):
        raise MockError.bad_request(f"searchQuery: '~' applies to text fields only, not to {term.field!r}")
    if comparator in ORDERING and (kind == "boolean" or spec.many_values):
        raise MockError.bad_request(
            f"searchQuery: {comparator!r} does not apply to {term.field!r}; use ':'")
    if spec.many_values:
        wanted = {part.strip() for part in raw.split(",") if part.strip()}
        if not wanted:
            raise MockError.bad_request(f"searchQuery: the term {str(term)!r} names no value")
        return lambda have: isinstance(have, str) and have in wanted
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise MockError.bad_request(f"searchQuery: {term.field!r} is true or false, not {raw!r}")
        flag = raw.lower() == "true"
        return lambda have: isinstance(have, bool) and have == flag
    if kind in ("date", "date-time"):
        moment = instant(raw)
        if moment is None:
            raise MockError.bad_request(
                f"searchQuery: {term.field!r} takes a date (YYYY-MM-DD) or an ISO-8601 date-time, not {raw!r}")

        def dated(have):
            at = instant(have)
            return at is not None and _compare(comparator, at, moment)

        return dated
    if kind == "number":
        number = _number(raw)
        if number is None:
            raise MockError.bad_request(f"searchQuery: {term.field!r} takes a number, not {raw!r}")

        def numeric(have):
            value = _number(have)
            return value is not None and _compare(comparator, value, number)

        return numeric
    if comparator == "~":
        phrase = words(raw)
        if not phrase:
            raise MockError.bad_request(f"searchQuery: the term {str(term)!r} has no letter or digit to match")
        return lambda have: isinstance(have, str) and phrase_prefix(have, phrase)
    return lambda have: isinstance(have, str) and _compare(comparator, have, raw)


def matcher(terms: Iterable[Term], fields: dict[str, SearchField], operator: str | None = None,
            label: str = "entity") -> Callable[[dict], bool]:
    """Whether an entity matches every term (``AND``, the default) or one of them (``OR``)."""
    if operator not in (None, "AND", "OR"):
        raise MockError.bad_request(f"operator: {operator!r} is not one of ['AND', 'OR']")
    checks = []
    for term in terms:
        spec = fields.get(term.field)
        if spec is None:
            raise MockError.bad_request(
                f"searchQuery: {term.field!r} is not a searchable field of {label} "
                f"(searchable: {', '.join(sorted(fields))})")
        checks.append((spec, _term_matcher(term, spec)))

    def one(entity: dict, spec: SearchField, check: Callable[[Any], bool]) -> bool:
        if spec.attribute not in entity:
            return False
        value = entity[spec.attribute]
        if spec.holds_list or isinstance(value, list):
            return isinstance(value, list) and any(check(item) for item in value)
        return check(value)

    if not checks:
        return lambda entity: True
    combine = any if operator == "OR" else all
    return lambda entity: combine(one(entity, spec, check) for spec, check in checks)


# -- order and pages ---------------------------------------------------------------------------

def sort_key(kind: str) -> Callable[[Any], Any]:
    if kind in ("date", "date-time"):
        return lambda value: instant(value) or datetime.min.replace(tzinfo=timezone.utc)
    if kind == "number":
        return lambda value: _number(value) or Decimal(0)
    if kind == "boolean":
        return lambda value: bool(value)
    return lambda value: str(value)


def ordered(entities: Sequence[dict], sort_by: str | None, kind: str = "text",
            descending: bool = False) -> list[dict]:
    """``entities`` (given in creation order) sorted on ``sort_by``: those without the field
    last in either order, ties in creation order. Without ``sort_by``: creation order, or
    its reverse when ``descending``."""
    if sort_by is None:
        return list(reversed(entities)) if descending else list(entities)
    having = [e for e in entities if e.get(sort_by) is not None]
    lacking = [e for e in entities if e.get(sort_by) is None]
    key = sort_key(kind)
    # sorted() is stable, so equal values keep creation order in both directions.
    if descending:
        indexed = list(enumerate(having))
        indexed.sort(key=lambda pair: (_Reverse(key(pair[1][sort_by])), pair[0]))
        having = [entity for _, entity in indexed]
    else:
        having = sorted(having, key=lambda e: key(e[sort_by]))
    return having + lacking


class _Reverse:
    """Inverts the order of a value, for a descending sort whose ties stay ascending."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __lt__(self, other: "_Reverse") -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value


def page(results: Sequence[dict], from_document: int | None, page_size: int | None,
         default_size: int = 10) -> tuple[list[dict], str | None]:
    """The page that starts at ``from_document`` and the ``nextToken`` (the next page's
    ``fromDocument``, as text) when more results follow."""
    start = 0 if from_document is None else from_document
    if start < 0:
        raise MockError.bad_request(f"fromDocument: must be 0 or more, not {start}")
    size = page_size or default_size
    chunk = list(results[start:start + size])
    following = start + size
    return chunk, (str(following) if following < len(results) else None)
