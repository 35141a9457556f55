"""The notification calculation language: syntax, semantics, errors and the seed's rule."""

from __future__ import annotations

import ast
import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from mockserver.domain import calculation
from mockserver.domain.calculation import MAX_DEPTH, check, parse
from mockserver.domain.errors import MockError

SEED_RULE = (
    "(new.amountSpent >= ((new.amount*100)/90)) AND\n"
    "((old.amountSpent <= ((old.amount*100)/90)) OR (old.amountSpent == null))"
)

COMMITMENT_UPDATED_FIELDS = {
    f"{scope}.{name}": type_name
    for scope in ("new", "old")
    for name, type_name in {
        "amount": "double",
        "amountSpent": "double",
        "billingInterval": "int",
        "commitmentFeeBillInAdvance": "boolean",
        "currency": "string",
        "customFields": "map",
        "productIds": "array",
    }.items()
}


def value_of(text: str, new: dict | None = None, old: dict | None = None) -> object:
    return parse(text).evaluate(new or {}, old)


def syntax_error_of(text: str) -> str:
    with pytest.raises(MockError) as raised:
        parse(text)
    assert raised.value.status == 400
    return raised.value.message


# ---- Precedence and associativity ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("2 - 3 * 4 + 1", -9.0),
        ("10 - 4 - 3", 3.0),  # left-associative: (10 - 4) - 3
        ("24 / 4 / 2", 3.0),  # left-associative: (24 / 4) / 2
        ("-2 * 3", -6.0),
        ("2 * -3", -6.0),
        ("-2 - -3", 1.0),
        ("- -3", 3.0),
        ("-(2 + 3)", -5.0),
        ("1 + 2 == 3", True),  # arithmetic binds tighter than comparison
        ("2 * 3 > 5", True),
        ("NOT 1 == 2", True),  # NOT (1 == 2): comparison binds tighter than NOT
        ("NOT true AND false", False),  # (NOT true) AND false
        ("NOT (true AND false)", True),
        ("true OR true AND false", True),  # true OR (true AND false)
        ("(true OR true) AND false", False),
        ("false AND true OR true", True),  # (false AND true) OR true
        ("NOT NOT true", True),
        ("NOT false OR false", True),  # (NOT false) OR false
        ("-2 * -2 > 3 AND 1 < 2", True),
        ("((((1))))", 1.0),
    ],
)
def test_precedence(text, expected):
    assert value_of(text) == expected


# ---- Operators ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 + 4", 7.0),
        ("3 - 4", -1.0),
        ("3 * 4", 12.0),
        ("7 / 2", 3.5),
        ("0.1 + 0.2", 0.1 + 0.2),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("-0.5", -0.5),
    ],
)
def test_arithmetic(text, expected):
    result = value_of(text)
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize("left", [1, 2, 3])
@pytest.mark.parametrize("symbol", ["==", "!=", "<", "<=", ">", ">="])
def test_number_comparisons(symbol, left):
    python = {
        "==": left == 2,
        "!=": left != 2,
        "<": left < 2,
        "<=": left <= 2,
        ">": left > 2,
        ">=": left >= 2,
    }
    assert value_of(f"{left} {symbol} 2") is python[symbol]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'abc' == 'abc'", True),
        ("'abc' == 'abd'", False),
        ("'abc' != 'abd'", True),
        ("'abc' < 'abd'", True),
        ("'b' > 'abc'", True),  # lexicographic, not by length
        ("'B' < 'a'", True),  # by code point: upper case sorts first
        ("'a' <= 'a'", True),
        ("'a' >= 'b'", False),
        ("new.currency == 'USD'", True),
        ('new.currency == "USD"', True),
    ],
)
def test_string_comparisons(text, expected):
    assert value_of(text, {"currency": "USD"}) is expected


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [("==", False), ("!=", True), ("<", False), ("<=", False), (">", False), (">=", False)],
)
@pytest.mark.parametrize(
    ("left", "right"), [("1", "'1'"), ("'1'", "1"), ("true", "1"), ("1", "true"), ("'true'", "true")]
)
def test_values_of_different_kinds_are_never_equal_or_ordered(left, right, symbol, expected):
    assert value_of(f"{left} {symbol} {right}") is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true == true", True),
        ("true != false", True),
        ("false == false", True),
        ("true < false", False),  # booleans are not ordered
        ("true >= true", False),
        ("new.commitmentFeeBillInAdvance == true", True),
    ],
)
def test_boolean_comparisons(text, expected):
    assert value_of(text, {"commitmentFeeBillInAdvance": True}) is expected


