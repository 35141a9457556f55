"""Where the contract suite sends its requests, chosen by one switch, and how much it sends.

``M3TER_CONTRACT_TARGET`` (or ``pytest --contract-target``):

* ``mock`` (the default): both of the next two.
* ``inprocess``: the mock app itself, called through its ASGI interface; no network.
* ``http``: the mock served by the suite on ``127.0.0.1:<free port>``, reached over HTTP with
  the same token flow as a real org (the suite starts and stops the server).
* ``url``: ``M3TER_BASE_URL`` with the client credentials ``M3TER_API_KEY`` /
  ``M3TER_API_SECRET`` and the organization ``M3TER_ORG_ID``. Against a host that is not
  loopback only read operations run, unless ``M3TER_CONTRACT_ALLOW_WRITES=1``
  (``M3TER_CONTRACT_ALLOW_WRITES=0`` makes a loopback run read-only too).

Sizes: ``M3TER_CONTRACT_EXAMPLES`` (fuzzing examples per hand-written operation, default 50;
the other operations get a fifth of it: ``policy.SIZES``),
``M3TER_CONTRACT_STATEFUL_EXAMPLES`` (stateful scenarios per target, shared among the groups
of linked families, default 200) and
``M3TER_CONTRACT_SEED`` (default: a fresh random seed, printed so a run can be replayed).
With both mock targets, each runs in a pytest process of its own at the same time as the rest
of the run (``M3TER_CONTRACT_PARALLEL=0`` keeps them in this one); see ``contracts/delegate.py``.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import random
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

ENV_TARGET = "M3TER_CONTRACT_TARGET"
ENV_EXAMPLES = "M3TER_CONTRACT_EXAMPLES"
ENV_STATEFUL_EXAMPLES = "M3TER_CONTRACT_STATEFUL_EXAMPLES"
ENV_SEED = "M3TER_CONTRACT_SEED"
ENV_ALLOW_WRITES = "M3TER_CONTRACT_ALLOW_WRITES"
ENV_PARALLEL = "M3TER_CONTRACT_PARALLEL"  # 0: run both mock targets in one process
ENV_APP = "M3TER_CONTRACT_APP"  # module:factory building the mock app (the suite's own self-test uses it)
# The admin token of the mock the suite serves over HTTP: the suite chooses it and hands it
# down to the server process (see ``suite._serve``), then sends it on its /_mock calls.
ENV_ADMIN_TOKEN = "M3TER_CONTRACT_ADMIN_TOKEN"

TARGET_CHOICES = ("mock", "inprocess", "http", "url")
DEFAULT_EXAMPLES = 50
DEFAULT_STATEFUL_EXAMPLES = 200

# Credentials the suite uses against its own mock (any non-empty pair works there).
MOCK_CLIENT_ID = "m3ter-mock-contract-suite"
MOCK_CLIENT_PASSWORD = "contract-suite-pass"
MOCK_ORG_ID = "contract-suite-org"
# Tokens of the suite's mock last 2 minutes (m3ter's last hours), so every run also proves
# that the suite fetches a new token before the old one expires.
MOCK_TOKEN_LIFETIME_SECONDS = 120


class TargetError(ValueError):
    """The switch or the environment does not describe a usable target."""


@dataclass(frozen=True)
class RunOptions:
    targets: tuple[str, ...]
    examples: int
    stateful_examples: int
    seed: int
    seed_given: bool
    delegated: tuple[str, ...] = ()  # targets run by pytest processes of their own, concurrently

    @property
    def replay_hint(self) -> str:
        return f"{ENV_SEED}={self.seed}"


@dataclass
class Target:
    """One system under test."""

    name: str  # inprocess | http | url
    org_id: str
    client_id: str
    client_password: str = field(repr=False)
    base_url: str | None = None  # None: in-process
    app: Any = None  # the mock app, for the in-process target
    is_mock: bool = False  # the suite's own mock (its error messages are known word for word)
    writes: bool = True
    admin_token: str | None = field(default=None, repr=False)  # for the suite's own mock's /_mock

    @property
    def over_http(self) -> bool:
        return self.app is None

    def reset(self) -> None:
        """Empty the in-process mock (a mock over HTTP, like a real org, is cleaned up by
        deleting what the run created)."""
        if self.app is not None:
            self.app.backend.reset()


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TargetError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise TargetError(f"{name}={value} is below the minimum of {minimum}")
    return value


def run_options(target: str | None = None, examples: int | None = None,
                stateful_examples: int | None = None, seed: int | None = None) -> RunOptions:
    """Options from pytest's command line, falling back on the environment."""
    choice = (target or os.environ.get(ENV_TARGET) or "mock").strip().lower()
    if choice not in TARGET_CHOICES:
        raise TargetError(f"{ENV_TARGET}={choice!r}: choose one of {', '.join(TARGET_CHOICES)}")
    targets = ("inprocess", "http") if choice == "mock" else (choice,)
    examples = examples if examples is not None else _env_int(ENV_EXAMPLES, DEFAULT_EXAMPLES, 1)
    stateful = stateful_examples if stateful_examples is not None else _env_int(
        ENV_STATEFUL_EXAMPLES, DEFAULT_STATEFUL_EXAMPLES, 1)
    seed_given = seed is not None or bool(os.environ.get(ENV_SEED, "").strip())
    if seed is None:
        seed = _env_int(ENV_SEED, random.SystemRandom().randrange(1, 2**31), 0)
    parallel = os.environ.get(ENV_PARALLEL, "1").strip().lower() not in ("0", "false", "no", "off")
    # Each mock target in a pytest process of its own, started when collection ends, while this
    # one runs the rest of the run (the unit tests): the work then spreads over both cores.
    delegated = targets if parallel and targets == ("inprocess", "http") else ()
    return RunOptions(targets=targets, examples=examples, stateful_examples=stateful,
                      seed=seed, seed_given=seed_given, delegated=delegated)


