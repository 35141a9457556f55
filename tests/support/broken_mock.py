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


# -- false rejections: a schema-valid request refused with the message of a real rule -----
# The contract suite accepts a 400 for a schema-valid request only as the breach of a rule
# no schema can state (contracts/policy.py). Each mock below refuses valid requests with
# exactly such a rule's message; the suite must still fail.

def refuses_every_notification():
    """Every notification create is refused as if its ``eventName`` were not an event type
    (the mock's own wording for that rule), whatever the name."""
    from mockserver.domain.errors import MockError

    app = create_app(mock_settings())

    def refuse(caller, body):
        raise MockError.bad_request(f"eventName: {body['eventName']!r} is not an event type (see GET /events/types)")

    app.backend.notifications.create = refuse
    return app


def catalogue_forgets_a_field():
    """A catalogue bug: ``configuration.commitment.updated`` loses ``old.amountSpent``, so
    the spec's own example notification is refused with ``calculation: unknown field
    'old.amountSpent' ...``, the message of the calculation rule."""
    from mockserver.domain import catalogue

    fields_for = catalogue.fields_for

    def forgetful(event_name):
        fields = fields_for(event_name)
        if event_name == "configuration.commitment.updated":
            fields.pop("old.amountSpent", None)
        return fields

    catalogue.fields_for = forgetful  # this process only: the suite runs each broken mock in its own
    return create_app(mock_settings())


def day_offsets_cut_short():
    """An off-by-a-lot in the schedule rule: a DAY schedule's offset (the hour) must be 0-1
    instead of 0-23, so the spec's own example (DAY, period 1, offset 2) is refused with the
    message of the frequency rule."""
    from mockserver.domain.errors import MockError

    app = create_app(mock_settings())
    service = app.backend.export_schedules
    prepare = service.kind.prepare

    def strict(backend, caller, body, existing):
        if body.get("scheduleType") == "DAY" and (body.get("offset") or 0) > 1:
            raise MockError.bad_request("offset must be between 0 and 23 for scheduleType DAY (hour of the day)")
        return prepare(backend, caller, body, existing)

    service.kind = dataclasses.replace(service.kind, prepare=strict)
    return app


def refuses_meters_with_a_made_up_reference():
    """Every meter create is refused as if its product did not exist, in the generic
    engine's own wording for a dangling reference, naming a product the request never sent
    (or sending none: a global meter names no product)."""
    from mockserver.domain.errors import MockError

    app = create_app(mock_settings())
    meters = app.backend.resources["meters"]

    def refuse(caller, body, scope=None):
        raise MockError.bad_request("productId: no Product with id 'made-up-product'")

    meters.create = refuse
    return app
