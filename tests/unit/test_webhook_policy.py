import ipaddress
import random
import socket

import pytest

from mockserver.domain.webhook_policy import (WebhookPolicy, is_own_address, normalise_host, parse_ip, parse_ipv4,
                                              unwrap)

ip = ipaddress.ip_address

# Every spelling here is one that libc's inet_aton (and so getaddrinfo) accepts.
METADATA_SPELLINGS = [
    "169.254.169.254", "2852039166", "0xa9fea9fe", "0XA9FEA9FE", "0251.0376.0251.0376",
    "169.254.43518", "169.16689662", "0xa9.0xfe.0xa9.0xfe", "0251.254.0xa9.254", "0000251.0376.0251.0376",
]


@pytest.mark.parametrize("text", METADATA_SPELLINGS)
def test_ipv4_spellings_are_read_as_resolvers_read_them(text):
    assert socket.inet_ntoa(socket.inet_aton(text)) == "169.254.169.254"
    assert parse_ipv4(text) == ip("169.254.169.254")


@pytest.mark.parametrize("text", ["0x7f000001", "2130706433", "127.1", "0177.0.0.1", "0x7f.1"])
def test_loopback_spellings(text):
    assert parse_ipv4(text) == ip("127.0.0.1")


@pytest.mark.parametrize("text", ["4294967296", "0x100000000", "1.2.3.4.5", "08", "0x", "1..2", "256.1.1.1",
                                  "1.2.65536", "a.b.c.d", "", "1.2.3.", "-1", "9" * 5000])
def test_what_inet_aton_refuses_is_not_an_address(text):
    assert parse_ipv4(text) is None


def test_agrees_with_inet_aton_on_random_spellings():
    rng = random.Random(8)
    for _ in range(2000):
        value = rng.getrandbits(32)
        parts = rng.choice([1, 2, 3, 4])
        octets = value.to_bytes(4, "big")
        numbers = list(octets[:parts - 1]) + [int.from_bytes(octets[parts - 1:], "big")]
        text = ".".join(rng.choice([str, hex, lambda n: "0" + format(n, "o")])(n) for n in numbers)
        expected = socket.inet_ntoa(socket.inet_aton(text))
        assert str(parse_ipv4(text)) == expected, text


REFUSED_HOSTS = METADATA_SPELLINGS + [
    "169.254.0.1", "169.254.255.255", "[169.254.169.254]", "169.254.169.254.",
    "fe80::1", "[fe80::1]", "FE80::abcd", "febf::1", "fe80::1%25eth0", "fd00:ec2::254",
    "::ffff:169.254.169.254", "[::ffff:a9fe:a9fe]", "::ffff:0:a9fe:a9fe", "::169.254.169.254",
    "64:ff9b::169.254.169.254", "2002:a9fe:a9fe::1",
    "metadata.google.internal", "METADATA.GOOGLE.INTERNAL", "metadata.google.internal.", "metadata", "Metadata.",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_link_local_and_metadata_hosts_are_always_refused(host):
    reason = WebhookPolicy().check_host(host)
    assert reason and reason.endswith("webhooks may not be delivered there")
    # an allow list cannot let them through
    everything = WebhookPolicy.from_allow_list(["0.0.0.0/0", "::/0", "metadata.google.internal", "metadata"])
    assert everything.check_host(host) == reason


def test_the_reason_names_the_address_a_spelling_stands_for():
    assert WebhookPolicy().check_host("0xa9fea9fe") == (
        "0xa9fea9fe (169.254.169.254) is a link-local / cloud metadata address; webhooks may not be delivered there")
    assert WebhookPolicy().check_host("metadata.google.internal.") == (
        "metadata.google.internal is a cloud metadata address; webhooks may not be delivered there")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f000001", "::1", "[::1]", "10.0.0.1", "172.16.5.4",
                                  "192.168.1.1", "fd12::1", "hooks.example.com", "metadata.example.com",
                                  "169.253.255.255", "169.255.0.0", "fec0::1"])
def test_everything_else_is_allowed_by_default(host):
    assert WebhookPolicy().check_host(host) is None


def test_the_allow_list_names_hosts_and_networks():
    policy = WebhookPolicy.from_allow_list(["hooks.example.com", "10.0.0.0/8", "127.0.0.1", "[fd00::]/8"])
    assert policy.check_host("HOOKS.example.com.") is None
    assert policy.check_host("10.20.30.40") is None
    assert policy.check_host("0x0a000001") is None
    assert policy.check_host("127.0.0.1") is None
    assert policy.check_host("fd12::1") is None
    assert policy.check_host("::ffff:10.1.1.1") is None
    assert policy.check_host("127.0.0.2") == "127.0.0.2 is not in the webhook allow list"
    assert policy.check_host("192.168.0.1") == "192.168.0.1 is not in the webhook allow list"
    # a name that is not listed might resolve into a listed network: the delivery decides
    assert policy.check_host("other.example.com") is None
    assert policy.check_address("other.example.com", ip("10.9.9.9")) is None
    assert policy.check_address("other.example.com", ip("192.168.0.1")) == (
        "other.example.com (192.168.0.1) is not in the webhook allow list")
    # a listed name may resolve anywhere but link-local / metadata
    assert policy.check_address("hooks.example.com", ip("203.0.113.9")) is None
    assert policy.check_address("hooks.example.com", ip("169.254.169.254")).endswith(
        "webhooks may not be delivered there")


