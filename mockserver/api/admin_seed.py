"""Handlers of the admin API's seed data (``openapi/admin.yaml``): thin, the rules are in
``mockserver.backend.seeding``."""

from __future__ import annotations

from .context import backend


def seed_organization(orgId, body=None):
    return backend().seeding.generate(orgId, body or {}), 201


def load_fixture(orgId, body):
    return backend().seeding.load(orgId, body), 201


ADMIN_HANDLERS = {
    "SeedOrganization": seed_organization,
    "LoadFixture": load_fixture,
}