def is_loopback(base_url: str) -> bool:
    """A loopback address or ``localhost``; any other name counts as remote (it is not
    resolved: a name that happens to resolve to 127.0.0.1 is still treated with care)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def make_mock_app():
    """The mock under test: ``create_app(mock_settings())`` (response validation off: the
    suite checks every response against the spec itself), or the factory named by
    ``M3TER_CONTRACT_APP`` (``module:function``)."""
    spec = os.environ.get(ENV_APP, "").strip()
    if spec:
        module_name, _, function = spec.partition(":")
        app = getattr(importlib.import_module(module_name), function or "create_app")()
    else:
        from mockserver.app import create_app

        app = create_app(mock_settings())
    keep_deliveries_local(app)
    return app


def mock_settings(**overrides):
    """The mock as the suite runs it: like a real org, only the suite's own client gets a
    token (invalid credentials are a 401), and only for the suite's organization; tokens
    are short-lived (see ``MOCK_TOKEN_LIFETIME_SECONDS``). As ``m3ter-mock serve`` does in
    strict mode, its admin API needs an admin token: the one in ``M3TER_CONTRACT_ADMIN_TOKEN``,
    else a fresh one."""
    from mockserver.domain.auth import Client
    from mockserver.settings import Settings

    client = Client(MOCK_CLIENT_ID, MOCK_CLIENT_PASSWORD, frozenset({MOCK_ORG_ID}))
    admin_token = os.environ.get(ENV_ADMIN_TOKEN, "").strip() or secrets.token_urlsafe(24)
    return Settings(**{"clients": [client], "validate_responses": False, "quiet": True,
                       "token_lifetime_seconds": MOCK_TOKEN_LIFETIME_SECONDS, "admin_token": admin_token,
                       **overrides})


def keep_deliveries_local(app) -> None:
    """Generated webhook URLs name arbitrary hosts, and the stateful phase links webhooks to
    notifications that fire: the mock under test answers its own deliveries (204) instead
    of sending them anywhere."""
    app.backend.deliveries.local_answer = lambda url, headers, body: 204


def mock_target(name: str, *, app=None, base_url: str | None = None, admin_token: str | None = None) -> Target:
    if app is not None:
        admin_token = getattr(getattr(app, "settings", None), "admin_token", None)
    return Target(name=name, org_id=MOCK_ORG_ID, client_id=MOCK_CLIENT_ID, client_password=MOCK_CLIENT_PASSWORD,
                  base_url=base_url, app=app, is_mock=True, writes=True, admin_token=admin_token)


def url_target() -> Target:
    missing = [name for name in ("M3TER_BASE_URL", "M3TER_API_KEY", "M3TER_API_SECRET", "M3TER_ORG_ID")
               if not os.environ.get(name, "").strip()]
    if missing:
        raise TargetError(f"{ENV_TARGET}=url needs {', '.join(missing)}")
    base_url = os.environ["M3TER_BASE_URL"].strip().rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"M3TER_BASE_URL={base_url!r} is not an http(s) URL")
    allow = os.environ.get(ENV_ALLOW_WRITES, "").strip()
    # Unset: writes only against loopback. 1: writes anywhere. 0: read-only even on loopback.
    writes = _truthy(allow) if allow else is_loopback(base_url)
    return Target(name="url", org_id=os.environ["M3TER_ORG_ID"].strip(),
                  client_id=os.environ["M3TER_API_KEY"].strip(),
                  client_password=os.environ["M3TER_API_SECRET"], base_url=base_url, writes=writes)
