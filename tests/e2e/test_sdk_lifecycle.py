"""The official m3ter SDK (from PyPI) drives every CRUD resource of the mock over HTTP:
create, retrieve, update, list across pages, delete, and 404 afterwards."""

from __future__ import annotations

import m3ter
import pytest

ROLE = "arn:aws:iam::123456789012:role/m3ter-export"


def all_ids(list_call, **params) -> list[str]:
    return [item.id for item in list_call(**params)]


def create_compound(sdk, n):
    return sdk.compound_aggregations.create(
        name=f"Aggregation {n}", code=f"agg_{n}", rounding="UP", quantity_per_unit=2,
        unit="GB", calculation="storage * 2", custom_fields={"tier": "gold", "weight": 3})


def update_compound(sdk, entity):
    return sdk.compound_aggregations.update(
        entity.id, name="Renamed", rounding="DOWN", quantity_per_unit=4, unit="TB",
        calculation="storage * 4", version=entity.version)


def create_destination(sdk, n):
    return sdk.data_exports.destinations.create(bucket_name=f"bucket-{n}", iam_role_arn=ROLE, prefix="exports")


def update_destination(sdk, entity):
    return sdk.data_exports.destinations.update(
        entity.id, bucket_name="renamed-bucket", iam_role_arn=ROLE, partition_order="TYPE_FIRST",
        version=entity.version)


def create_schedule(sdk, n):
    return sdk.data_exports.schedules.create(source_type="OPERATIONAL",
                                             operational_data_types=["COMPOUND_AGGREGATIONS"])


def update_schedule(sdk, entity):
    return sdk.data_exports.schedules.update(entity.id, source_type="USAGE", time_period="LAST_7_DAYS",
                                             version=entity.version)


def create_notification(sdk, n):
    return sdk.notification_configurations.create(
        code=f"rule_{n}", name=f"Rule {n}", description="Commitment under 10%",
        event_name="configuration.commitment.updated", calculation="new.amountSpent > new.amount * 0.9")


def update_notification(sdk, entity):
    return sdk.notification_configurations.update(
        entity.id, code=entity.code, name="Renamed rule", description="changed",
        event_name="configuration.commitment.created", active=False, version=entity.version)


def create_webhook(sdk, n):
    return sdk.webhooks.create(
        name=f"Hook {n}", description="receiver", url=f"http://127.0.0.1:9/hook{n}",
        credentials={"type": "M3TER_SIGNED_REQUEST", "api_key": f"key-{n}", "secret": f"secret-{n}"})


def update_webhook(sdk, entity):
    return sdk.webhooks.update(
        entity.id, name="Renamed hook", description="moved", url="https://hooks.example.com/m3ter?x=1",
        credentials={"type": "M3TER_SIGNED_REQUEST", "api_key": "key-new", "secret": "secret-new"},
        version=entity.version)


def create_integration(sdk, n):
    return sdk.integration_configurations.create(destination="Webhook", entity_type="Notification",
                                                 name=f"Link {n}", config_data={"n": n})


def update_integration(sdk, entity):
    return sdk.integration_configurations.update(entity.id, destination="Webhook", entity_type="Notification",
                                                 name="Renamed link", version=entity.version)


RESOURCES = {
    "compound_aggregations": (lambda s: s.compound_aggregations, create_compound, update_compound,
                              lambda e: (e.name, e.unit, e.rounding) == ("Renamed", "TB", "DOWN")),
    "destinations": (lambda s: s.data_exports.destinations, create_destination, update_destination,
                     lambda e: e.bucket_name == "renamed-bucket" and e.partition_order == "TYPE_FIRST"),
    "schedules": (lambda s: s.data_exports.schedules, create_schedule, update_schedule,
                  lambda e: e.time_period == "LAST_7_DAYS"),
    "notifications": (lambda s: s.notification_configurations, create_notification, update_notification,
                      lambda e: e.name == "Renamed rule" and e.active is False),
    "webhooks": (lambda s: s.webhooks, create_webhook, update_webhook,
                 lambda e: e.url.startswith("https://hooks.example.com") and e.credentials.api_key == "key-new"),
    "integration_configs": (lambda s: s.integration_configurations, create_integration, update_integration,
                            lambda e: e.name == "Renamed link"),
}


@pytest.mark.parametrize("name", RESOURCES)
def test_full_lifecycle(sdk, name):
    resource_of, create, update, updated_ok = RESOURCES[name]
    resource = resource_of(sdk)

    created = [create(sdk, n) for n in range(3)]
    assert all(e.version == 1 for e in created)
    assert len({e.id for e in created}) == 3
    assert resource.retrieve(created[0].id).id == created[0].id

    updated = update(sdk, created[1])
    assert updated.version == 2
    assert updated_ok(updated)

    expected_order = [e.id for e in created]
    for page_size in (1, 2):
        assert all_ids(resource.list, page_size=page_size) == expected_order

    deleted = resource.delete(created[2].id)
    assert deleted.id == created[2].id
    with pytest.raises(m3ter.NotFoundError):
        resource.retrieve(created[2].id)
    assert all_ids(resource.list, page_size=1) == expected_order[:2]


def test_list_filters_by_ids_comma_joined(sdk):
    made = [create_compound(sdk, n) for n in range(4)]
    wanted = [made[3].id, made[1].id]
    assert all_ids(sdk.compound_aggregations.list, ids=wanted, page_size=1) == [made[1].id, made[3].id]
    assert all_ids(sdk.compound_aggregations.list, codes=["agg_2"]) == [made[2].id]


def test_stale_version_is_a_conflict(sdk):
    entity = create_compound(sdk, 1)
    update_compound(sdk, entity)
    with pytest.raises(m3ter.ConflictError) as raised:
        update_compound(sdk, entity)  # still carries version 1
    assert "version" in str(raised.value)
    assert sdk.compound_aggregations.retrieve(entity.id).version == 2


def test_invalid_enum_names_the_field(sdk):
    with pytest.raises(m3ter.BadRequestError) as raised:
        sdk.compound_aggregations.create(name="x", rounding="SIDEWAYS", quantity_per_unit=1, unit="u",
                                         calculation="a")
    assert "rounding" in raised.value.body["message"]
    assert list(sdk.compound_aggregations.list()) == []


def test_no_token_is_an_authentication_error(live_url):
    with m3ter.M3ter(base_url=live_url, api_key="k", api_secret="s", org_id="o", token="not-a-token",
                     max_retries=0) as client:
        with pytest.raises(m3ter.AuthenticationError):
            client.compound_aggregations.list().data


def test_events_catalogue_through_the_sdk(sdk):
    types = sdk.events.get_types().events
    assert "configuration.commitment.updated" in types and len(types) == 85
    fields = sdk.events.get_fields(event_name="configuration.commitment.deleted").events
    assert fields["configuration.commitment.deleted"]["old.amount"] == "double"


def test_webhook_secret_only_in_create_response(sdk):
    created = create_webhook(sdk, 7)
    assert created.credentials.secret == "secret-7"
    assert sdk.webhooks.retrieve(created.id).credentials.secret is None
    assert all(h.credentials.secret is None for h in sdk.webhooks.list())
    assert update_webhook(sdk, created).credentials.secret is None
    assert sdk.webhooks.set_active(created.id, active=False).active is False
    assert sdk.webhooks.retrieve(created.id).active is False
