"""Builds the mock: a Connexion 3 FlaskApp (ASGI) serving ``openapi/m3ter.yaml`` over one
backend. Request validation is always on; response validation is a setting (the test
suite turns it on)."""

from __future__ import annotations

import logging
from pathlib import Path

import json

import connexion
from connexion.jsonifier import Jsonifier
import yaml
from connexion.middleware import MiddlewarePosition
from connexion.resolver import Resolver

from mockserver.backend.core import Backend
from mockserver.domain.clock import Clock
from mockserver.domain.delivery_policy import RetryPolicy

from .api import errors
from .api.context import BACKEND_EXTENSION
from .api.limits import Limits, RequestLimits
from .api.middleware import MockMiddleware, compile_routes
from .api.registry import resolve, resolve_admin
from .api.validation import VALIDATOR_MAP
from . import resources
from .settings import Settings

# Shipped in the package (mockserver.openapi), so an installed mock serves from any folder.
SPEC_DIR = resources.spec_dir()
M3TER_SPEC = SPEC_DIR / "m3ter.yaml"
ADMIN_SPEC = SPEC_DIR / "admin.yaml"
ADMIN_BASE = "/_mock"


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_spec(path: Path = M3TER_SPEC) -> dict:
    # libyaml's loader when present: the pure-Python one costs most of a second here,
    # and the mock should start fast.
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    settings = settings or Settings()
    # Connexion warns once per call that the token endpoint takes JSON and form bodies;
    # that is by design here.
    logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)
    # Connexion logs every request's path at DEBUG, and a download URL's path is its secret.
    logging.getLogger("connexion.validators.parameter").setLevel(logging.INFO)
    backend = Backend(
        clock=Clock(frozen_at=settings.frozen_clock),
        clients=settings.clients,
        token_lifetime_seconds=settings.token_lifetime_seconds,
        retry_policy=RetryPolicy(settings.delivery_attempts, settings.delivery_base_delay_seconds),
        delivery_timeout_seconds=settings.delivery_timeout_seconds,
        export_dir=settings.export_dir,
        settings=settings,
    )
    spec = load_spec()
    # Compact JSON (Connexion's default indents), as m3ter answers and to keep pages small.
    app = connexion.FlaskApp(__name__, specification_dir=str(SPEC_DIR),
                             jsonifier=Jsonifier(json, separators=(",", ":")))
    app.add_api(
        spec,
        resolver=Resolver(function_resolver=resolve),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=None,
    )
    admin_spec = load_spec(ADMIN_SPEC)
    app.add_api(
        admin_spec,
        base_path=ADMIN_BASE,
        resolver=Resolver(function_resolver=resolve_admin),
        strict_validation=True,
        # Connexion would parse the JSONL export download as one JSON document; the admin
        # API is the mock's own, and its JSON responses are checked by the tests.
        validate_responses=False,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=None,
    )
    app.app.extensions[BACKEND_EXTENSION] = backend
    app.add_middleware(
        MockMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        backend=backend,
        routes=compile_routes(spec["paths"]) + compile_routes(admin_spec["paths"], ADMIN_BASE),
        passthrough_prefixes=("/openapi.json", "/ui", ADMIN_BASE + "/openapi.json", ADMIN_BASE + "/ui"),
        quiet=settings.quiet,
        admin_prefix=ADMIN_BASE,
        admin_token=settings.admin_token,
        public_admin_paths=(ADMIN_BASE + "/downloads/", ADMIN_BASE + "/openapi.json"),
        documents=("/openapi.json", ADMIN_BASE + "/openapi.json"),
    )
    # Added after MockMiddleware, so inside it: refused requests are logged too.
    app.add_middleware(RequestLimits, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       limits=Limits.from_settings(settings))
    errors.register(app)
    app.backend = backend
    app.settings = settings
    return app
