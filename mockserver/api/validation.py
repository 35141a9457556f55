"""Request bodies: strict JSON (``strict_json``), then validation that stops at the first
error and names the field. A body without ``Content-Type`` is a 415.

Validation is Connexion's Draft 4 with OpenAPI ``nullable``, made cheap for hostile bodies:

* only the first error is taken, and ``oneOf``/``anyOf`` collect at most a few errors per
  branch (jsonschema collects every error of every branch: 100,000 bad items meant
  100,000 errors, twice);
* a long array (or object with many additional properties) is checked in bulk by
  jsonschema-rs against a translation of the same subschema, in which ``pattern`` and
  ``format`` still run Python's checks, so the decision is the same; only the items it
  rejects are described by the Python validator, so messages are as before;
* no message echoes a long value or any container in full, nor any value under a
  secret-bearing field (``secret``, ``apiKey``, ``password``...): ``(value hidden)``.

For a body that is one of several shapes (a schedule is OPERATIONAL or USAGE, a destination
S3 or GCS) the error reported is that of the shape the client evidently meant (the branch
whose discriminator value it sent, else the one with the fewest errors) as
``<field path>: <reason>``.
"""

from __future__ import annotations

import re
import typing as t
from itertools import islice

from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import FormDataValidator, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from jsonschema._utils import ensure_list, equal, extras_msg, find_additional_properties, uniq
from jsonschema.validators import extend
from starlette.datastructures import Headers

from .limits import BodyTooLarge, limits_of
from .strict_json import ECHO_LIMIT, clip, parse_json, printable

try:
    import jsonschema_rs
except ImportError:  # a runtime dependency; without it long arrays are validated in Python
    jsonschema_rs = None

# Connexion's format checker plus the integer formats: m3ter stores `format: int64` fields
# (every `version`) as Java longs and `int32` ones as ints, so a number outside the range
# is a 400 there; Python's integers would otherwise take any size.
FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checkers = dict(Draft4Validator.FORMAT_CHECKER.checkers)
# Draft 4 knows no `date`; m3ter's spec uses it for dates without a time (`2024-09-30`).
FORMAT_CHECKER.checkers["date"] = FormatChecker().checkers["date"]
for _name, _bits in (("int32", 32), ("int64", 64)):
    FORMAT_CHECKER.checks(_name)(
        lambda value, _bits=_bits: not isinstance(value, int) or -(2 ** (_bits - 1)) <= value < 2 ** (_bits - 1))

MESSAGE_LIMIT = 300  # characters of a reason, after the field path
BRANCH_ERRORS = 10  # errors gathered per oneOf/anyOf branch to pick the meant one
BULK = 32  # arrays (and objects) longer than this are checked in bulk


# -- validation -------------------------------------------------------------------------

def _nullable(schema: dict) -> bool:
    return schema.get("x-nullable") is True or bool(schema.get("nullable"))


def _short_repr(value: t.Any, budget: int) -> str | None:
    """``repr(value)`` if it is at most ``budget`` characters, else None; never builds more
    than that (a small object may hold a huge array)."""
    if isinstance(value, (list, dict)):
        if len(value) > 8:
            return None
        parts, used = [], 2
        pairs = value.items() if isinstance(value, dict) else ((None, item) for item in value)
        for key, item in pairs:
            text = _short_repr(item, budget - used)
            if text is None:
                return None
            if isinstance(value, dict):
                text = f"{_short_repr(key, budget) or repr(key)[:budget + 1]}: {text}"
            parts.append(text)
            used += len(text) + 2
            if used > budget + 2:
                return None
        text = ", ".join(parts)
        return f"{{{text}}}" if isinstance(value, dict) else f"[{text}]"
    if isinstance(value, str) and len(value) > budget:
        return None
    text = repr(value)
    return text if len(text) <= budget else None


