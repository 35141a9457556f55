"""Where webhook deliveries may go.

Link-local and cloud-metadata destinations are always refused: a tenant who can make the
mock POST to 169.254.169.254 can reach the host's cloud credentials. Loopback and private
ranges are allowed by default (receivers under test usually run on 127.0.0.1) unless an
allow list (``--webhook-allow HOST|CIDR``) restricts deliveries to named hosts or networks.

Resolvers accept IPv4 spellings that :mod:`ipaddress` rejects (``2852039166``,
``0xa9fea9fe``, ``0251.0376.0251.0376``, ``169.254.43518``), so hosts are normalised here
with the classic ``inet_aton`` rules before they are compared. The same rules apply twice:
to the URL's host when a destination is saved, and to every address the host resolves to
when a delivery is made (so a name that later resolves somewhere else cannot get round it).

Checks return the reason for a refusal, or None; callers phrase it for their audience.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ALWAYS_REFUSED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, with AWS/GCP/Azure metadata at .169.254
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata"})

# IPv6 prefixes that carry an IPv4 address in their low 32 bits, and reach it.
_EMBEDDING = (
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
)
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible (:: and ::1 excepted)

_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def normalise_host(host: str) -> str:
    """The host as a resolver sees it: lower case, without the brackets of an IPv6 literal
    or the trailing dot of a fully qualified name, and IDNA-encoded when not ASCII."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text.isascii():
        try:
            text = text.encode("idna").decode()  # pragma: no mutate: codec names ignore case
        except UnicodeError:
            pass
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    return text


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any spelling ``inet_aton`` accepts: one to four dot-separated
    parts, each decimal, octal (leading 0) or hex (0x); the last part fills the bytes
    that remain (``127.1`` is 127.0.0.1, ``2852039166`` is 169.254.169.254)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.fullmatch(p) for p in parts):
        return None
    values = []
    for part in parts:
        if part[:2].lower() == "0x":
            if len(part) == 2:
                return None  # inet_aton refuses a bare "0x"
            values.append(int(part[2:], 16))
        elif len(part) > 1 and part[0] == "0":  # pragma: no mutate: 00-07 read the same in decimal
            values.append(int(part[1:], 8))
        elif len(part) > 10:  # pragma: no mutate: speed only; too big below too
            return None  # more than 2**32 (and int() of a huge decimal is slow)
        else:
            values.append(int(part))
    *leading, last = values
    if any(v > 0xFF for v in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    number = last
    for position, value in enumerate(leading):
        number |= value << (8 * (3 - position))
    return ipaddress.IPv4Address(number)


def parse_ip(host: str) -> IPAddress | None:
    """The address a host names when it is an IP literal in any accepted spelling."""
    text = normalise_host(host)
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return parse_ipv4(text)


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (mapped, translated, compatible, NAT64,
    6to4), or itself."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)  # drop any %zone
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if any(address in net for net in _EMBEDDING) or (address in _COMPATIBLE and int(address) > 1):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def always_refused(address: IPAddress) -> bool:
    candidates = {address, unwrap(address)}
    if isinstance(address, ipaddress.IPv6Address):
        candidates.add(ipaddress.IPv6Address(address.packed))
    return any(a in net for a in candidates for net in _ALWAYS_REFUSED if a.version == net.version)


def _refused_reason(shown: str, address: IPAddress) -> str:
    canonical = str(unwrap(address))
    spelled = shown if shown == canonical else f"{shown} ({canonical})"
    return f"{spelled} is a link-local / cloud metadata address; webhooks may not be delivered there"


@dataclass(frozen=True)
class WebhookPolicy:
    """The fixed refusals plus an optional allow list of host names and networks."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def from_allow_list(cls, entries: Iterable[str]) -> "WebhookPolicy":
        """Entries are ``HOST`` (a name or an address) or ``CIDR``; ValueError names a bad one."""
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            text = normalise_host(entry)
            if "/" in text:
                base, _, bits = text.partition("/")  # pragma: no mutate: a 2nd "/" fails either way
                address = parse_ip(base)
                if address is None or not bits.isdigit():  # pragma: no mutate: ip_interface below refuses alike
                    raise ValueError(f"webhook allow list: {entry!r} is not a HOST or CIDR")
                try:
                    networks.append(ipaddress.ip_interface(f"{address}/{bits}").network)  # host bits allowed
                except ValueError:
                    raise ValueError(f"webhook allow list: {entry!r} is not a HOST or CIDR") from None
            elif (address := parse_ip(text)) is not None:
                networks.append(ipaddress.ip_network(address))
            elif _NAME.fullmatch(text):
                names.add(text)
            else:
                raise ValueError(f"webhook allow list: {entry!r} is not a HOST or CIDR")
        return cls(frozenset(names), tuple(networks))

    @property
    def restricted(self) -> bool:
        return bool(self.names or self.networks)

    def _allowed_address(self, address: IPAddress) -> bool:
        return any(a in net for a in {address, unwrap(address)} for net in self.networks
                   if a.version == net.version)

    def check_host(self, host: str) -> str | None:
        """The URL's host, when a destination is saved (and before a delivery resolves it).
        A name that only resolution can judge against a network allow list passes here."""
        text = normalise_host(host)
        if text in METADATA_NAMES:
            return f"{text} is a cloud metadata address; webhooks may not be delivered there"
        address = parse_ip(text)
        if address is not None and always_refused(address):
            return _refused_reason(text, address)
        if not self.restricted or text in self.names:
            return None
        if address is not None:
            return None if self._allowed_address(address) else f"{text} is not in the webhook allow list"
        return None if self.networks else f"{text} is not in the webhook allow list"

    def check_address(self, host: str, address: IPAddress) -> str | None:
        """One address that the URL's host resolved to, at delivery time."""
        return self.refuses_address(address) or self.outside_allow_list(host, address)

    @staticmethod
    def refuses_address(address: IPAddress) -> str | None:
        """Refused whatever the allow list says."""
        return _refused_reason(str(address), address) if always_refused(address) else None

    def outside_allow_list(self, host: str, address: IPAddress) -> str | None:
        name = normalise_host(host)
        if not self.restricted or name in self.names or self._allowed_address(address):
            return None
        shown = name if parse_ip(name) == address else f"{name} ({unwrap(address)})"
        return f"{shown} is not in the webhook allow list"


def is_own_address(address: IPAddress, port: int, own: Iterable[tuple[str, int]],
                   is_local: Callable[[IPAddress], bool]) -> bool:
    """Whether connecting to ``address``:``port`` would reach one of the mock's own listening
    sockets ``own`` ((host, port) as served). A wildcard host (``0.0.0.0``, ``::``) listens on
    every local address; a host given as a name is treated the same way, so no name needs
    resolving here. Connecting to an unspecified address reaches the local host."""
    target = unwrap(address)
    for host, own_port in own:
        if own_port != port:
            continue
        listening = parse_ip(host) if host else None  # pragma: no mutate: parse_ip("") is None as well
        if listening is None or unwrap(listening).is_unspecified:
            if target.is_unspecified or target.is_loopback or is_local(target):
                return True
        elif target == unwrap(listening) or target.is_unspecified:
            return True
    return False