@pytest.mark.parametrize("text", ["true + 1", "1 * false", "-true", "'a' + 'b'", "-'a'", "'2' * 2"])
def test_arithmetic_on_non_numbers_is_null(text):
    # Booleans are not numbers, and strings do not concatenate.
    assert value_of(text) is None


@pytest.mark.parametrize(
    ("left", "right", "and_", "or_"),
    [
        (True, True, True, True),
        (True, False, False, True),
        (False, True, False, True),
        (False, False, False, False),
    ],
)
def test_boolean_operators(left, right, and_, or_):
    new = {"a": left, "b": right}
    assert value_of("new.a AND new.b", new) is and_
    assert value_of("new.a OR new.b", new) is or_
    assert value_of("NOT new.a", new) is (not left)


@pytest.mark.parametrize("text", ["true and false", "TRUE AND FALSE", "True And False", "tRuE aNd FaLsE"])
def test_keywords_are_case_insensitive(text):
    assert value_of(text) is False


def test_null_keyword_is_case_insensitive():
    assert value_of("old.amount == NULL AND old.amount == Null AND NOT false OR TRUE") is True


def test_keywords_do_not_swallow_longer_names():
    new = {"order": 1, "nullable": 2, "android": 3, "true": 4, "and": 5}
    assert value_of("new.order + new.nullable + new.android + new.true + new.and", new) == 15.0
    assert parse("new.order OR new.notes").field_references() == ["new.order", "new.notes"]


# ---- Null semantics -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # arithmetic with null is null
        ("null + 1", None),
        ("1 - null", None),
        ("null * null", None),
        ("1 / null", None),
        ("-null", None),
        ("old.amount * 100", None),
        # == / != treat null as a value; ordering with null is false
        ("null == null", True),
        ("null != null", False),
        ("null == 0", False),
        ("0 == null", False),
        ("null != 0", True),
        ("null == ''", False),
        ("null == false", False),
        ("null < 1", False),
        ("null <= 1", False),
        ("null > 1", False),
        ("null >= 1", False),
        ("1 > null", False),
        ("null <= null", False),
        ("old.amount == null", True),
        ("old.amount != null", False),
        ("new.amount == null", False),
        ("new.amount != null", True),
        # null in a boolean position is false
        ("null AND true", False),
        ("true AND null", False),
        ("null OR true", True),
        ("null OR null", False),
        ("NOT null", True),
        ("null", None),
    ],
)
def test_null_semantics(text, expected):
    assert value_of(text, {"amount": 100.0}, old=None) is expected


@pytest.mark.parametrize("text", ["1", "'yes'", "0", "''"])
def test_non_booleans_in_a_boolean_position_are_false(text):
    assert value_of(f"{text} AND true") is False
    assert value_of(f"{text} OR false") is False
    assert value_of(f"NOT {text}") is True


@pytest.mark.parametrize(
    "text", ["1 / 0", "0 / 0", "-1 / 0", "1 / (2 - 2)", "1 / -0.0", "new.amount / new.zero"]
)
def test_division_by_zero_is_null(text):
    assert value_of(text, {"amount": 5, "zero": 0}) is None


def test_division_by_zero_never_fires_an_ordering():
    assert value_of("(1 / 0) == null") is True
    assert value_of("1 / 0 > 0") is False
    assert value_of("1 / 0 < 0") is False


def test_overflow_is_null():
    assert value_of("1e308 * 10") is None


# ---- Strings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"plain"', "plain"),
        ("'plain'", "plain"),
        ('""', ""),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'it\'s'", "it's"),
        ('"it\'s"', "it's"),  # the other quote needs no escape
        ("'say \"hi\"'", 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"a\nb\tc\rd"', "a\nb\tc\rd"),
        (r'"caf\u00e9"', "café"),
        (r'"\\n"', "\\n"),  # an escaped backslash, then a plain n
        ('"AND OR NOT null ( ) =="', "AND OR NOT null ( ) =="),
        ('"ünïcödé"', "ünïcödé"),
    ],
)
def test_string_literals_and_escapes(text, expected):
    assert value_of(text) == expected