def _echo(value: t.Any) -> str:
    """``value`` as a message may quote it: short reprs as they are, long ones cut, big
    containers by their size only."""
    text = _short_repr(value, ECHO_LIMIT)
    if text is not None:
        return text
    count = len(value) if isinstance(value, (list, dict)) else 0
    if isinstance(value, list):
        return f"[... {count} item{'s' * (count != 1)} ...]"
    if isinstance(value, dict):
        return f"{{... {count} propert{'ies' if count != 1 else 'y'} ...}}"
    if isinstance(value, str):
        return repr(value[:ECHO_LIMIT])[:ECHO_LIMIT - 1] + "…"
    return clip(repr(value))


def _type(validator, types, instance, schema):
    if instance is None and _nullable(schema):
        return
    types = ensure_list(types)
    if not any(validator.is_type(instance, type_) for type_ in types):
        yield ValidationError(f"{_echo(instance)} is not of type {', '.join(repr(type_) for type_ in types)}")


def _enum(validator, enums, instance, schema):
    if instance is None and _nullable(schema):
        return
    if all(not equal(each, instance) for each in enums):
        yield ValidationError(f"{_echo(instance)} is not one of {enums!r}")


def _min_items(validator, limit, instance, schema):
    if validator.is_type(instance, "array") and len(instance) < limit:
        yield ValidationError(f"{_echo(instance)} {'should be non-empty' if limit == 1 else 'is too short'}")


def _max_items(validator, limit, instance, schema):
    if validator.is_type(instance, "array") and len(instance) > limit:
        yield ValidationError(f"{_echo(instance)} {'is expected to be empty' if limit == 0 else 'is too long'}")


def _unique_items(validator, unique, instance, schema):
    if not unique or not validator.is_type(instance, "array"):
        return
    try:
        # As jsonschema compares: 1 and 1.0 are equal, True and 1 are not.
        duplicates = len({("bool", item) if type(item) is bool else item for item in instance}) != len(instance)
    except TypeError:  # arrays or objects among the items
        duplicates = not uniq(instance)
    if duplicates:
        yield ValidationError(f"{_echo(instance)} has non-unique elements")


def _discriminator_errors(validator, subschema, instance, index) -> list[ValidationError] | None:
    """A branch whose discriminator (a property with a one-value enum, in the branch or one
    of its ``allOf`` parts) the body contradicts is invalid whatever else it holds: its
    error is that property's alone, and the rest of the body is not validated against it."""
    if not isinstance(instance, dict) or not isinstance(subschema, dict):
        return None
    parts = [subschema, *(p for p in subschema.get("allOf", ()) if isinstance(p, dict))]
    for part in parts:
        for name, prop in (part.get("properties") or {}).items():
            enum = prop.get("enum") if isinstance(prop, dict) else None
            if enum and len(enum) == 1 and name in instance and not equal(instance[name], enum[0]):
                found = list(validator.descend(instance[name], prop, path=name, schema_path=index))
                if found:
                    return found
    return None


def _branch_errors(validator, branches, instance):
    """Up to ``BRANCH_ERRORS`` errors per branch, stopping at the first valid branch."""
    errors: list[ValidationError] = []
    for index, subschema in enumerate(branches):
        found = _discriminator_errors(validator, subschema, instance, index)
        if found is None:
            found = list(islice(validator.descend(instance, subschema, schema_path=index), BRANCH_ERRORS))
        if not found:
            return index, errors
        errors.extend(found)
    return None, errors


def _any_of(validator, any_of, instance, schema):
    valid, errors = _branch_errors(validator, any_of, instance)
    if valid is None:
        yield ValidationError(f"{_echo(instance)} is not valid under any of the given schemas", context=errors)


def _one_of(validator, one_of, instance, schema):
    valid, errors = _branch_errors(validator, one_of, instance)
    if valid is None:
        yield ValidationError(f"{_echo(instance)} is not valid under any of the given schemas", context=errors)
        return
    also = [index for index in range(valid + 1, len(one_of))
            if _discriminator_errors(validator, one_of[index], instance, index) is None
            and validator.evolve(schema=one_of[index]).is_valid(instance)]
    if also:
        yield ValidationError(f"{_echo(instance)} is valid under each of branches "
                              f"{', '.join(str(i) for i in [valid, *also])}")


_DRAFT4_ITEMS = Draft4Validator.VALIDATORS["items"]
_DRAFT4_ADDITIONAL = Draft4Validator.VALIDATORS["additionalProperties"]


