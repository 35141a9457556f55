"""The pure part of seed fixtures (``mockserver.domain.seed_fixture``): reading one
organization's entities, references written ``"@<resource>/<name>"``, the order they are
created in, and the errors that name the organization, the entity and the field."""

from __future__ import annotations

import uuid

import pytest

from mockserver.domain.seed_fixture import (FixtureError, Group, json_problem, organizations, placeholder_id,
                                            read_organization, resolve)

GROUPS = {
    "products": Group("products"),
    "meters": Group("meters", references={"productId": "products"}),
    "plans": Group("plans", references={"productId": "products"}),
    "accounts": Group("accounts", references={"parentAccountId": "accounts"}),
    "commitments": Group("commitments", references={"accountId": "accounts", "productIds": "products"}),
    "notifications/configurations": Group("notifications/configurations"),
    "integrationconfigs": Group("integrationconfigs"),
    "organizationconfig": Group("organizationconfig", singleton=True),
}


def read(content, org="org-1"):
    return read_organization(org, content, GROUPS)


def order(content):
    return [(e.group, e.name) for e in read(content).entries]


def error_of(content) -> str:
    with pytest.raises(FixtureError) as caught:
        read(content)
    return caught.value.message


# -- order ----------------------------------------------------------------------------------

def test_each_entity_comes_after_what_it_references_otherwise_in_the_files_order():
    assert order({
        "meters": {"m": {"productId": "@products/p"}},
        "accounts": {"child": {"parentAccountId": "@accounts/parent"}, "parent": {}, "other": {}},
        "products": {"p": {}},
    }) == [("accounts", "parent"), ("accounts", "child"), ("accounts", "other"), ("products", "p"),
           ("meters", "m")]


def test_references_inside_arrays_and_nested_objects_count_too():
    assert order({
        "commitments": {"c": {"accountId": "@accounts/a", "productIds": ["@products/x", "@products/y"]}},
        "integrationconfigs": {"i": {"configData": {"deep": ["@notifications/configurations/n"]}}},
        "notifications/configurations": {"n": {}},
        "products": {"y": {}, "x": {}},
        "accounts": {"a": {}},
    }) == [("notifications/configurations", "n"), ("integrationconfigs", "i"), ("products", "y"),
           ("products", "x"), ("accounts", "a"), ("commitments", "c")]


def test_a_singleton_is_one_body_without_a_name_and_measurements_are_kept_apart():
    fixture = read({"organizationconfig": {"currency": "USD"}, "measurements": [{"uid": "m1"}]})
    assert [(e.group, e.name, e.body) for e in fixture.entries] == [("organizationconfig", None, {"currency": "USD"})]
    assert fixture.measurements == [{"uid": "m1"}]


# -- resolving ------------------------------------------------------------------------------

def test_a_reference_becomes_the_id_and_a_doubled_at_sign_a_literal():
    body = {"productId": "@products/p", "tags": ["@@home", "plain", "@products/p"], "n": 1, "email": "a@b.example"}
    ids = {("products", "p"): "0e0b7c1e-8f3e-4a56-9d49-2f4d1b0d6a11"}
    assert resolve(body, ids, GROUPS) == {
        "productId": "0e0b7c1e-8f3e-4a56-9d49-2f4d1b0d6a11",
        "tags": ["@home", "plain", "0e0b7c1e-8f3e-4a56-9d49-2f4d1b0d6a11"], "n": 1, "email": "a@b.example"}


def test_a_placeholder_is_a_uuid_of_36_characters_the_same_for_the_same_reference():
    first = placeholder_id("products", "p")
    assert len(first) == 36 and str(uuid.UUID(first)) == first
    assert placeholder_id("products", "p") == first != placeholder_id("products", "q")


# -- errors ---------------------------------------------------------------------------------

def test_a_reference_to_no_entity_names_the_field_and_the_names_there_are():
    assert error_of({"products": {"b": {}, "a": {}}, "meters": {"m": {"productId": "@products/c"}}}) == (
        "organization 'org-1': meters 'm': productId: @products/c names no entity of this organization's fixture "
        "(products has a, b)")
    assert error_of({"meters": {"m": {"dataFields": [{"code": "@products/c"}]}}}) == (
        "organization 'org-1': meters 'm': dataFields[0].code: @products/c names no entity of this "
        "organization's fixture (it has no products)")