# ---- Fields -------------------------------------------------------------------


def test_field_references_are_listed_once_in_order_of_first_use():
    references = parse(SEED_RULE).field_references()
    assert references == ["new.amountSpent", "new.amount", "old.amountSpent", "old.amount"]


def test_field_references_include_map_paths():
    text = "new.customFields.tier == 'gold' OR old.customFields.tier == null"
    assert parse(text).field_references() == ["new.customFields.tier", "old.customFields.tier"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("new.customFields.tier", "gold"),
        ("new.customFields.limits.monthly", 500.0),
        ("new.customFields.missing", None),
        ("new.customFields.tier.deeper", None),  # a step into a string
        ("new.amount.cents", None),  # a step into a number
        ("new.productIds.first", None),  # a step into an array
        ("old.customFields.tier", None),  # old is null for created events
        ("new.customFields.tier == 'gold'", True),
        ("new.customFields.limits.monthly > 100", True),
    ],
)
def test_dotted_paths_into_maps(text, expected):
    new = {
        "amount": 15000.0,
        "productIds": ["p1"],
        "customFields": {"tier": "gold", "limits": {"monthly": 500}},
    }
    assert value_of(text, new, old=None) == expected


@pytest.mark.parametrize(
    ("new", "old"),
    [
        ({"amount": 1.0}, None),  # created event: no old object
        ({"amount": 1.0}, {}),  # old object without the key
        ({"amount": 1.0}, {"amountSpent": None}),  # key present, value null
    ],
)
def test_missing_fields_are_null(new, old):
    compiled = parse("old.amountSpent == null AND new.nothing == null")
    assert compiled.evaluate(new, old) is True
    assert parse("old.amountSpent").evaluate(new, old) is None


def test_new_may_be_absent_too():
    # A deleted event only has `old`.
    assert parse("new.amount == null AND old.amount == 5").evaluate(None, {"amount": 5}) is True


@pytest.mark.parametrize("number", [1, 1.0, Decimal("1.0")])
def test_event_numbers_are_floats(number):
    compiled = parse("new.billingInterval")
    assert compiled.evaluate({"billingInterval": number}, None) == 1.0
    assert type(compiled.evaluate({"billingInterval": number}, None)) is float
    assert parse("new.billingInterval == 1").fires({"billingInterval": number}, None)


def test_event_booleans_are_not_numbers():
    assert value_of("new.flag == 1", {"flag": True}) is False
    assert value_of("new.flag + 1", {"flag": True}) is None


def test_arrays_and_maps_compare_for_equality_only():
    new = {"productIds": ["a", "b"], "customFields": {"x": 1}}
    old = {"productIds": ["a"], "customFields": {"x": 1}}
    assert parse("new.productIds != old.productIds").evaluate(new, old) is True
    assert parse("new.customFields == old.customFields").evaluate(new, old) is True
    assert parse("new.productIds > old.productIds").evaluate(new, old) is False
    assert parse("new.productIds == null").evaluate(new, old) is False


def test_field_lookup_is_a_key_lookup_not_attribute_access():
    assert value_of("new.__class__ == null", {}) is True
    assert value_of("new.keys == null", {}) is True
    assert value_of("new.__class__", {"__class__": "a key"}) == "a key"


# ---- evaluate / fires / parse --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("1 == 1", True),
        ("true", True),
        ("1 == 2", False),
        ("new.amount", False),
        ("'true'", False),
        ("1", False),
        ("null", False),
    ],
)
def test_fires_only_on_exactly_true(text, fires):
    assert parse(text).fires({"amount": 15000.0}, None) is fires


def test_parse_is_cached_and_the_result_reusable():
    compiled = parse("new.amount > 10")
    assert parse("new.amount > 10") is compiled
    assert compiled.fires({"amount": 11}, None)
    assert not compiled.fires({"amount": 9}, None)
    assert compiled.text == "new.amount > 10"


def test_whitespace_and_newlines_are_free_between_tokens():
    assert value_of("\n  1\t+\r\n2   ==3  \n") is True


