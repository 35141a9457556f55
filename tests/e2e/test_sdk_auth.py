"""Configured clients: only they get tokens, and only on their organizations."""

from __future__ import annotations

import m3ter
import pytest

from mockserver.app import create_app
from mockserver.domain.auth import parse_client_spec
from tests.conftest import make_settings
from tests.support.server import serve_in_thread


@pytest.fixture(scope="module")
def locked_url():
    settings = make_settings(clients=[parse_client_spec("ci:ci-secret:org-a,org-b"), parse_client_spec("admin:pw")])
    with serve_in_thread(create_app(settings)) as url:
        yield url


def client_for(url, key, secret, org):
    return m3ter.M3ter(base_url=url, api_key=key, api_secret=secret, org_id=org, max_retries=0)


def test_bound_client_works_on_its_orgs(locked_url):
    with client_for(locked_url, "ci", "ci-secret", "org-b") as client:
        assert client.compound_aggregations.list().data == []


def test_bound_client_on_a_foreign_org_is_permission_denied(locked_url):
    with client_for(locked_url, "ci", "ci-secret", "org-z") as client:
        with pytest.raises(m3ter.PermissionDeniedError):
            client.compound_aggregations.list()


def test_unbound_client_works_everywhere(locked_url):
    with client_for(locked_url, "admin", "pw", "org-z") as client:
        assert client.notification_configurations.list().data == []


@pytest.mark.parametrize(("key", "secret"), [("ci", "wrong"), ("stranger", "pw")])
def test_unknown_credentials_get_no_token(locked_url, key, secret):
    with client_for(locked_url, key, secret, "org-a") as client:
        with pytest.raises(m3ter.AuthenticationError):
            client.compound_aggregations.list()
