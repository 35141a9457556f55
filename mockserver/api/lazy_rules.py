"""Flask URL rules that build their URL-building code only when a URL is first built.

Werkzeug compiles two URL builders for every rule as it is added (Python source generated,
parsed and compiled), for ``url_for``. The mock registers a rule per operation of the whole
m3ter API and never builds a URL from one, so that work was a measured share of start-up
for nothing. Matching a request against the rules is unchanged.
"""

from __future__ import annotations

from werkzeug.routing import Rule


class LazyBuildRule(Rule):
    def _compile_builder(self, append_unknown: bool = True):
        compiled = None

        def build(rule, *args, **kwargs):
            nonlocal compiled
            if compiled is None:
                compiled = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            return compiled(*args, **kwargs)

        return build