def test_nesting_is_bounded():
    assert value_of("-" * (MAX_DEPTH - 1) + "1") == -1.0
    with pytest.raises(MockError) as raised:
        parse("-" * (MAX_DEPTH + 1) + "1")
    assert raised.value.status == 400
    assert f"nested more than {MAX_DEPTH} operators deep" in raised.value.message
    with pytest.raises(MockError):
        parse(" OR ".join(["true"] * (MAX_DEPTH + 2)))


def test_deep_parentheses_alone_are_fine():
    # Parentheses add no operators, so they add no depth.
    assert value_of("(" * 500 + "1" + ")" * 500) == 1.0


# ---- Syntax errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(new.a > 1", "line 1, column 11: unexpected end of input, expected an operator or ')'"),
        ("new.a > 1)", "line 1, column 10: unexpected ')', expected an operator or end of input"),
        (
            "((new.a > 1) AND (new.b < 2)",
            "line 1, column 29: unexpected end of input, expected an operator or ')'",
        ),
        ("()", "line 1, column 2: unexpected ')', expected a value"),
        ("new.a >", "line 1, column 8: unexpected end of input, expected a value"),
        ("new.a > 1 AND", "line 1, column 14: unexpected end of input, expected a value"),
        ("new.a +* 2", "line 1, column 8: unexpected '*', expected a value"),
        ("NOT", "line 1, column 4: unexpected end of input, expected a value"),
        ("new.", "line 1, column 5: unexpected end of input, expected a field name"),
        ("new.a > new.", "line 1, column 13: unexpected end of input, expected a field name"),
        ("new", "line 1, column 4: unexpected end of input, expected '.'"),
        ("new.1a", "line 1, column 5: unexpected '1', expected a field name"),
        ("new . a", "line 1, column 1: a field reference must not contain spaces"),
        ("new. a", "line 1, column 1: a field reference must not contain spaces"),
        ("'abc", "line 1, column 1: unterminated string"),
        ('new.a == "abc', "line 1, column 10: unterminated string"),
        ("'abc\ndef'", "line 1, column 1: unterminated string"),  # no raw newlines in strings
        (r"new.a == 'x\q'", "line 1, column 12: unknown escape '\\q' in string"),
        ("new.a = 1", "line 1, column 7: unexpected '=' (use '==' to compare)"),
        ("new.a && new.b", "line 1, column 7: unexpected '&' (use AND)"),
        ("new.a || new.b", "line 1, column 7: unexpected '|' (use OR)"),
        ("!new.a", "line 1, column 1: unexpected '!' (use NOT or '!=')"),
        ("new.a $ 1", "line 1, column 7: unexpected character '$'"),
        ("1 == 2 == 3", "line 1, column 8: unexpected '==': comparisons do not chain, join them with AND"),
        ("1 2", "line 1, column 3: unexpected '2', expected an operator or end of input"),
        ("amount > 1", "line 1, column 1: unexpected 'amount', expected a value"),
        ("NEW.amount > 1", "line 1, column 1: unexpected 'NEW', expected a value"),
        ("newer.amount > 1", "line 1, column 1: unexpected 'newer', expected a value"),
        ("1.", "line 1, column 2: unexpected '.', expected an operator or end of input"),
        (".5", "line 1, column 1: unexpected '.', expected a value"),
        ("1e999", "line 1, column 1: number 1e999 is too large"),
        ("new.a > 1\n  AND )", "line 2, column 7: unexpected ')', expected a value"),
        ("new.a > 1 AND\n", "line 1, column 14: unexpected end of input, expected a value"),
        (SEED_RULE + ")", "line 2, column 74: unexpected ')', expected an operator or end of input"),
    ],
)
def test_syntax_errors_give_position_and_reason(text, message):
    assert syntax_error_of(text) == f"calculation: syntax error at {message}"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_calculation_is_rejected(text):
    assert syntax_error_of(text) == "calculation: must not be empty"


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "__import__('os').system('true')",
        "eval('1')",
        "exec('x = 1')",
        "new.amount.__class__()",
        "(lambda: 1)()",
        "[x for x in ()]",
        "1 if true else 2",
        "new['amount']",
        "new.amount ** 2",
    ],
)
def test_python_is_not_the_language(text):
    assert "syntax error" in syntax_error_of(text)


