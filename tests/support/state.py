"""Assertions about the mock's whole state."""

from __future__ import annotations


def store_contents(app) -> dict:
    return app.backend.store.contents()


def unchanged(app, action):
    """Run ``action`` and assert it changed nothing in the store."""
    before = store_contents(app)
    action()
    assert store_contents(app) == before
