"""OAuth2 client credentials and bearer tokens.

By default any non-empty client id and secret get a token (as moto does), so a team can
point an SDK at the mock with whatever credentials its tests already use. With configured
clients only those work, each optionally bound to a set of organizations.

Tokens are signed, self-contained values (client, allowed orgs, expiry) rather than rows
in a table: the Python SDK fetches a new token before every call, and issuing one must
stay cheap and must not make the mock grow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from dataclasses import dataclass, field

from .clock import Clock
from .errors import MockError

TOKEN_PREFIX = "m3mock"


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str = field(repr=False)
    orgs: frozenset[str] | None = None  # None: every organization

    def may_access(self, org_id: str) -> bool:
        return self.orgs is None or org_id in self.orgs


def parse_client_spec(spec: str) -> Client:
    """``ID:SECRET[:ORG,ORG...]`` as given to ``--client`` or ``M3TER_MOCK_CLIENTS``."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"client {parts[0]!r}: expected ID:SECRET[:ORG,ORG...]")
    orgs = None
    if len(parts) == 3 and parts[2].strip():
        orgs = frozenset(o.strip() for o in parts[2].split(",") if o.strip())
    return Client(parts[0], parts[1], orgs)


def parse_clients_env(value: str) -> list[Client]:
    """Several client specs separated by whitespace or ``;``."""
    return [parse_client_spec(s) for s in value.replace(";", " ").split() if s]


@dataclass(frozen=True)
class TokenInfo:
    client_id: str
    orgs: frozenset[str] | None
    expires_at: int

    def check_org(self, org_id: str) -> None:
        if self.orgs is not None and org_id not in self.orgs:
            raise MockError(403, f"client {self.client_id!r} may not access organization {org_id!r}")


class Authenticator:
    def __init__(self, clock: Clock, secret: bytes, clients: list[Client] | None = None,
                 token_lifetime_seconds: int = 18000):
        self._clock = clock
        self._secret = secret
        self._clients = {c.client_id: c for c in clients or []}
        self.token_lifetime_seconds = token_lifetime_seconds

    @property
    def open_access(self) -> bool:
        return not self._clients

    def authenticate_client(self, client_id: str, secret: str) -> Client | None:
        if not client_id or not secret:
            return None
        if self.open_access:
            return Client(client_id, secret)
        known = self._clients.get(client_id)
        if known is None or not hmac.compare_digest(known.secret.encode(), secret.encode()):
            return None
        return known

    def issue_token(self, client: Client) -> tuple[str, int]:
        # Rounded up: a token issued within a second never expires before its lifetime.
        expires_at = math.ceil(self._clock.now().timestamp()) + self.token_lifetime_seconds
        payload = {"c": client.client_id, "e": expires_at}
        if client.orgs is not None:
            payload["o"] = sorted(client.orgs)
        claims = json.dumps(payload, separators=(",", ":")).encode()  # pragma: no mutate: any JSON spelling verifies
        body = base64.urlsafe_b64encode(claims).rstrip(
            b"=",  # pragma: no mutate: the claims end in "}", so their base64 never ends in the X mutmut adds
        )
        signature = hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:32]
        return f"{TOKEN_PREFIX}.{body.decode()}.{signature}", self.token_lifetime_seconds

    def verify_token(self, token: str) -> TokenInfo | None:
        """The token's claims, or None when it is not one this mock issued or it expired."""
        try:
            prefix, body, signature = token.split(".")
        except ValueError:
            return None
        expected = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:32]
        if prefix != TOKEN_PREFIX or not hmac.compare_digest(signature, expected):
            return None
        payload = json.loads(base64.urlsafe_b64decode(body + "=="))  # the decoder ignores '=' it does not need
        if payload["e"] <= self._clock.now().timestamp():
            return None
        orgs = frozenset(payload["o"]) if "o" in payload else None
        return TokenInfo(payload["c"], orgs, payload["e"])