def test_an_allow_list_of_names_only_refuses_other_names_when_saved():
    policy = WebhookPolicy.from_allow_list(["hooks.example.com"])
    assert policy.check_host("other.example.com") == "other.example.com is not in the webhook allow list"
    assert policy.check_host("127.0.0.1") == "127.0.0.1 is not in the webhook allow list"


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not a host", "http://x/", "1.2.3.4/x", "/8", "a..b"])
def test_bad_allow_list_entries_are_refused(entry):
    with pytest.raises(ValueError, match="webhook allow list"):
        WebhookPolicy.from_allow_list([entry])


def test_parse_ip_reads_literals_only():
    assert parse_ip("[::1]") == ip("::1")
    assert parse_ip("hooks.example.com") is None
    assert parse_ip("1.2.3.4.") == ip("1.2.3.4")


def never_local(_address):
    return False


def test_own_addresses():
    own = {("127.0.0.1", 4010)}
    assert is_own_address(ip("127.0.0.1"), 4010, own, never_local)
    assert is_own_address(ip("::ffff:127.0.0.1"), 4010, own, never_local)
    assert is_own_address(ip("0.0.0.0"), 4010, own, never_local)  # reaches the local host
    assert not is_own_address(ip("127.0.0.1"), 4011, own, never_local)
    assert not is_own_address(ip("127.0.0.2"), 4010, own, never_local)  # bound to one address only


def test_a_wildcard_or_named_listener_is_every_local_address():
    for host in ("0.0.0.0", "::", "", "localhost", "mock.internal"):
        own = {(host, 4010)}
        assert is_own_address(ip("127.0.0.2"), 4010, own, never_local)
        assert is_own_address(ip("::1"), 4010, own, never_local)
        assert is_own_address(ip("192.0.2.7"), 4010, own, lambda a: a == ip("192.0.2.7"))
        assert not is_own_address(ip("192.0.2.8"), 4010, own, lambda a: a == ip("192.0.2.7"))
        assert not is_own_address(ip("127.0.0.1"), 80, own, never_local)


def test_every_listener_is_looked_at_not_only_the_first():
    own = [("127.0.0.1", 9999), ("127.0.0.1", 4010)]
    assert is_own_address(ip("127.0.0.1"), 4010, own, never_local)


def test_an_address_outside_the_allow_list_is_named_once_when_the_url_gave_it():
    policy = WebhookPolicy.from_allow_list(["10.0.0.0/8"])
    assert policy.outside_allow_list("192.0.2.1", ip("192.0.2.1")) == "192.0.2.1 is not in the webhook allow list"
    assert policy.outside_allow_list("hooks.example", ip("192.0.2.1")) == \
        "hooks.example (192.0.2.1) is not in the webhook allow list"
    assert policy.outside_allow_list("hooks.example", ip("10.1.2.3")) is None


def test_a_host_is_compared_as_a_resolver_sees_it():
    assert normalise_host(" [::1] ") == "::1"
    assert normalise_host("Hooks.Example.COM.") == "hooks.example.com"
    assert normalise_host("hooks.example..") == "hooks.example.."  # not a fully qualified name
    assert normalise_host("bücher.example") == "xn--bcher-kva.example"


def test_an_allow_list_entry_matches_its_idna_spelling():
    policy = WebhookPolicy.from_allow_list(["xn--bcher-kva.example"])
    assert policy.check_host("bücher.example") is None
    assert policy.check_host("bucher.example") == "bucher.example is not in the webhook allow list"


@pytest.mark.parametrize("text", ["1.2.3.4.0", "1.2.3.4.5", "42949672960"])
def test_what_is_not_one_to_four_parts_of_32_bits_is_not_an_address(text):
    assert parse_ipv4(text) is None


def test_a_deprecated_compatible_address_stands_for_its_ipv4_address():
    assert unwrap(ip("::2")) == ip("0.0.0.2")
    assert unwrap(ip("::1")) == ip("::1")  # loopback, not 0.0.0.1


def test_a_cidr_with_host_bits_allows_its_whole_network():
    policy = WebhookPolicy.from_allow_list(["10.1.2.3/8"])
    assert policy.check_host("10.200.0.1") is None
    assert policy.check_host("11.0.0.1") == "11.0.0.1 is not in the webhook allow list"
