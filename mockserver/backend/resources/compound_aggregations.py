"""Compound aggregations: a pricing metric computed by a formula over simple aggregations
and custom fields. The mock stores the ``calculation`` as given."""

from ..crud import ResourceKind, copy_fields, in_list

WRITABLE = ("name", "code", "rounding", "quantityPerUnit", "unit", "calculation", "productId",
            "accountingProductId", "evaluateNullAggregations", "customFields")

KIND = ResourceKind(
    collection="compoundaggregations",
    label="CompoundAggregation",
    event_entity="compoundaggregation",
    prepare=copy_fields(WRITABLE),
    filters={"codes": in_list("code"), "productId": in_list("productId")},
)