def test_a_reference_to_the_wrong_kind_of_entity_is_refused():
    assert error_of({"accounts": {"a": {}}, "meters": {"m": {"productId": "@accounts/a"}}}) == (
        "organization 'org-1': meters 'm': productId: @accounts/a is one of accounts; productId names one of "
        "products")
    assert error_of({"accounts": {"a": {}}, "commitments": {"c": {"productIds": ["@accounts/a"]}}}) == (
        "organization 'org-1': commitments 'c': productIds[0]: @accounts/a is one of accounts; productIds names "
        "one of products")


def test_a_cycle_of_references_is_refused_and_shown():
    assert error_of({"accounts": {"a": {"parentAccountId": "@accounts/b"}, "b": {"parentAccountId": "@accounts/a"}}}) \
        == ("organization 'org-1': accounts 'a': its references go round in a cycle (accounts 'a' -> accounts 'b' "
            "-> accounts 'a'); one of them must be created without the reference")
    assert "(accounts 'a' -> accounts 'a')" in error_of({"accounts": {"a": {"parentAccountId": "@accounts/a"}}})


def test_strings_starting_with_an_at_sign_must_be_references_or_doubled():
    assert error_of({"products": {"p": {"name": "@home"}}}) == (
        "organization 'org-1': products 'p': name: '@home' is not a reference (@<resource>/<name>, the resource "
        "one a fixture can hold; write @@ for a string that starts with @)")
    assert error_of({"products": {"p": {"name": "@prodcts/x"}}}).startswith(
        "organization 'org-1': products 'p': name: '@prodcts/x' is not a reference")
    assert error_of({"products": {"p": {"x": "@organizationconfig/x"}}}) == (
        "organization 'org-1': products 'p': x: '@organizationconfig/x': organizationconfig is a singleton; it "
        "has no names to reference")


def test_unknown_resources_and_bad_names_and_shapes_are_refused():
    assert error_of({"prodcts": {}}) == (
        "organization 'org-1': 'prodcts' is not a resource a fixture can create (see README: Seed data)")
    assert error_of({"products": {"-x": {}}}).startswith(
        "organization 'org-1': products: '-x' is not a reference name")
    assert error_of({"products": [{"name": "P"}]}) == (
        "organization 'org-1': products: a mapping of reference name to body (got a list)")
    assert error_of({"products": {"p": "P"}}) == (
        "organization 'org-1': products 'p': a body, a mapping of field to value (got a string)")
    assert error_of({"measurements": {"m": 1}}) == (
        "organization 'org-1': measurements: must be a list of measurements (got a mapping)")
    assert error_of({"organizationconfig": []}) == (
        "organization 'org-1': organizationconfig: a singleton's body, a mapping (got a list)")


def test_what_json_cannot_hold_is_refused():
    assert error_of({"products": {"p": {"price": float("nan")}}}) == (
        "organization 'org-1': products 'p': price: nan is not a number JSON can hold")
    assert json_problem({"a": [{1: "x"}]}) == ("a[0].1", "the key 1 is not a string (quote it)")
    assert json_problem({"a": {"b": {1, 2}}}) == ("a.b", "set is not a JSON value")
    assert json_problem({"a": [1, 2.5, None, True, "x"]}) is None


def test_a_document_holds_organizations_only():
    assert list(organizations({"organizations": {"a": {}, "b": None}})) == ["a", "b"]
    for document, message in [
        ([], "a fixture is a mapping with 'organizations' (got a list)"),
        ({"organisations": {}}, "organisations: not a key of a fixture (it holds 'organizations' only)"),
        ({"organizations": {}}, "organizations: a mapping of organization id to its entities, with at least one"),
        ({"organizations": {"a/b": {}}}, "organizations: 'a/b' is not an organization id (a non-empty string "
                                         "without '/' or control characters)"),
    ]:
        with pytest.raises(FixtureError) as caught:
            organizations(document)
        assert caught.value.message == message