def _items(validator, items, instance, schema):
    if not validator.is_type(instance, "array"):
        return
    if isinstance(items, dict) and len(instance) > BULK:
        yield from _bulk_errors(validator, items, instance, None, instance)
        return
    yield from _DRAFT4_ITEMS(validator, items, instance, schema)


def _extras(instance: dict, schema: dict) -> list:
    if "patternProperties" in schema:
        return list(find_additional_properties(instance, schema))
    known = schema.get("properties") or {}
    return [key for key in instance if key not in known]


def _additional_properties(validator, additional, instance, schema):
    if isinstance(additional, dict) and validator.is_type(instance, "object") and len(instance) > BULK:
        extras = _extras(instance, schema)
        if len(extras) > BULK:
            yield from _bulk_errors(validator, additional, instance, extras, [instance[key] for key in extras])
            return
    if additional is False and validator.is_type(instance, "object") and len(instance) > BULK:
        extras = _extras(instance, schema)
        if len(extras) > 8 and "patternProperties" not in schema:
            shown = extras_msg(sorted(extras[:8], key=str))[0]
            yield ValidationError(f"Additional properties are not allowed ({clip(shown)}, ... "
                                  f"{len(extras)} in all were unexpected)")
            return
    yield from _DRAFT4_ADDITIONAL(validator, additional, instance, schema)


def _bulk_errors(validator, subschema, container, keys, values):
    """The errors of ``values`` (``container[key]`` for each of ``keys``; the array's items
    when ``keys`` is None) against ``subschema``: jsonschema-rs finds the first invalid one,
    Python describes it, and the search goes on after it (lazily: the caller takes the
    first few)."""
    checker = bulk_checker(subschema)
    start = 0
    while start < len(values) and checker is not None:
        index = checker.first_invalid(values, start)
        if index is None:
            return
        if index < 0:
            break  # jsonschema-rs cannot say: Python checks the rest
        key = index if keys is None else keys[index]
        yield from validator.descend(container[key], subschema, path=key)
        start = index + 1
    for index in range(start, len(values)):
        key = index if keys is None else keys[index]
        yield from validator.descend(container[key], subschema, path=key)


MockRequestValidator = extend(Draft4RequestValidator, {
    "type": _type, "enum": _enum, "minItems": _min_items, "maxItems": _max_items,
    "uniqueItems": _unique_items, "anyOf": _any_of, "oneOf": _one_of, "items": _items,
    "additionalProperties": _additional_properties,
})


# -- jsonschema-rs, for the bulk of long arrays -------------------------------------------

class _NotTranslatable(Exception):
    pass


class _PythonPattern:
    """``pattern`` with Python's ``re``, so the bulk check agrees with the Python validator."""

    def __init__(self, parent_schema, value, schema_path):
        self.regex = re.compile(value)

    def validate(self, instance):
        if isinstance(instance, str) and not self.regex.search(instance):
            raise ValueError("does not match the pattern")


class _PythonFormat:
    """``format`` with the Python validator's checker (int32/int64 ranges included)."""

    def __init__(self, parent_schema, value, schema_path):
        self.format = value

    def validate(self, instance):
        if not FORMAT_CHECKER.conforms(instance, self.format):
            raise ValueError(f"is not a {self.format!r}")


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_VALUES = ("items", "additionalItems", "additionalProperties", "not", "allOf", "anyOf", "oneOf")
_IGNORED = ("example", "description", "discriminator", "readOnly", "writeOnly", "title", "default",
            "nullable", "x-nullable", "deprecated", "externalDocs", "xml")
_PLAIN = ("type", "enum", "required", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
          "multipleOf", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties",
          "maxProperties")


