"""Handlers of the operations that are not plain CRUD, one module per group of operations.

Each module exports ``HANDLERS`` (operationId -> handler); they are merged here, and the
registry gives them precedence over the handlers it builds from the spec's ``x-mock``.
"""

from __future__ import annotations

import importlib
import pkgutil


def _collect() -> dict:
    merged: dict = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for operation_id, handler in getattr(module, "HANDLERS", {}).items():
            if operation_id in merged:
                raise LookupError(f"operationId {operation_id!r} has handlers in two action modules")
            merged[operation_id] = handler
    return merged


HANDLERS = _collect()
