import json
import runpy
from pathlib import Path

import pytest

from mockserver.domain import catalogue
from mockserver.domain.errors import MockError

# The 85 event types exactly as GET /events/types lists them in the seed documentation.
SEED_EVENT_TYPES = [
    "configuration.commitment.created", "configuration.commitment.deleted", "configuration.commitment.updated",
    "configuration.account.created", "configuration.account.deleted", "configuration.account.updated",
    "configuration.aggregation.created", "configuration.aggregation.deleted", "configuration.aggregation.updated",
    "configuration.compoundaggregation.created", "configuration.compoundaggregation.deleted",
    "configuration.compoundaggregation.updated",
    "configuration.meter.created", "configuration.meter.deleted", "configuration.meter.updated",
    "configuration.metergroup.created", "configuration.metergroup.deleted", "configuration.metergroup.updated",
    "configuration.plan.created", "configuration.plan.deleted", "configuration.plan.updated",
    "configuration.plantemplate.created", "configuration.plantemplate.deleted", "configuration.plantemplate.updated",
    "configuration.plangroup.created", "configuration.plangroup.deleted", "configuration.plangroup.updated",
    "configuration.plangrouplink.created", "configuration.plangrouplink.deleted",
    "configuration.plangrouplink.updated",
    "configuration.pricing.created", "configuration.pricing.deleted", "configuration.pricing.updated",
    "configuration.product.created", "configuration.product.deleted", "configuration.product.updated",
    "configuration.accountplan.created", "configuration.accountplan.deleted", "configuration.accountplan.updated",
    "configuration.pricingband.created", "configuration.pricingband.deleted", "configuration.pricingband.updated",
    "configuration.organization.created", "configuration.organization.deleted",
    "configuration.organization.updated",
    "configuration.customfield.created", "configuration.customfield.deleted", "configuration.customfield.updated",
    "configuration.organizationconfig.created", "configuration.organizationconfig.deleted",
    "configuration.organizationconfig.updated",
    "configuration.contract.created", "configuration.contract.deleted", "configuration.contract.updated",
    "configuration.creditreason.created", "configuration.creditreason.deleted",
    "configuration.creditreason.updated",
    "configuration.transactiontype.created", "configuration.transactiontype.deleted",
    "configuration.transactiontype.updated",
    "billing.bill.created", "billing.bill.deleted", "billing.bill.updated",
    "billing.billconfig.created", "billing.billconfig.deleted", "billing.billconfig.updated",
    "billing.billjob.created", "billing.billjob.deleted", "billing.billjob.updated",
    "billing.balance.created", "billing.balance.deleted", "billing.balance.updated",
    "billing.balanceamount.created", "billing.balanceamount.deleted", "billing.balanceamount.updated",
    "billing.statementjob.created", "billing.statementjob.deleted", "billing.statementjob.updated",
    "integration.validation.error", "integration.disabled.error", "integration.missingaccountmapping.error",
    "integration.authentication.error", "integration.perform.error",
    "ingest.validation.failure", "dataexport.job.failure",
]

# The configuration.commitment.created field map exactly as the seed shows it.
SEED_COMMITMENT_CREATED = {
    "new.accountCode": "string", "new.accountId": "string", "new.accountingProductId": "string",
    "new.amount": "double", "new.amountFirstBill": "double", "new.amountPrePaid": "double",
    "new.amountSpent": "double", "new.billEpoch": "string", "new.billingInterval": "int",
    "new.billingOffset": "int", "new.billingPlanId": "string", "new.commitmentFeeBillInAdvance": "boolean",
    "new.commitmentFeeDescription": "string", "new.commitmentUsageDescription": "string",
    "new.contractId": "string", "new.currency": "string", "new.customFields": "map", "new.endDate": "string",
    "new.feeDates": "array", "new.id": "string", "new.overageDescription": "string",
    "new.overageSurchargePercent": "double", "new.productIds": "array", "new.startDate": "string",
}

ALLOWED_TYPES = {"string", "double", "int", "boolean", "map", "array"}
ENTITY_EVENT_TYPES = [n for n in SEED_EVENT_TYPES if n.startswith(("configuration.", "billing."))]
NON_ENTITY_EVENT_TYPES = [n for n in SEED_EVENT_TYPES if n not in ENTITY_EVENT_TYPES]


