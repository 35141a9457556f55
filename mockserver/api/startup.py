"""Work the libraries do at start-up that the mock does not need done, or done that slowly.

* Flask URL rules that build their URL-building code only when a URL is first built. Werkzeug
  compiles two URL builders for every rule as it is added (Python source generated, parsed and
  compiled), for ``url_for``. The mock registers a rule per operation of the whole m3ter API and
  never builds a URL from one, so that work was a measured share of start-up for nothing.
  Matching a request against the rules is unchanged.
* Connexion deep-copies each spec several times as it loads it (``copy.deepcopy``, which
  tracks every node in Python). A spec is plain JSON data, which pickle copies alike, in C:
  ``faster_spec_copies`` makes Connexion's spec modules copy that way.
* Modules imported at start-up only to be used by features the mock serves rarely or never:
  Starlette's test client (Connexion imports it for ``app.test_client()``; it pulls in httpx),
  httpx (Connexion's OAuth introspection; the mock's webhook deliveries) and requests
  (Connexion's remote ``$ref`` resolution). Importing them was about a third of the mock's
  import time. ``deferred_imports`` makes the modules imported inside it bind stand-ins that
  import the real module when a name is first read from them.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import sys
import threading
from types import ModuleType, SimpleNamespace

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


DEFERRABLE = ("httpx", "requests", "starlette.testclient")
_importing = threading.RLock()


class DeferredModule(ModuleType):
    """Bound by an ``import`` in place of a module not imported yet; reading any name from it
    imports the real module (once) and reads the name there, so it behaves as the module."""

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # copy, pickle and inspect probe these; no import for them
        return getattr(self._real_module(), name)

    def _real_module(self) -> ModuleType:
        with _importing:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            return importlib.import_module(self.__name__)


def _deferred_test_client(*args, **kwargs):
    from starlette.testclient import TestClient

    return TestClient(*args, **kwargs)


@contextlib.contextmanager
def deferred_imports(names=DEFERRABLE):
    """Within: ``import`` of one of ``names`` not imported yet binds a ``DeferredModule``.
    After, the stand-ins leave ``sys.modules``, so a later import gets the real module."""
    placed: dict[str, ModuleType] = {}
    with _importing:
        for name in names:
            if name not in sys.modules:
                stand_in = DeferredModule(name)
                if name == "starlette.testclient":
                    # Read at import by ``from starlette.testclient import TestClient``.
                    stand_in.TestClient = _deferred_test_client
                placed[name] = sys.modules[name] = stand_in
    try:
        yield
    finally:
        with _importing:
            for name, stand_in in placed.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]
