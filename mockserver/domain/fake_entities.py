"""A realistic value for an OpenAPI schema, made with Faker: what the lenient mode answers
for an id the organization does not hold (``mockserver/backend/lenient.py``).

The value is valid against the schema as far as a schema can be followed by generating: every
required field is there, enums, formats (``uuid``, ``date-time``, ``date``, ``email``,
``uri``/``url``), lengths, ranges, ``multipleOf`` and patterns are respected, ``allOf`` is
merged and one branch of a ``oneOf``/``anyOf`` chosen (with its discriminator value). A
schema's ``example`` is used when it has one and it fits. Beyond that, a field's name picks a
realistic kind of value (``emailAddress`` an address, ``currency`` a currency code, ``name`` a
name, ``...Id`` an id), and date pairs run forwards (``startDate`` before ``endDate``).

Everything random comes from the ``Faker`` given (its own ``random``), so a Faker seeded with
``seed_for(...)`` gives the same value every time. It is bounded: objects are followed
``MAX_DEPTH`` levels deep (past that, only required fields), arrays hold at most ``MAX_ITEMS``
items (more only when ``minItems`` asks), maps at most two entries.

Only plain data here: no web framework, no store.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import string
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

try:  # the parser behind ``re``: patterns are generated from their parsed form
    import re._parser as _sre_parse
    import re._constants as _sre
except ImportError:  # pragma: no cover - Python before 3.11 (the package needs 3.11)
    import sre_constants as _sre
    import sre_parse as _sre_parse

MAX_DEPTH = 6
MAX_ITEMS = 3
MAX_MAP_ENTRIES = 2
# Dates and times fall in this window: fixed, so a value does not depend on the day it is made.
WINDOW_START = date(2024, 1, 1)
WINDOW_DAYS = 730
_PATTERN_ATTEMPTS = 40
_REPEAT_SPAN = 8  # an unbounded repeat (``*``, ``+``) repeats at most this many times past its minimum
_NICE = string.ascii_letters + string.digits
_PAIRS = (("start", "end"), ("Start", "End"), ("from", "to"), ("dtCreated", "dtLastModified"),
          ("dtStarted", "dtCompleted"))


def seed_for(*parts: str) -> int:
    """A seed for ``Faker.seed_instance`` from the parts that name a value (organization,
    collection, id): stable across processes and Python versions, unlike ``hash()``."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def fake_value(schema: Any, faker, schemas: dict | None = None, *, name: str | None = None) -> Any:
    """A value for ``schema``; ``schemas`` resolves ``#/components/schemas/...`` references;
    ``name`` is the property the value is for, when there is one."""
    return _Generator(schemas or {}, faker).value(schema, name, 0)


def fake_entity(schema: Any, faker, schemas: dict | None = None, **fixed: Any) -> dict:
    """An object for ``schema`` with the ``fixed`` fields set as given (the id asked for...)."""
    value = fake_value(schema, faker, schemas)
    if not isinstance(value, dict):
        raise ValueError("the schema does not describe an object")
    value.update(fixed)
    return value