def _with_prefix(prefix: str, new_fields: dict[str, str]) -> dict[str, str]:
    return {prefix + key.removeprefix("new."): value for key, value in new_fields.items()}


def test_event_types_are_exactly_the_seed_list_in_order():
    assert len(SEED_EVENT_TYPES) == 85
    assert catalogue.EVENT_TYPES == tuple(SEED_EVENT_TYPES)


def test_is_event_type():
    assert catalogue.is_event_type("configuration.commitment.updated")
    assert catalogue.is_event_type("dataexport.job.failure")
    assert not catalogue.is_event_type("configuration.commitment.archived")
    assert not catalogue.is_event_type("")


def test_commitment_created_matches_seed_exactly():
    fields = catalogue.fields_for("configuration.commitment.created")
    assert fields == SEED_COMMITMENT_CREATED
    assert list(fields) == sorted(fields)


def test_commitment_updated_has_new_and_old_and_is_sorted():
    fields = catalogue.fields_for("configuration.commitment.updated")
    assert fields == {**SEED_COMMITMENT_CREATED, **_with_prefix("old.", SEED_COMMITMENT_CREATED)}
    assert list(fields) == sorted(fields)
    assert len(fields) == 48


def test_commitment_deleted_has_only_old():
    fields = catalogue.fields_for("configuration.commitment.deleted")
    assert fields == _with_prefix("old.", SEED_COMMITMENT_CREATED)


@pytest.mark.parametrize("event_name", SEED_EVENT_TYPES)
def test_every_type_has_fields_of_allowed_types(event_name):
    fields = catalogue.fields_for(event_name)
    assert fields
    assert set(fields.values()) <= ALLOWED_TYPES
    assert list(fields) == sorted(fields)


@pytest.mark.parametrize("entity_event", sorted({n.rsplit(".", 1)[0] for n in ENTITY_EVENT_TYPES}))
def test_created_updated_deleted_prefix_rules(entity_event):
    created = catalogue.fields_for(f"{entity_event}.created")
    updated = catalogue.fields_for(f"{entity_event}.updated")
    deleted = catalogue.fields_for(f"{entity_event}.deleted")
    assert all(key.startswith("new.") for key in created)
    assert all(key.startswith("old.") for key in deleted)
    assert _with_prefix("old.", created) == deleted
    assert updated == {**created, **deleted}
    assert created["new.id"] == "string"


@pytest.mark.parametrize("event_name", NON_ENTITY_EVENT_TYPES)
def test_non_entity_events_only_carry_new_fields(event_name):
    fields = catalogue.fields_for(event_name)
    assert all(key.startswith("new.") for key in fields)
    assert fields["new.error"] == "string"


def test_integration_perform_error_fields():
    fields = catalogue.fields_for("integration.perform.error")
    for key in ("entityType", "entityId", "destination", "destinationId", "integrationConfigId", "url", "error"):
        assert fields[f"new.{key}"] == "string"
    assert fields["new.attempts"] == "int"
    assert fields["new.statusCode"] == "int"


def test_dataexport_and_ingest_failure_fields():
    export = catalogue.fields_for("dataexport.job.failure")
    for key in ("jobId", "scheduleId", "sourceType", "error", "dateCreated"):
        assert export[f"new.{key}"] == "string"
    ingest = catalogue.fields_for("ingest.validation.failure")
    for key in ("meterId", "accountCode", "error", "ts"):
        assert ingest[f"new.{key}"] == "string"


def test_compound_aggregation_fields():
    fields = catalogue.fields_for("configuration.compoundaggregation.created")
    assert fields == {
        "new.id": "string", "new.version": "int", "new.name": "string", "new.code": "string",
        "new.rounding": "string", "new.quantityPerUnit": "double", "new.unit": "string",
        "new.calculation": "string", "new.productId": "string", "new.accountingProductId": "string",
        "new.evaluateNullAggregations": "boolean", "new.customFields": "map", "new.segments": "array",
        "new.dtCreated": "string", "new.dtLastModified": "string", "new.createdBy": "string",
        "new.lastModifiedBy": "string",
    }


