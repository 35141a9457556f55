"""Client credentials and bearer tokens, directly on the domain objects (README "Authentication")."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from mockserver.domain.auth import Authenticator, Client, TokenInfo, parse_client_spec, parse_clients_env
from mockserver.domain.clock import Clock
from mockserver.domain.errors import MockError

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
KEY = b"s" * 32


# -- ID:SECRET[:ORG,ORG...] ------------------------------------------------------------------

def test_a_spec_without_organizations_reaches_every_organization():
    client = parse_client_spec("ci:pass-word")
    assert (client.client_id, client.secret, client.orgs) == ("ci", "pass-word", None)
    assert client.may_access("any-org")


def test_a_spec_with_organizations_reaches_those_only():
    client = parse_client_spec("ci:pw: org-a , org-b,,")
    assert client.orgs == frozenset({"org-a", "org-b"})
    assert client.may_access("org-a") and client.may_access("org-b")
    assert not client.may_access("org-c") and not client.may_access("org-a-x")


def test_a_secret_may_not_hold_a_colon_but_the_organizations_part_starts_at_the_second():
    assert parse_client_spec("ci:pw:org:1").orgs == frozenset({"org:1"})


def test_an_empty_organizations_part_means_every_organization():
    assert parse_client_spec("ci:pw:").orgs is None
    assert parse_client_spec("ci:pw:  ").orgs is None


@pytest.mark.parametrize(("spec", "shown"), [("ci", "'ci'"), (":pw", "''"), ("ci:", "'ci'"), ("", "''")])
def test_a_spec_without_id_and_secret_is_refused_naming_the_form(spec, shown):
    with pytest.raises(ValueError) as raised:
        parse_client_spec(spec)
    assert str(raised.value) == f"client {shown}: expected ID:SECRET[:ORG,ORG...]"


def test_m3ter_mock_clients_separates_specs_by_whitespace_or_semicolons():
    clients = parse_clients_env(" a:1:o1;b:2 \n c:3 ;; ")
    assert [(c.client_id, c.secret, c.orgs) for c in clients] == [
        ("a", "1", frozenset({"o1"})), ("b", "2", None), ("c", "3", None)]


# -- who gets a token -------------------------------------------------------------------------

@pytest.mark.parametrize(("client_id", "secret"), [("", "x"), ("x", "")])
def test_open_access_needs_a_non_empty_id_and_secret(client_id, secret):
    assert Authenticator(Clock(START), KEY).authenticate_client(client_id, secret) is None


def test_open_access_gives_any_other_pair_a_client_for_every_organization():
    authenticator = Authenticator(Clock(START), KEY)
    assert authenticator.open_access
    client = authenticator.authenticate_client("anyone", "anything")
    assert (client.client_id, client.orgs) == ("anyone", None)


def test_configured_clients_are_the_only_ones():
    bound = Client("ci", "pw", frozenset({"org-a"}))
    authenticator = Authenticator(Clock(START), KEY, [bound])
    assert not authenticator.open_access
    assert authenticator.authenticate_client("ci", "pw") is bound
    assert authenticator.authenticate_client("ci", "pw2") is None
    assert authenticator.authenticate_client("ci", "p") is None
    assert authenticator.authenticate_client("other", "pw") is None


# -- tokens -------------------------------------------------------------------------------------

def test_a_token_lasts_18000_seconds_on_the_mocks_clock():
    clock = Clock(START)
    authenticator = Authenticator(clock, KEY)
    token, expires_in = authenticator.issue_token(Client("ci", "pw"))
    assert expires_in == 18000
    info = authenticator.verify_token(token)
    assert info == TokenInfo("ci", None, int(START.timestamp()) + 18000)
    clock.advance(timedelta(seconds=17999))
    assert authenticator.verify_token(token) is not None
    clock.advance(timedelta(seconds=1))
    assert authenticator.verify_token(token) is None


def test_a_token_starts_with_the_mocks_prefix_and_has_three_parts():
    token, _ = Authenticator(Clock(START), KEY).issue_token(Client("ci", "pw"))
    prefix, body, signature = token.split(".")
    assert prefix == "m3mock" and body and len(signature) == 32


def test_a_bound_clients_token_carries_its_organizations():
    authenticator = Authenticator(Clock(START), KEY)
    token, _ = authenticator.issue_token(Client("ci", "pw", frozenset({"org-b", "org-a"})))
    info = authenticator.verify_token(token)
    assert info.orgs == frozenset({"org-a", "org-b"})
    info.check_org("org-a")
    with pytest.raises(MockError) as raised:
        info.check_org("org-a-x")
    assert (raised.value.status, raised.value.message) == (
        403, "client 'ci' may not access organization 'org-a-x'")


def test_an_unbound_token_reaches_every_organization():
    authenticator = Authenticator(Clock(START), KEY)
    info = authenticator.verify_token(authenticator.issue_token(Client("ci", "pw"))[0])
    assert info.orgs is None
    info.check_org("whatever")


@pytest.mark.parametrize("change", [
    lambda t: t.replace("m3mock.", "m3moxk.", 1),
    lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),
    lambda t: t + ".x",
    lambda t: t.split(".", 1)[1],
    lambda t: "m3mock." + "e30" + "." + t.rsplit(".", 1)[1],
])
def test_an_altered_token_is_not_one_this_mock_issued(change):
    authenticator = Authenticator(Clock(START), KEY)
    token, _ = authenticator.issue_token(Client("ci", "pw"))
    assert authenticator.verify_token(change(token)) is None


def test_a_token_from_another_mock_is_refused():
    token, _ = Authenticator(Clock(START), b"a" * 32).issue_token(Client("ci", "pw"))
    assert Authenticator(Clock(START), b"b" * 32).verify_token(token) is None


def test_tokens_verify_whatever_the_length_of_their_claims():
    authenticator = Authenticator(Clock(START), KEY)
    for length in range(1, 13):
        client = Client("c" * length, "pw", frozenset({"o" * length}) if length % 2 else None)
        info = authenticator.verify_token(authenticator.issue_token(client)[0])
        assert info is not None and info.client_id == client.client_id and info.orgs == client.orgs


def test_a_token_is_plain_url_safe_text():
    authenticator = Authenticator(Clock(START), KEY)
    for length in range(1, 9):
        token, _ = authenticator.issue_token(Client("c" * length, "pw"))
        assert re.fullmatch(r"m3mock\.[A-Za-z0-9_-]+\.[0-9a-f]{32}", token), token


def test_open_access_hands_back_the_credentials_given():
    client = Authenticator(Clock(START), KEY).authenticate_client("anyone", "anything")
    assert (client.client_id, client.secret) == ("anyone", "anything")
