"""Mocks broken on purpose, for the contract suite's test of itself
(``tests/test_contract_suite.py``): each factory builds the mock as the suite runs it
(``contracts.target.mock_settings``) and then breaks one thing a real regression could."""

from __future__ import annotations

import dataclasses

from contracts.target import mock_settings
from mockserver.app import create_app
from mockserver.backend.crud import public_view


def wrong_types_and_a_crash():
    """Compound aggregations answer ``version`` as a string (the spec says integer), and
    listing notification configurations crashes (500)."""
    app = create_app(mock_settings())
    service = app.backend.compound_aggregations
    service.kind = dataclasses.replace(service.kind, view=lambda e: {**public_view(e), "version": str(e["version"])},
                                       created_view=None)

    def crash(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    app.backend.notifications.list = crash
    return app


def delete_that_keeps():
    """DELETE of a webhook destination answers 200 with the entity but keeps it."""
    app = create_app(mock_settings())
    webhooks = app.backend.webhooks
    webhooks.delete = lambda caller, entity_id: webhooks.get(caller, entity_id)
    return app


def tokens_refused():
    """The token endpoint issues tokens, and no call accepts them (every call is a 401)."""
    app = create_app(mock_settings())
    app.backend.auth.verify_token = lambda token: None
    return app