def test_sdk_derived_entity_types_are_mapped():
    account = catalogue.fields_for("configuration.account.created")
    assert account["new.version"] == "int"
    assert account["new.address"] == "map"  # nested model
    assert account["new.creditApplicationOrder"] == "array"  # list of enum literals
    assert account["new.daysBeforeBillDue"] == "int"
    assert account["new.dtCreated"] == "string"
    assert catalogue.fields_for("configuration.meter.created")["new.dataFields"] == "array"
    assert catalogue.fields_for("billing.bill.created")["new.locked"] == "boolean"


def test_fields_for_returns_a_copy():
    catalogue.fields_for("configuration.product.created")["new.bogus"] = "string"
    assert "new.bogus" not in catalogue.fields_for("configuration.product.created")


@pytest.mark.parametrize("bad", ["configuration.widget.created", "", "CONFIGURATION.COMMITMENT.CREATED"])
def test_unknown_event_name_is_a_400_naming_event_name(bad):
    with pytest.raises(MockError) as caught:
        catalogue.fields_for(bad)
    assert caught.value.status == 400
    assert "eventName" in caught.value.message
    assert f"'{bad}'" in caught.value.message


def test_entity_event_name():
    assert catalogue.entity_event_name("compoundaggregation", "updated") == "configuration.compoundaggregation.updated"
    assert catalogue.entity_event_name("commitment", "created") == "configuration.commitment.created"
    assert catalogue.entity_event_name("billjob", "deleted") == "billing.billjob.deleted"
    with pytest.raises(ValueError):
        catalogue.entity_event_name("widget", "created")
    with pytest.raises(ValueError):
        catalogue.entity_event_name("commitment", "archived")


@pytest.mark.parametrize(
    ("event_name", "category"),
    [
        ("configuration.commitment.created", "Configuration"),
        ("billing.bill.updated", "Billing"),
        ("integration.perform.error", "IntegrationEvent"),
        ("integration.disabled.error", "IntegrationEvent"),
        ("ingest.validation.failure", "IngestValidationFailure"),
        ("dataexport.job.failure", "DataExportJobFailure"),
    ],
)
def test_event_category(event_name, category):
    assert catalogue.event_category(event_name) == category


def test_every_type_has_a_category():
    for name in catalogue.EVENT_TYPES:
        assert catalogue.event_category(name)


def test_field_type():
    updated = "configuration.commitment.updated"
    assert catalogue.field_type(updated, "new.amount") == "double"
    assert catalogue.field_type(updated, "old.billingInterval") == "int"
    assert catalogue.field_type(updated, "new.customFields") == "map"
    assert catalogue.field_type(updated, "new.customFields.tier") == "any"
    assert catalogue.field_type(updated, "old.customFields.a.b") == "any"
    # Only maps may be walked into.
    assert catalogue.field_type(updated, "new.amount.cents") is None
    assert catalogue.field_type(updated, "new.productIds.0") is None
    assert catalogue.field_type(updated, "new.nope") is None
    assert catalogue.field_type(updated, "customFields.tier") is None
    assert catalogue.field_type("configuration.commitment.created", "old.amount") is None
    assert catalogue.field_type("no.such.event", "new.amount") is None


def test_committed_json_matches_generator():
    """The server reads the committed JSON; regenerate it with tools/build_event_catalogue.py if this fails."""
    pytest.importorskip("m3ter")
    root = Path(__file__).resolve().parents[2]
    generator = runpy.run_path(str(root / "tools" / "build_event_catalogue.py"))
    committed = json.loads((root / "mockserver" / "domain" / "event_catalogue.json").read_text())
    assert committed == generator["build"]()


def test_unknown_entities_and_event_names_are_named_in_the_error():
    with pytest.raises(ValueError) as no_event:
        catalogue.entity_event_name("spaceship", "launched")
    assert str(no_event.value) == "no event type for entity 'spaceship' and action 'launched'"
    with pytest.raises(ValueError) as no_category:
        catalogue.event_category("weather.changed")
    assert str(no_category.value) == "no category for event name 'weather.changed'"


def test_entity_fields_are_the_catalogues_and_empty_for_an_unknown_entity():
    fields = catalogue.entity_fields("compoundaggregation")
    assert {"name", "calculation", "quantityPerUnit", "rounding", "unit"} <= set(fields)
    assert catalogue.entity_fields("spaceship") == {}
