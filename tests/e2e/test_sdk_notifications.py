"""The official SDK drives the whole notification path against a served mock: a webhook,
a rule and the integration configuration linking them; then an entity update reaches a
local receiver, signed."""

from __future__ import annotations

import hashlib
import hmac
import json

from tests.support.receiver import receiving


def test_sdk_rule_to_receiver(sdk, live_app):
    with receiving() as receiver:
        hook = sdk.webhooks.create(
            name="Receiver", description="local", url=receiver.url,
            credentials={"type": "M3TER_SIGNED_REQUEST", "api_key": "sdk-key", "secret": "sdk-webhook-secret"})
        rule = sdk.notification_configurations.create(
            code="price_change", name="Unit changed", description="unit of a compound aggregation changed",
            event_name="configuration.compoundaggregation.updated", calculation="new.unit != old.unit")
        config = sdk.integration_configurations.create(
            destination="Webhook", destination_id=hook.id, entity_type="Notification", entity_id=rule.id)
        agg = sdk.compound_aggregations.create(name="Storage", rounding="UP", quantity_per_unit=1, unit="GB",
                                               calculation="storage")
        sdk.compound_aggregations.update(agg.id, name="Storage", rounding="UP", quantity_per_unit=1, unit="GB",
                                         calculation="storage * 2", version=1)  # same unit: no notification
        sdk.compound_aggregations.update(agg.id, name="Storage", rounding="UP", quantity_per_unit=1, unit="TB",
                                         calculation="storage * 2", version=2)
        assert receiver.wait_for(1)
        live_app.backend.run_due()
        assert len(receiver.requests) == 1
        got = receiver.requests[0]

    message = f"{receiver.url}||sdk-key|{got.headers['X-m3ter-timestamp']}|".encode() + got.body
    assert got.headers["X-m3ter-signature"] == hmac.new(b"sdk-webhook-secret", message, hashlib.sha256).hexdigest()
    data = json.loads(got.body)["m3terEvent"]["eventData"]
    assert (data["oldDto"]["unit"], data["newDto"]["unit"]) == ("GB", "TB")

    fired = list(sdk.events.list(event_type="Notification", notification_id=rule.id))
    assert len(fired) == 1 and fired[0].event_name == "configuration.compoundaggregation.updated"
    assert sdk.events.retrieve(fired[0].id).id == fired[0].id
    assert sdk.integration_configurations.retrieve(config.id).status == "COMPLETE"
