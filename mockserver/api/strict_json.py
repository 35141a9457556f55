"""Strict JSON for request bodies: only what m3ter can hold.

No ``NaN``/``Infinity``, no number beyond a 64-bit float, no lone surrogate (``"\\ud800"``)
in any string or property name, nesting no deeper than the configured depth (checked on the
raw bytes, before the parser recurses). Each is a 400 naming the field; a charset other
than UTF-8 is a 415. A body is never handed on half-parsed.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import sys
import typing as t

from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem

ECHO_LIMIT = 60  # characters of a value a message may quote

class _Rejected:
    """Stands in, during parsing, for a value JSON allows but m3ter cannot hold."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_FLOAT_INT = int(sys.float_info.max)
_MAX_FLOAT_DIGITS = len(str(_MAX_FLOAT_INT))


def nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether arrays/objects in the JSON text ``raw`` nest deeper than ``limit``, without
    parsing it: brackets inside strings are dropped, then innermost pairs are peeled off one
    level at a time. Linear in ``len(raw)`` per level; most bodies stop at the first count."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(_BRACES_AS_BRACKETS, _ALL_BUT_BRACKETS)
    run = b"[" * (limit + 1)
    for _ in range(limit):
        if run in brackets:
            return True
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            return False  # only unmatched brackets remain: the parser refuses the text
        brackets = peeled
    return b"[]" in brackets


def _needs_number_hooks(raw: bytes) -> bool:
    # Only a run of ~300 digits or a 3-digit exponent can leave a 64-bit float's range.
    digits = raw.translate(_DIGITS_AS_ZERO)
    return b"0" * (_MAX_FLOAT_DIGITS - 9) in digits or b"e000" in digits or b"e+000" in digits


def clip(text: str) -> str:
    return text if len(text) <= ECHO_LIMIT else text[:ECHO_LIMIT - 1] + "…"


def _number_hooks(rejected: list) -> dict:
    """Parser hooks that put a ``_Rejected`` where m3ter could not hold the number, and note
    that they did (so the body is walked for the field only then)."""

    def reject(reason: str) -> _Rejected:
        rejected.append(reason)
        return _Rejected(reason)

    def parse_int(text: str):
        digits = len(text) - text.startswith("-")
        if digits >= _MAX_FLOAT_DIGITS and (digits > _MAX_FLOAT_DIGITS or abs(int(text)) > _MAX_FLOAT_INT):
            return reject(f"{clip(text)} ({digits} digits) is out of range: a number must fit a 64-bit float")
        return int(text)

    def parse_float(text: str):
        value = float(text)
        if math.isinf(value):
            return reject(f"{clip(text)} is out of range: a number must fit a 64-bit float")
        return value

    def parse_constant(name: str):
        return reject(f"{name} is not a JSON number")

    return {"parse_int": parse_int, "parse_float": parse_float, "parse_constant": parse_constant}


def _locate(root: t.Any, bad: t.Callable[[t.Any], bool]) -> list | None:
    """The path to the first value (or property name) in ``root`` for which ``bad`` holds.
    Iterative: the depth is bounded already, but a walk should not recurse on input."""
    if bad(root):
        return []
    if not isinstance(root, (dict, list)):
        return None
    path: list = []
    stack = [iter(root.items() if isinstance(root, dict) else enumerate(root))]
    while stack:
        for key, value in stack[-1]:
            if bad(key) or bad(value):
                return path + [key]
            if isinstance(value, (dict, list)) and value:
                path.append(key)
                stack.append(iter(value.items() if isinstance(value, dict) else enumerate(value)))
                break
        else:
            stack.pop()
            if path:
                path.pop()
    return None


def printable(part: t.Any) -> str:
    return str(part).encode("utf-8", "backslashreplace").decode("utf-8")


def _field(path: list) -> str:
    return ".".join(printable(p) for p in path) or "body"


def _at(body: t.Any, path: list) -> t.Any:
    for part in path:
        body = body[part]
    return body


def _has_surrogate(value: t.Any) -> bool:
    return isinstance(value, str) and _SURROGATE.search(value) is not None


def parse_json(raw: bytes, encoding: str, max_depth: int) -> t.Any:
    """The JSON body in ``raw``, or a 400 (415 for a charset other than UTF-8) saying what
    is wrong and where. Never a half-parsed body."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        codec = None
    if codec not in ("utf-8", "ascii"):
        # JSON between systems is UTF-8 (RFC 8259), and the handler reads it as such.
        raise UnsupportedMediaTypeProblem(detail=f"Content-Type: charset {clip(repr(encoding))} is not "
                                                 "supported; send UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestProblem(detail="body: not valid UTF-8 JSON") from None
    if not text:
        return None
    if nesting_exceeds(raw, max_depth):
        raise BadRequestProblem(detail=f"body: JSON nested deeper than {max_depth} levels")
    rejected: list[str] = []
    hooks = _number_hooks(rejected)
    if not _needs_number_hooks(raw):
        # The C parser's own number parsing is much faster; these cannot go out of range.
        del hooks["parse_int"], hooks["parse_float"]
    try:
        body = json.loads(text, **hooks)
    except json.JSONDecodeError as error:
        raise BadRequestProblem(detail=f"body: not valid JSON: {error.msg} (line {error.lineno}, "
                                       f"column {error.colno})") from None
    except RecursionError:  # a second line of defence; the depth check comes first
        raise BadRequestProblem(detail=f"body: JSON nested deeper than {max_depth} levels") from None
    except ValueError as error:  # a number Python will not convert
        raise BadRequestProblem(detail=f"body: a number is out of range ({clip(str(error))})") from None
    if rejected:
        path = _locate(body, lambda value: isinstance(value, _Rejected)) or []
        raise BadRequestProblem(detail=f"{_field(path)}: {rejected[0] if not path else _at(body, path).reason}")
    if _ESCAPED_SURROGATE.search(raw):
        path = _locate(body, _has_surrogate)
        if path is not None:
            what = "a property name" if path and _has_surrogate(path[-1]) else "a string"
            raise BadRequestProblem(detail=f"{_field(path)}: {what} with a lone surrogate (\\ud800-\\udfff) "
                                           "is not valid Unicode")
    return body