def test_the_module_never_uses_eval_and_imports_no_web_framework():
    nodes = list(ast.walk(ast.parse(Path(calculation.__file__).read_text(encoding="utf-8"))))
    names_used = {node.id for node in nodes if isinstance(node, ast.Name)}
    assert not names_used & {"eval", "exec", "compile", "__import__"}
    imported = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name.split(".")[0] for name in imported} & {"flask", "connexion", "starlette", "werkzeug"}


# ---- check: fields against an event's field map ------------------------------


def test_check_accepts_known_fields_and_returns_the_calculation():
    compiled = check(SEED_RULE, COMMITMENT_UPDATED_FIELDS, "configuration.commitment.updated")
    assert compiled is parse(SEED_RULE)


def test_check_names_the_unknown_field_its_position_and_event():
    with pytest.raises(MockError) as raised:
        misspelt = SEED_RULE.replace("(new.amount*", "(new.amont*")
        check(misspelt, COMMITMENT_UPDATED_FIELDS, "configuration.commitment.updated")
    assert raised.value.status == 400
    assert raised.value.message == (
        "calculation: unknown field 'new.amont' at line 1, column 23"
        " for event configuration.commitment.updated"
    )


def test_check_reports_the_first_unknown_field_and_its_line():
    text = "new.amount > 1 AND\n   old.amountSpnt > 2 AND old.nope > 3"
    with pytest.raises(MockError) as raised:
        check(text, COMMITMENT_UPDATED_FIELDS)
    assert raised.value.message == "calculation: unknown field 'old.amountSpnt' at line 2, column 4"


def test_check_event_without_old_rejects_old_fields():
    created_fields = {
        name: kind for name, kind in COMMITMENT_UPDATED_FIELDS.items() if name.startswith("new.")
    }
    with pytest.raises(MockError) as raised:
        check(SEED_RULE, created_fields, "configuration.commitment.created")
    assert raised.value.message == (
        "calculation: unknown field 'old.amountSpent' at line 2, column 3"
        " for event configuration.commitment.created"
    )


@pytest.mark.parametrize(
    ("text", "known"),
    [
        ("new.customFields.tier == 'gold'", True),  # into a map
        ("new.customFields.a.b.c == 1", True),  # any depth into a map
        ("new.customFields == null", True),  # the map itself
        ("new.amount.cents == 1", False),  # a double is not a map
        ("new.productIds.first == 1", False),  # nor is an array
        ("new.Amount == 1", False),  # field names are case-sensitive
    ],
)
def test_check_map_paths(text, known):
    if known:
        check(text, COMMITMENT_UPDATED_FIELDS)
    else:
        with pytest.raises(MockError) as raised:
            check(text, COMMITMENT_UPDATED_FIELDS)
        assert "unknown field" in raised.value.message


def test_check_reports_syntax_errors_first():
    with pytest.raises(MockError) as raised:
        check("new.nope >", COMMITMENT_UPDATED_FIELDS)
    assert raised.value.message.startswith("calculation: syntax error at line 1, column 11")


# ---- The seed's "Commitment has under 10% remaining" rule --------------------

MISSING = object()  # the key is absent, as opposed to present with null
SPENT = [MISSING, None, 0.0, 99.0, 100.0, 101.0, 9999.0, 10000, 16666.0, 16667.0, 20000.0]
AMOUNTS = [MISSING, None, 0.0, 90.0, 9000, 15000.0]


def plain_python_says_fires(new: dict, old: dict | None) -> bool:
    """The seed rule, written out by hand, with m3ter's null rules spelled out."""

    def read(obj: dict | None, key: str) -> float | None:
        value = None if obj is None else obj.get(key)
        return None if value is None else float(value)

    def threshold(amount: float | None) -> float | None:
        return None if amount is None else (amount * 100) / 90

    new_spent, new_limit = read(new, "amountSpent"), threshold(read(new, "amount"))
    old_spent, old_limit = read(old, "amountSpent"), threshold(read(old, "amount"))
    now_over = new_spent is not None and new_limit is not None and new_spent >= new_limit
    was_at_or_under = old_spent is not None and old_limit is not None and old_spent <= old_limit
    return now_over and (was_at_or_under or old_spent is None)


