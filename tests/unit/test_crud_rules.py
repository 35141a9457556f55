"""The shared entity rules, on the backend directly (no HTTP)."""

import uuid

import pytest

from mockserver.backend.core import Backend
from mockserver.backend.crud import Caller
from mockserver.domain.errors import MockError

ALICE = Caller("org", "alice")
BOB = Caller("org", "bob")
BODY = {"name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"}


@pytest.fixture
def service():
    return Backend().compound_aggregations


def test_create_sets_id_version_and_audit(service):
    made = service.create(ALICE, {**BODY, "version": 7, "id": "mine"})
    assert uuid.UUID(made["id"]).version == 4
    assert made["version"] == 1
    assert made["createdBy"] == made["lastModifiedBy"] == "alice"
    assert made["dtCreated"].endswith("Z")


def test_update_checks_and_increments_version(service):
    made = service.create(ALICE, BODY)
    with pytest.raises(MockError) as missing:
        service.update(BOB, made["id"], BODY)
    assert missing.value.status == 400
    with pytest.raises(MockError) as stale:
        service.update(BOB, made["id"], {**BODY, "version": 2})
    assert stale.value.status == 409
    updated = service.update(BOB, made["id"], {**BODY, "unit": "TB", "version": 1})
    assert (updated["version"], updated["unit"], updated["lastModifiedBy"], updated["createdBy"]) == (2, "TB", "bob", "alice")
    assert service.get(ALICE, made["id"]) == updated


def test_codes_are_unique_per_org_and_free_again_after_delete(service):
    made = service.create(ALICE, {**BODY, "code": "x"})
    with pytest.raises(MockError) as taken:
        service.create(ALICE, {**BODY, "code": "x"})
    assert taken.value.status == 409
    service.create(Caller("other", "alice"), {**BODY, "code": "x"})
    service.update(ALICE, made["id"], {**BODY, "code": "x", "version": 1})  # its own code is fine
    service.delete(ALICE, made["id"])
    service.create(ALICE, {**BODY, "code": "x"})


def test_delete_then_404(service):
    made = service.create(ALICE, BODY)
    assert service.delete(ALICE, made["id"]) == made
    for call in (lambda: service.get(ALICE, made["id"]), lambda: service.delete(ALICE, made["id"]),
                 lambda: service.update(ALICE, made["id"], {**BODY, "version": 1})):
        with pytest.raises(MockError) as gone:
            call()
        assert gone.value.status == 404


def test_list_pages_with_filters(service):
    made = [service.create(ALICE, {**BODY, "code": f"c{n}", "productId": "p" * 36 if n % 2 else None}) for n in range(7)]
    page, token = service.list(ALICE, {"productId": ["p" * 36]}, 2, None)
    assert [e["code"] for e in page] == ["c1", "c3"]
    page, token = service.list(ALICE, {"productId": ["p" * 36]}, 2, token)
    assert [e["code"] for e in page] == ["c5"] and token is None
    page, _ = service.list(ALICE, {"ids": [made[6]["id"], made[0]["id"], "missing"]}, 10, None)
    assert [e["code"] for e in page] == ["c0", "c6"]