def _translate(node: t.Any) -> t.Any:
    """A Draft 4 schema for jsonschema-rs that decides as the Python validator does:
    ``nullable`` spelled as a ``null`` type/enum value, ``pattern`` and ``format`` run by
    Python. Anything else it does not know makes the subschema Python's alone."""
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        raise _NotTranslatable(repr(node)[:40])
    out: dict = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS:
            out[key] = {name: _translate(sub) for name, sub in value.items()}
        elif key in _SCHEMA_VALUES:
            out[key] = [_translate(sub) for sub in value] if isinstance(value, list) else _translate(value)
        elif key == "pattern":
            out["x-mock-pattern"] = value
        elif key == "format":
            out["x-mock-format"] = value
        elif key in _PLAIN:
            out[key] = value
        elif key in _IGNORED or key.startswith("x-"):
            continue
        else:
            raise _NotTranslatable(key)
    if _nullable(node):
        if "type" in out and "null" not in ensure_list(out["type"]):
            out["type"] = [*ensure_list(out["type"]), "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


class _BulkChecker:
    def __init__(self, subschema: dict):
        self.validator = jsonschema_rs.Draft4Validator(
            {"type": "array", "items": _translate(subschema)},
            keywords={"x-mock-pattern": _PythonPattern, "x-mock-format": _PythonFormat})

    def first_invalid(self, values: list, start: int) -> int | None:
        """The index of the first invalid value from ``start`` on, None if all are valid,
        -1 if jsonschema-rs cannot tell (a value it cannot read). Looks in growing slices,
        so finding the next error costs about the distance to it, not the rest's length."""
        size = 64
        while start < len(values):
            chunk = values[start:start + size]
            try:
                self.validator.validate(chunk)
            except jsonschema_rs.ValidationError as error:
                path = list(error.instance_path)
                return start + path[0] if path and isinstance(path[0], int) else -1
            except Exception:  # noqa: BLE001 - anything it cannot convert: let Python decide
                return -1
            start += len(chunk)
            size *= 4
        return None


_BULK_CHECKERS: dict[int, tuple[dict, t.Any]] = {}
_VALIDATORS: dict[int, tuple[dict, t.Any]] = {}
_PARAMETER_VALIDATORS: dict[int, tuple[dict, t.Any]] = {}


def _once_per_schema(cache: dict, schema: dict, build: t.Callable[[dict], t.Any]) -> t.Any:
    """What ``build`` makes of ``schema``, made once for the app's life: building a validator
    per request was a measured share of every request's cost. Keyed by identity (Connexion
    hands each operation's resolved schema over on every request); the entry keeps the schema
    alive so that its id is not reused."""
    entry = cache.get(id(schema))
    if entry is None or entry[0] is not schema:
        if len(cache) > 4096:
            cache.clear()
        entry = cache[id(schema)] = (schema, build(schema))
    return entry[1]


def _bulk_checker_of(subschema: dict) -> _BulkChecker | None:
    try:
        return _BulkChecker(subschema)
    except Exception:  # noqa: BLE001 - a schema it cannot take: Python validates alone
        return None


def bulk_checker(subschema: dict) -> _BulkChecker | None:
    if jsonschema_rs is None:
        return None
    return _once_per_schema(_BULK_CHECKERS, subschema, _bulk_checker_of)


def request_validator(schema: dict):
    return _once_per_schema(_VALIDATORS, schema, lambda s: MockRequestValidator(s, format_checker=FORMAT_CHECKER))


# -- messages ---------------------------------------------------------------------------

_SECRET_WORDS = ("secret", "password", "passwd", "apikey", "token", "credential", "privatekey", "authorization")


def is_secret_name(name: t.Any) -> bool:
    folded = str(name).lower().replace("_", "").replace("-", "")
    return any(word in folded for word in _SECRET_WORDS)


def _holds_secret(value: t.Any) -> bool:
    # Only small containers are ever quoted (see _echo); their walk is short.
    if isinstance(value, dict) and len(value) <= 8:
        return any(is_secret_name(k) or _holds_secret(v) for k, v in value.items())
    if isinstance(value, list) and len(value) <= 8:
        return any(_holds_secret(v) for v in value)
    return False


def _most_relevant(error: ValidationError) -> ValidationError:
    while error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        # The branch whose discriminator (an enum with a single value) the body matches,
        # then the one with the fewest errors.
        best = min(branches.values(), key=lambda errs: (
            sum(1 for e in errs if e.validator == "enum" and len(e.validator_value) == 1), len(errs)))
        error = min(best, key=lambda e: len(e.path))
    return error


def _reason(error: ValidationError, path: list) -> str:
    """The error's message with its quoted value cut short, or hidden under a secret field."""
    message, instance = error.message, error.instance
    hidden = any(is_secret_name(p) for p in path if isinstance(p, str)) or _holds_secret(instance)
    short = _echo(instance)
    quoted = short if message.startswith(short) else None
    if quoted is None and not isinstance(instance, (list, dict)):
        full = repr(instance)
        quoted = full if message.startswith(full) else None
    if quoted is not None:
        message = ("(value hidden)" if hidden else short) + message[len(quoted):]
    elif hidden and error.validator not in ("required", "additionalProperties"):
        message = f"(value hidden) is not valid ({error.validator})"
    return _clip_message(message)


def _clip_message(message: str) -> str:
    return message if len(message) <= MESSAGE_LIMIT else message[:MESSAGE_LIMIT - 1] + "…"


def describe(error: ValidationError) -> str:
    error = _most_relevant(error)
    path = list(error.absolute_path)
    reason = _reason(error, path)
    if path:
        return f"{_clip_message('.'.join(printable(p) for p in path))}: {reason}"
    if error.validator in ("required", "additionalProperties"):
        return reason
    return f"body: {reason}"


# -- the validators Connexion uses ------------------------------------------------------

class JSONBodyValidator(JSONRequestBodyValidator):
    @property
    def _validator(self):
        return request_validator(self._schema)

    async def wrap_receive(self, receive, *, scope):
        headers = Headers(scope=scope)
        try:
            has_body = int(headers.get("content-length") or 0) > 0
        except ValueError:
            has_body = True
        if has_body and "content-type" not in headers:
            # Connexion would take the body for the operation's first media type, and the
            # handler would then find no JSON body; m3ter answers 415.
            raise UnsupportedMediaTypeProblem(detail="Content-Type: application/json is required")
        # Connexion finds the charset only when no space precedes it ("a/b;charset=x").
        for parameter in headers.get("content-type", "").split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset":
                self._encoding = value.strip().strip('"')
        return await super().wrap_receive(receive, scope=scope)

    async def _parse(self, stream, scope):
        limits = limits_of(scope)
        chunks, size = [], 0
        async for chunk in stream:
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BodyTooLarge(limits.max_body_bytes)
            chunks.append(chunk)
        return parse_json(b"".join(chunks), self._encoding, limits.max_json_depth)

    def _validate(self, body: t.Any) -> t.Optional[dict]:
        if body is None and self._required and not self._nullable:
            raise BadRequestProblem(detail="body: a JSON body is required")
        if body is None and not self._required:
            return None  # an optional body left out
        error = next(self._validator.iter_errors(body), None)
        if error is not None:
            raise BadRequestProblem(detail=describe(error))
        return None


class FormBodyValidator(FormDataValidator):
    @property
    def _validator(self):
        return request_validator(self._schema)

    def _validate(self, body: t.Any) -> t.Optional[dict]:
        error = next(self._validator.iter_errors(body), None)
        if error is not None:
            raise BadRequestProblem(detail=describe(error))
        return None


def _parameter_validator(schema: dict) -> Draft4Validator:
    return _once_per_schema(_PARAMETER_VALIDATORS, schema, lambda s: Draft4Validator(s, format_checker=FORMAT_CHECKER))


class NamedParameterValidator(ParameterValidator):
    """Query, path and header errors as ``<name>: <reason>`` on one line (Connexion's text is
    the whole multi-line schema dump, without the parameter's name)."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            return f"{param['name']}: required {parameter_type} parameter is missing" if param.get("required") else None
        error = next(_parameter_validator(param.get("schema", param)).iter_errors(value), None)
        return f"{param['name']}: {_reason(error, [param['name'], *error.absolute_path])}" if error else None


VALIDATOR_MAP = {
    "parameter": NamedParameterValidator,
    "body": {
        "application/json": JSONBodyValidator,
        "application/x-www-form-urlencoded": FormBodyValidator,
    }
}
