"""Everything a running mock can be configured with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

from mockserver.domain.auth import Client, parse_client_spec, parse_clients_env


@dataclass
class Settings:
    clients: list[Client] = field(default_factory=list)
    validate_responses: bool = False
    quiet: bool = False
    token_lifetime_seconds: int = 18000
    frozen_clock: datetime | None = None
    delivery_attempts: int = 5
    delivery_base_delay_seconds: float = 1.0
    delivery_timeout_seconds: float = 10.0
    export_dir: str | None = None

    @classmethod
    def from_environment(cls, client_specs: list[str] | None = None, **overrides) -> "Settings":
        """Clients from ``--client`` values plus ``M3TER_MOCK_CLIENTS``."""
        clients = [parse_client_spec(s) for s in client_specs or []]
        clients += parse_clients_env(os.environ.get("M3TER_MOCK_CLIENTS", ""))
        return cls(clients=clients, **overrides)
