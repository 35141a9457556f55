"""Everything a running mock can be configured with."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from mockserver.domain.auth import Client, parse_client_spec, parse_clients_env

ADMIN_TOKEN_ENV = "M3TER_MOCK_ADMIN_TOKEN"
WEBHOOK_ALLOW_ENV = "M3TER_MOCK_WEBHOOK_ALLOW"


@dataclass
class Settings:
    clients: list[Client] = field(default_factory=list)
    validate_responses: bool = False
    quiet: bool = False
    token_lifetime_seconds: int = 18000
    frozen_clock: datetime | None = None
    delivery_attempts: int = 5
    delivery_base_delay_seconds: float = 1.0
    # A total deadline per delivery attempt (connect, send and read), not a per-read one.
    delivery_timeout_seconds: float = 10.0
    # A receiver's reply is read up to this many bytes; the rest is never read.
    delivery_max_response_bytes: int = 64 * 1024
    export_dir: str | None = None

    # -- the control plane --------------------------------------------------------------
    # When set, every /_mock call needs it (``Authorization: Bearer <token>`` or
    # ``X-m3ter-mock-admin-token``); download URLs stay usable without it (they are signed).
    admin_token: str | None = field(default=None, repr=False)
    admin_token_generated: bool = False
    # Webhook deliveries only to these hosts / networks (HOST or CIDR); empty: anywhere
    # that the fixed policy (no link-local, no cloud metadata, never the mock) allows.
    webhook_allow: tuple[str, ...] = ()
    # Browser origins (or "*") that may read the m3ter API's answers; empty: CORS off.
    cors_origins: tuple[str, ...] = ()

    # -- limits on one request ------------------------------------------------------------
    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 32 * 1024
    max_query_bytes: int = 8 * 1024
    max_json_depth: int = 32

    # -- retention (oldest dropped first), so a long run stays flat -----------------------
    retain_events: int = 10_000  # Events per organization
    retain_delivery_attempts: int = 10_000  # delivery attempts per organization
    retain_export_files: int = 100  # export jobs per organization whose files are kept
    retain_download_grants: int = 10_000  # unexpired download URLs, in all

    # -- snapshots and the state file (mockserver/backend/state.py) ------------------------
    max_snapshots: int = 20  # named snapshots kept at once; one more is a 409
    # The store is loaded from here at start-up and saved here after changes; None: in memory only.
    state_file: str | None = None
    # A change is saved this long after the first unsaved one (changes in between are saved
    # with it), and at shutdown.
    state_save_delay_seconds: float = 1.0
    retain_journal: int = 10_000  # requests in the request journal, in all; 0 turns it off
    # Prism-compatible: any bearer token, every id names an entity, prose-only rules relaxed
    # (mockserver/backend/lenient.py).
    lenient: bool = False
    # Fixture files (YAML or JSON) loaded into their organizations at start-up, in order
    # (mockserver/backend/seeding.py); an organization the state file filled is left as it is.
    seed_files: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, client_specs: list[str] | None = None, environ=None, **overrides) -> "Settings":
        """Clients from ``--client`` values plus ``M3TER_MOCK_CLIENTS``; the admin token from
        ``overrides`` or ``M3TER_MOCK_ADMIN_TOKEN``; webhook allow-list entries from both
        ``overrides`` and ``M3TER_MOCK_WEBHOOK_ALLOW``. With clients configured (strict mode)
        the control plane is never open: without a given token one is generated. ``environ``
        (default ``os.environ``): the CLI passes ``{}``, having read every variable itself."""
        environ = os.environ if environ is None else environ
        clients = [parse_client_spec(s) for s in client_specs or []]
        clients += parse_clients_env(environ.get("M3TER_MOCK_CLIENTS", ""))
        admin_token = overrides.pop("admin_token", None) or environ.get(ADMIN_TOKEN_ENV) or None
        generated = False
        if clients and not admin_token:
            admin_token, generated = secrets.token_urlsafe(24), True
        allow = tuple(overrides.pop("webhook_allow", None) or ())
        allow += tuple(p for p in environ.get(WEBHOOK_ALLOW_ENV, "").replace(",", " ").split() if p)
        return cls(clients=clients, admin_token=admin_token, admin_token_generated=generated,
                   webhook_allow=allow, **overrides)