def commitment(spent: object, amount: object) -> dict:
    obj = {"currency": "USD", "id": "480d317e-2030-416b-b64b-c07577c418b4"}
    if spent is not MISSING:
        obj["amountSpent"] = spent
    if amount is not MISSING:
        obj["amount"] = amount
    return obj


def test_seed_rule_fires_exactly_where_the_expression_is_true():
    rule = check(SEED_RULE, COMMITMENT_UPDATED_FIELDS, "configuration.commitment.updated")
    cases = fired = 0
    mismatches = []
    for new_spent, new_amount, old_spent, old_amount in itertools.product(SPENT, AMOUNTS, SPENT, AMOUNTS):
        new, old = commitment(new_spent, new_amount), commitment(old_spent, old_amount)
        expected = plain_python_says_fires(new, old)
        if rule.fires(new, old) is not expected:
            mismatches.append((new, old, expected))
        cases += 1
        fired += expected
    assert mismatches == []
    assert 0 < fired < cases  # the table exercises both outcomes


@pytest.mark.parametrize(("new_spent", "new_amount"), list(itertools.product(SPENT, AMOUNTS)))
def test_seed_rule_on_created_events_without_old(new_spent, new_amount):
    new = commitment(new_spent, new_amount)
    assert parse(SEED_RULE).fires(new, None) is plain_python_says_fires(new, None)


def spend(spent: float | None, amount: float | None = 15000.0) -> dict:
    return {"amountSpent": spent, "amount": amount}


@pytest.mark.parametrize(
    ("story", "new", "old", "fires"),
    [
        ("crosses the threshold", spend(16700.0), spend(16600.0), True),
        ("lands exactly on it", spend(100.0, 90.0), spend(50.0, 90.0), True),
        ("was already over it", spend(16800.0), spend(16700.0), False),
        ("still under it", spend(1000.0), spend(0.0), False),
        ("first spend recorded", spend(16700.0), spend(None), True),
        ("amount raised above the spend", spend(16700.0, 20000.0), spend(16700.0), False),
        ("amount cut below the spend", spend(16700.0, 9000), spend(9000.0, 9000), True),
        ("no amount to compare with", spend(16700.0, None), spend(1.0, None), False),
    ],
)
def test_seed_rule_stories(story, new, old, fires):
    assert parse(SEED_RULE).fires(new, old) is fires
    assert plain_python_says_fires(new, old) is fires


# -- messages that list what was expected, and where input ended ----------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("new.a new.b", "calculation: syntax error at line 1, column 7: "
                    "unexpected 'new', expected '.', an operator or end of input"),
    ("(new.a", "calculation: syntax error at line 1, column 7: unexpected end of input, expected an operator or ')'"),
    ("1 +\n2 *\n  -", "calculation: syntax error at line 3, column 4: unexpected end of input, expected a value"),
    ("1 +\n\n  (2 +   \n  ", "calculation: syntax error at line 3, column 7: "
                             "unexpected end of input, expected a value"),
    ("new.<", "calculation: syntax error at line 1, column 5: unexpected '<', expected a field name"),
    ("new.a < 1 < 2", "calculation: syntax error at line 1, column 11: "
                      "unexpected '<': comparisons do not chain, join them with AND"),
])
def test_a_syntax_error_names_the_place_and_what_could_come_there(text, message):
    assert syntax_error_of(text) == message


@pytest.mark.parametrize("text", ["(< 1", "< 1", "NOT < 1", "1 + < 2"])
def test_a_comparison_where_a_value_belongs_is_not_called_a_chain(text):
    """A misplaced '<' after an operator or '(' is a missing value, not a chained comparison."""
    message = syntax_error_of(text)
    assert message.endswith("unexpected '<', expected a value"), message


def test_a_unicode_escape_reads_all_four_hex_digits():
    assert value_of('"\\u20ac"') == "€"
    assert value_of('new.sign == "\\u20AC"', {"sign": "€"}) is True


def test_a_field_is_one_level_deep_like_a_literal():
    assert value_of("-" * 99 + "new.a", {"a": 2}) == -2.0


def test_a_scope_alone_is_not_a_map_field():
    with pytest.raises(MockError) as raised:
        check("new.tier == 1", {"new": "map"})
    assert raised.value.message == "calculation: unknown field 'new.tier' at line 1, column 1"
