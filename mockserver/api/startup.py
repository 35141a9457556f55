"""Work the libraries do at start-up that the mock does not need done, or done that slowly.

* Flask URL rules that build their URL-building code only when a URL is first built. Werkzeug
  compiles two URL builders for every rule as it is added (Python source generated, parsed and
  compiled), for ``url_for``. The mock registers a rule per operation of the whole m3ter API and
  never builds a URL from one, so that work was a measured share of start-up for nothing.
  Matching a request against the rules is unchanged.
* Connexion deep-copies each spec several times as it loads it (``copy.deepcopy``, which
  tracks every node in Python). A spec is plain JSON data, which pickle copies alike, in C:
  ``faster_spec_copies`` makes Connexion's spec modules copy that way.
"""

from __future__ import annotations

import pickle
from types import SimpleNamespace

from werkzeug.routing import Rule


def copy_plain_data(value):
    """A deep copy of JSON-like data (shared parts stay shared, as with ``copy.deepcopy``)."""
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


def faster_spec_copies() -> None:
    from connexion import json_schema, spec

    spec.copy = SimpleNamespace(deepcopy=copy_plain_data)
    json_schema.deepcopy = copy_plain_data


class LazyBuildRule(Rule):
    def _compile_builder(self, append_unknown: bool = True):
        compiled = None

        def build(rule, *args, **kwargs):
            nonlocal compiled
            if compiled is None:
                compiled = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            return compiled(*args, **kwargs)

        return build
