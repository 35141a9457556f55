"""Where a JSON value holds a null: the published schemas allow none in responses."""

from __future__ import annotations


def null_paths(value, where: str = "$") -> list[str]:
    """JSONPath-like places of every null in ``value`` (``$.data[0].dtActioned``)."""
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in null_paths(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in null_paths(item, f"{where}[{index}]")]
    return []