class _Generator:
    def __init__(self, schemas: dict, faker):
        self.schemas = schemas
        self.faker = faker
        self.random = faker.random

    # -- schemas -------------------------------------------------------------------------
    def resolve(self, schema: Any) -> dict:
        seen = set()
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen or not ref.startswith("#/components/schemas/"):
                return {}
            seen.add(ref)
            schema = self.schemas.get(ref.rsplit("/", 1)[-1], {})  # pragma: no mutate  any maxsplit leaves the same last piece
        return schema if isinstance(schema, dict) else {}

    def merged(self, schema: Any, _depth: int = 0) -> dict:  # pragma: no mutate  the guard's exact depth merges alike
        """The schema with its ``allOf`` parts merged in: properties side by side (a property
        in two parts keeps both sets of constraints), ``required`` joined, other keywords
        from the last part that has them."""
        schema = self.resolve(schema)
        if "allOf" not in schema or _depth > 20:  # pragma: no mutate  as above: only a cycle reaches the bound
            return schema
        result: dict = {}
        for part in list(schema["allOf"]) + [{k: v for k, v in schema.items() if k != "allOf"}]:
            part = self.merged(part, _depth + 1)
            for key, value in part.items():
                if key == "properties":
                    properties = result.setdefault("properties", {})
                    for prop, sub in value.items():
                        properties[prop] = {"allOf": [properties[prop], sub]} if prop in properties else sub
                elif key == "required":
                    result["required"] = list(dict.fromkeys(list(result.get("required", ())) + list(value)))
                else:
                    result[key] = value
        return result

    # -- values --------------------------------------------------------------------------
    def value(self, schema: Any, name: str | None, depth: int) -> Any:
        schema = self.merged(schema)
        for keyword in ("oneOf", "anyOf"):
            if schema.get(keyword):
                return self.choice(schema, keyword, name, depth)
        example = schema.get("example")
        if example is not None and not isinstance(example, (dict, list)) and self.fits(example, schema):
            return example
        if "enum" in schema and schema["enum"]:
            options = [v for v in schema["enum"] if v is not None] or schema["enum"]
            return self.random.choice(options)
        kind = schema.get("type")
        if kind is None:
            kind = "object" if "properties" in schema or "additionalProperties" in schema else (
                "array" if "items" in schema else "string")
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind == "integer":
            return self.number(schema, name, integer=True)
        if kind == "number":
            return self.number(schema, name, integer=False)
        if kind == "boolean":
            return self.random.random() < 0.5
        return self.string(schema, name)

    def choice(self, schema: dict, keyword: str, name: str | None, depth: int) -> Any:
        branches = schema[keyword]
        index = self.random.randrange(len(branches))
        branch = branches[index]
        rest = {k: v for k, v in schema.items() if k not in (keyword, "discriminator")}
        value = self.value({"allOf": [rest, branch]} if rest.get("properties") or rest.get("required") else branch,
                           name, depth)
        discriminator = schema.get("discriminator") or {}
        field = discriminator.get("propertyName")
        if field and isinstance(value, dict):
            target = branch.get("$ref") if isinstance(branch, dict) else None
            tags = [tag for tag, ref in (discriminator.get("mapping") or {}).items() if ref == target]
            if tags:
                value[field] = tags[0]
            elif target:
                value[field] = target.rsplit("/", 1)[-1]
        return value

    def object(self, schema: dict, depth: int) -> dict:
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        result: dict = {}
        for prop, sub in properties.items():
            if self.resolve(sub).get("writeOnly") or (depth >= MAX_DEPTH and prop not in required):
                continue
            result[prop] = self.value(sub, prop, depth + 1)
        example = schema.get("example")
        if isinstance(example, dict):  # its values where they fit: realistic, and the spec's own
            for prop, sample in example.items():
                if prop in result and self.fits(sample, self.merged(properties[prop])):
                    result[prop] = copy.deepcopy(sample)
        for prop in sorted(required - set(properties)):
            result[prop] = self.faker.word()  # required yet undescribed: any value will do
        extra = schema.get("additionalProperties")
        if not properties and extra not in (None, False) and depth < MAX_DEPTH:
            entry_schema = extra if isinstance(extra, dict) else {"type": "string"}
            for _ in range(self.random.randint(1, MAX_MAP_ENTRIES)):
                result[self.faker.word()] = self.value(entry_schema, None, depth + 1)
        _order_pairs(result)
        return result

    def array(self, schema: dict, name: str | None, depth: int) -> list:
        low = int(schema.get("minItems", 0))
        high = max(low, min(int(schema.get("maxItems", MAX_ITEMS)), MAX_ITEMS))
        if depth >= MAX_DEPTH:
            high = low
        count = self.random.randint(max(low, 1 if high else 0), high) if high else 0
        item_name = name[:-1] if name and name.endswith("s") else name
        items = schema.get("items", {})
        options = self.merged(items).get("enum")
        if options:  # distinct values of the enum, as many as it has
            result = self.random.sample(list(options), min(count, len(options)))
            while len(result) < low and not schema.get("uniqueItems"):
                result.append(self.random.choice(options))
            return result
        result: list = []
        for _ in range(count * 8):  # room to skip duplicates: distinct items read as real data
            if len(result) == count:
                break
            item = self.value(items, item_name, depth + 1)
            if item not in result:
                result.append(item)
        while len(result) < low and not schema.get("uniqueItems"):
            result.append(self.value(items, item_name, depth + 1))
        return result

    def number(self, schema: dict, name: str | None, *, integer: bool) -> int | float:
        low, high = schema.get("minimum"), schema.get("maximum")
        exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        # OpenAPI 3.0 writes an exclusive bound as a flag on minimum/maximum; 3.1 as a number.
        if not isinstance(exclusive_low, bool) and isinstance(exclusive_low, (int, float)):
            low, exclusive_low = exclusive_low, True
        if not isinstance(exclusive_high, bool) and isinstance(exclusive_high, (int, float)):
            high, exclusive_high = exclusive_high, True
        if schema.get("format") == "int32":
            low = -(2 ** 31) if low is None else low
            high = 2 ** 31 - 1 if high is None else high
        span = 1000 if _is_amount(name) or not integer else 100
        if low is None:
            low = 0 if high is None or high >= span else high - span
        if high is None:
            high = low + span
        if high - low > span * 10:  # int32's whole range, say: a realistic value, not any value
            low = max(low, 0) if high >= 0 else low
            high = min(high, low + span)
        step = schema.get("multipleOf")
        if integer:
            first = math.floor(low) + 1 if exclusive_low or low != math.floor(low) else int(low)
            last = math.ceil(high) - 1 if exclusive_high or high != math.ceil(high) else int(high)
            if step:
                step = int(step)
                first = -(-first // step) * step
                last = last // step * step
                return self.random.randrange(first, last + 1, step) if last >= first else first
            return self.random.randint(first, max(first, last))
        if step:
            first, last = math.ceil(low / step), math.floor(high / step)
            multiple = self.random.randint(first, max(first, last))
            if exclusive_low and multiple * step <= low:
                multiple += 1
            return round(multiple * step, 10)
        value = round(self.random.uniform(low, high), 2)
        if exclusive_low and value <= low:
            value = round(low + min(0.01, (high - low) / 2), 10)
        if exclusive_high and value >= high:
            value = round(high - min(0.01, (high - low) / 2), 10)
        return value

    # -- strings -------------------------------------------------------------------------
    def string(self, schema: dict, name: str | None) -> str:
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        pattern = schema.get("pattern")
        candidate = self.formatted(schema.get("format"))
        if candidate is None:
            candidate = self.named(name)
        candidate = _fit_length(candidate, low, high, self.random)
        if pattern is None or _matches(pattern, candidate):
            return candidate
        generated = from_pattern(pattern, self.random, low, high)
        return generated if generated is not None else candidate

    def formatted(self, fmt: str | None) -> str | None:
        if fmt == "uuid":
            return str(self.faker.uuid4())
        if fmt == "date-time":
            moment = datetime.combine(self.day(), time(), timezone.utc) + timedelta(
                seconds=self.random.randrange(86400), milliseconds=self.random.randrange(1000))
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if fmt == "date":
            return self.day().isoformat()
        if fmt == "email":
            return self.faker.email()
        if fmt in ("uri", "url"):
            return self.faker.url().rstrip("/") + "/" + self.faker.uri_path()
        return None

    def day(self) -> date:
        return WINDOW_START + timedelta(days=self.random.randrange(WINDOW_DAYS))

    def named(self, name: str | None) -> str:
        """A realistic string for a field of that name."""
        faker, key = self.faker, (name or "").lower()
        if key in ("id", "uid") or (name or "").endswith(("Id", "ID")):
            return str(faker.uuid4())
        if key == "filename":
            return faker.file_name()
        if "email" in key:
            return faker.email()
        if key.endswith("url") or key.endswith("uri"):
            return faker.url()
        if "currency" in key:
            return faker.currency_code()
        if key == "firstname":
            return faker.first_name()
        if key == "lastname":
            return faker.last_name()
        if key in ("country", "countrycode"):
            return faker.country_code()
        if key == "locality" or key == "city":
            return faker.city()
        if key == "region":
            return faker.state()
        if key in ("postcode", "zipcode", "postalcode"):
            return faker.postcode()
        if key.startswith("addressline"):
            return faker.street_address()
        if key == "timezone":
            return faker.timezone()
        if "phone" in key or key == "contactnumber":
            return faker.phone_number()
        if key == "shortname" or key.endswith("code"):
            return "_".join(faker.words(2)).lower()
        if key.endswith("name"):  # name, displayName, organizationName, readableName...
            return faker.catch_phrase()
        if "description" in key or key in ("notes", "message"):
            return faker.sentence()
        if key in ("unit", "units"):
            return self.random.choice(("GB", "GB-hour", "request", "seat", "event", "minute"))
        if key.endswith("number") or key.endswith("reference"):
            return faker.bothify("??-#####").upper()
        if key.endswith("by"):  # createdBy, lastModifiedBy...
            return faker.user_name()
        return faker.word()

    def fits(self, value: Any, schema: dict) -> bool:
        """Whether an ``example`` satisfies the constraints a generated value would."""
        if "enum" in schema and value not in schema["enum"]:
            return False
        kinds = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
                 "array": list}
        wanted = kinds.get(schema.get("type"))
        if wanted is not None and (not isinstance(value, wanted) or (
                isinstance(value, bool) and schema.get("type") != "boolean")):
            return False
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
                return False
            return "pattern" not in schema or _matches(schema["pattern"], value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (schema.get("minimum") is None or value >= schema["minimum"]) and (
                schema.get("maximum") is None or value <= schema["maximum"])
        return value is not None


def _is_amount(name: str | None) -> bool:
    key = (name or "").lower()
    return any(word in key for word in ("amount", "price", "total", "charge", "spend", "cost", "fee"))


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # a pattern Python cannot read is not one the generator can follow


def _fit_length(value: str, low: int, high: int | None, random) -> str:
    if high is not None and len(value) > high:
        value = value[:high].rstrip() or value[:high]
    while len(value) < low:
        value += random.choice(string.ascii_lowercase)
    return value


def _order_pairs(entity: dict) -> None:
    """``startDate`` before ``endDate`` (and the like): swapped when generated the other way."""
    for key in list(entity):
        for first, second in _PAIRS:
            if first not in key:
                continue
            other = key.replace(first, second, 1)
            a, b = entity.get(key), entity.get(other)
            if other != key and isinstance(a, str) and isinstance(b, str) and len(a) == len(b) and a > b:
                entity[key], entity[other] = b, a


# -- strings from patterns ------------------------------------------------------------------

def from_pattern(pattern: str, random, min_length: int = 0, max_length: int | None = None) -> str | None:
    """A string that ``re.search(pattern, ...)`` accepts and whose length is within the
    bounds, or None when none was found in a few attempts (lookarounds are not followed,
    only checked)."""
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:
        return None
    for attempt in range(_PATTERN_ATTEMPTS):
        # Later attempts aim at the length bounds by repeating less (or more).
        span = _REPEAT_SPAN if attempt < _PATTERN_ATTEMPTS // 2 else 2
        try:
            text = "".join(_emit(parsed, random, span))
        except _Unsupported:
            return None
        if min_length <= len(text) <= (max_length if max_length is not None else len(text)) and _matches(pattern, text):
            return text
    return None


class _Unsupported(Exception):
    pass


def _emit(parsed, random, span: int):
    for op, arg in parsed:
        if op is _sre.LITERAL:
            yield chr(arg)
        elif op is _sre.NOT_LITERAL:
            yield _pick(lambda c: ord(c) != arg, random)
        elif op is _sre.ANY:
            yield random.choice(_NICE)
        elif op is _sre.IN:
            yield _from_set(arg, random)
        elif op is _sre.BRANCH:
            yield from _emit(random.choice(arg[1]), random, span)
        elif op is _sre.SUBPATTERN:
            yield from _emit(arg[-1], random, span)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            low, high, inner = arg
            high = low + span if high is _sre.MAXREPEAT else min(high, low + span)
            for _ in range(random.randint(low, high)):
                yield from _emit(inner, random, span)
        elif op is getattr(_sre, "ATOMIC_GROUP", None):
            yield from _emit(arg, random, span)
        elif op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            continue  # anchors and lookarounds: checked on the result, not generated
        else:
            raise _Unsupported(str(op))


def _in_set(char: str, items) -> bool:
    code = ord(char)
    for op, arg in items:
        if op is _sre.LITERAL and code == arg:
            return True
        if op is _sre.RANGE and arg[0] <= code <= arg[1]:
            return True
        if op is _sre.CATEGORY and _in_category(char, arg):
            return True
    return False


def _in_category(char: str, category) -> bool:
    checks = {
        _sre.CATEGORY_DIGIT: str.isdigit, _sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdigit(),
        _sre.CATEGORY_SPACE: str.isspace, _sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
        _sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
        _sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    }
    check = checks.get(category)
    return bool(check and check(char))


def _from_set(items, random) -> str:
    if items and items[0][0] is _sre.NEGATE:
        rest = items[1:]
        return _pick(lambda c: not _in_set(c, rest), random)
    op, arg = random.choice(items)
    if op is _sre.LITERAL:
        return chr(arg)
    if op is _sre.RANGE:
        low, high = arg
        # Mostly letters and digits inside a wide range: realistic, and never a control character.
        nice = [c for c in _NICE if low <= ord(c) <= high]
        return random.choice(nice) if nice and random.random() < 0.9 else chr(random.randint(low, high))
    return _pick(lambda c: _in_set(c, [(op, arg)]), random)


def _pick(accept, random) -> str:
    for pool in (_NICE, string.punctuation, " "):  # pragma: no mutate  "X" of a changed " " is in _NICE, refused already
        options = [c for c in pool if accept(c)]
        if options:
            return random.choice(options)
    raise _Unsupported("no printable character fits")
