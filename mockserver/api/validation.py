"""Request-body validation messages that name the field.

Connexion reports the first schema error it meets; for a body that is one of several
shapes (a schedule is OPERATIONAL or USAGE, a destination S3 or GCS) that is "... is not
valid under any of the given schemas", which names nothing. These validators pick the
shape the client evidently meant (the branch with the fewest errors) and report its
error as ``<field path>: <reason>``. A body that is not UTF-8 is a 400, not a crash.
"""

from __future__ import annotations

import typing as t

from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import FormDataValidator, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError

# Connexion's format checker plus the integer formats: m3ter stores `format: int64` fields
# (every `version`) as Java longs and `int32` ones as ints, so a number outside the range
# is a 400 there; Python's integers would otherwise take any size.
FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checkers = dict(Draft4Validator.FORMAT_CHECKER.checkers)
for _name, _bits in (("int32", 32), ("int64", 64)):
    FORMAT_CHECKER.checks(_name)(
        lambda value, _bits=_bits: not isinstance(value, int) or -(2 ** (_bits - 1)) <= value < 2 ** (_bits - 1))


def _most_relevant(error: ValidationError) -> ValidationError:
    while error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        # Fewest errors first; on a tie, prefer the branch whose errors are not about a
        # discriminator value (an enum with a single value).
        best = min(branches.values(), key=lambda errs: (
            len(errs), sum(1 for e in errs if e.validator == "enum" and len(e.validator_value) == 1)))
        error = min(best, key=lambda e: len(e.path))
    return error


def describe(error: ValidationError) -> str:
    error = _most_relevant(error)
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        return f"{path}: {error.message}" if path else error.message
    if error.validator == "additionalProperties":
        return f"{path}: {error.message}" if path else error.message
    return f"{path}: {error.message}" if path else f"body: {error.message}"


class JSONBodyValidator(JSONRequestBodyValidator):
    @property
    def _validator(self):
        return Draft4RequestValidator(self._schema, format_checker=FORMAT_CHECKER)

    async def _parse(self, stream, scope):
        try:
            return await super()._parse(stream, scope)
        except UnicodeDecodeError:
            raise BadRequestProblem(detail="body: not valid UTF-8 JSON") from None

    def _validate(self, body: t.Any) -> t.Optional[dict]:
        if not self._nullable and body is None:
            raise BadRequestProblem(detail="body: a JSON body is required")
        errors = list(self._validator.iter_errors(body))
        if errors:
            raise BadRequestProblem(detail=describe(errors[0]))
        return None


class FormBodyValidator(FormDataValidator):
    @property
    def _validator(self):
        return Draft4RequestValidator(self._schema, format_checker=FORMAT_CHECKER)

    def _validate(self, body: t.Any) -> t.Optional[dict]:
        errors = list(self._validator.iter_errors(body))
        if errors:
            raise BadRequestProblem(detail=describe(errors[0]))
        return None


class NamedParameterValidator(ParameterValidator):
    """Query, path and header errors as ``<name>: <reason>`` on one line (Connexion's text is
    the whole multi-line schema dump, without the parameter's name)."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            return f"{param['name']}: required {parameter_type} parameter is missing" if param.get("required") else None
        schema = param.get("schema", param)
        error = next(Draft4Validator(schema, format_checker=FORMAT_CHECKER).iter_errors(value), None)
        return f"{param['name']}: {error.message}" if error else None


VALIDATOR_MAP = {
    "parameter": NamedParameterValidator,
    "body": {
        "application/json": JSONBodyValidator,
        "application/x-www-form-urlencoded": FormBodyValidator,
    }
}
