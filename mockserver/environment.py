"""Every ``m3ter-mock serve`` flag from an environment variable, for containers and CI.

The variable of ``--max-body-bytes`` is ``M3TER_MOCK_MAX_BODY_BYTES``: ``M3TER_MOCK_`` and the
flag's name in capitals with ``_`` for ``-`` (``--client``'s is ``M3TER_MOCK_CLIENTS``, the
name it had first). A flag given on the command line wins over its variable, for repeatable
flags too (the variable's values are then not used); an empty variable counts as unset. A
variable's value is checked as the flag's would be, and a bad one is refused naming the
variable. A new flag gets its variable without any change here."""

from __future__ import annotations

import argparse
import re
from typing import Mapping

PREFIX = "M3TER_MOCK_"
# Names older than this module.
NAMES = {"--client": "M3TER_MOCK_CLIENTS"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# Repeatable values in one variable: separated by whitespace, or by ``,`` (``;`` for clients,
# whose values hold commas, as M3TER_MOCK_CLIENTS always took them).
_SEPARATORS = {"--client": re.compile(r"[\s;]+")}
_LIST_SEPARATOR = re.compile(r"[\s,]+")


class _Unset:
    def __repr__(self) -> str:
        return "<from the environment>"


_UNSET = _Unset()


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if a.option_strings and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


def _flag(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def variable_for(action: argparse.Action) -> str:
    flag = _flag(action)
    return NAMES.get(flag) or PREFIX + flag.lstrip("-").upper().replace("-", "_")


def _repeatable(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction)


def document(parser: argparse.ArgumentParser) -> None:
    """Names each option's variable in its ``--help`` line."""
    for action in _options(parser):
        variable = variable_for(action)
        if action.help and "%(default)s" in action.help:
            # Filled in now: while parsing (when --help prints) the defaults are markers.
            action.help = action.help.replace("%(default)s", str(action.default))
        if action.help is not argparse.SUPPRESS and variable not in (action.help or ""):
            action.help = f"{action.help} [{variable}]" if action.help else f"[{variable}]"


def parse_args(parser: argparse.ArgumentParser, serve: argparse.ArgumentParser, argv,
               environ: Mapping[str, str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``; for the ``serve`` command, each of ``serve``'s options
    that the command line left out is taken from its variable, or else is its default.
    A ValueError names the variable whose value is bad."""
    actions = _options(serve)
    defaults = {action: action.default for action in actions}
    # argparse cannot tell a default from a flag given with the default's value, so the
    # defaults are swapped for markers while parsing (None for a repeatable flag: argparse
    # starts a given one's list from its default).
    for action in actions:
        action.default = None if _repeatable(action) else _UNSET
    try:
        args = parser.parse_args(argv)
    finally:
        for action, default in defaults.items():
            action.default = default
    if getattr(args, "command", None) != "serve":
        return args
    for action in actions:
        value = getattr(args, action.dest, _UNSET)
        if value is not _UNSET and value is not None:
            continue  # given on the command line
        raw = environ.get(variable_for(action), "").strip()
        if raw:
            value = _from_variable(action, raw)
        else:
            default = defaults[action]
            value = list(default) if isinstance(default, list) else default
        setattr(args, action.dest, value)
    return args


def _from_variable(action: argparse.Action, raw: str):
    variable = variable_for(action)
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        word = raw.lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(f"{variable}: {raw!r} is not a yes or no (1/0, true/false, yes/no, on/off)")
        return action.const if word in _TRUE else not action.const
    if _repeatable(action):
        separator = _SEPARATORS.get(_flag(action), _LIST_SEPARATOR)
        return [_convert(action, variable, item) for item in separator.split(raw) if item]
    return _convert(action, variable, raw)


def _convert(action: argparse.Action, variable: str, text: str):
    value = text
    if action.type is not None:
        try:
            value = action.type(text)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"{variable}: {exc}") from None
        except (TypeError, ValueError):
            kind = getattr(action.type, "__name__", "a")
            raise ValueError(f"{variable}: {text!r} is not a valid {kind} value") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"{variable}: {text!r} is not one of {', '.join(map(str, action.choices))}")
    return value
