"""Builds the mock: a Connexion 3 FlaskApp (ASGI) serving ``openapi/m3ter.yaml`` over one
backend. Request validation is always on; response validation is a setting (the test
suite turns it on)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import json

from .api.startup import LazyBuildRule, deferred_imports, faster_spec_copies

# Start-up time: what these import but the mock seldom uses is imported when first used.
with deferred_imports():
    import connexion
    from connexion.jsonifier import Jsonifier
    from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
    from connexion.middleware.routing import RoutingMiddleware
    from connexion.middleware.swagger_ui import SwaggerUIMiddleware
    from connexion.resolver import Resolver
    from connexion.spec import OpenAPISpecification

    from mockserver.backend.core import Backend
    from mockserver.backend.lenient import lenient_spec
    from mockserver.backend.seeding import read_fixture_file
    from mockserver.backend.state import read_state_file
    from mockserver.domain.clock import Clock
    from mockserver.domain.delivery_policy import RetryPolicy

    from .api import errors
    from .api.admin_journal import operation_resolver
    from .api.context import BACKEND_EXTENSION
    from .api.faults import ConnectionHandle, FaultInjection
    from .api.lenient import lenient_resolver
    from .api.inline_wsgi import InlineWSGI
    from .api.routing import DocumentsOnlySwaggerUI, IndexedRoutingMiddleware
    from .api.security import SECURITY_MAP
    from .api.cors import CorsMiddleware
    from .domain.cors import CorsPolicy
    from .api.limits import Limits, RequestLimits
    from .api.state_changes import StateChanges, saved_at_shutdown
    from .api.middleware import MockMiddleware, compile_routes, ordered_paths
    from .api.registry import resolve_admin, resolver_for
    from .api.validation import VALIDATOR_MAP
    from . import resources
    from .settings import Settings

# Shipped in the package (mockserver.openapi), so an installed mock serves from any folder.
SPEC_DIR = resources.spec_dir()
M3TER_SPEC = SPEC_DIR / "m3ter.yaml"
ADMIN_SPEC = SPEC_DIR / "admin.yaml"
ADMIN_BASE = "/_mock"


def load_spec(path: Path = M3TER_SPEC) -> dict:
    # From the spec's parsed copy when it is current: parsing the YAML is most of a second.
    return resources.read_spec(path)


@contextlib.contextmanager
def _spec_already_validated(trusted: bool):
    """Connexion validates a spec against the OpenAPI schema each time it loads one: over
    a second for the whole m3ter API, at every start. The specs the package ships are
    validated by the test suite and by ``m3ter-mock validate`` (openapi-spec-validator,
    which checks more), so for those the check is skipped; any other spec is checked."""
    if not trusted:
        yield
        return
    OpenAPISpecification._validate_spec = classmethod(lambda cls, spec: None)
    try:
        yield
    finally:
        del OpenAPISpecification._validate_spec  # back to the inherited check


faster_spec_copies()


def _middlewares() -> list:
    """Connexion's own stack, with routing that looks up a route instead of trying each in
    turn, and the documents' middleware entered only for the documents (api/routing.py). A new
    list per app: Connexion adds the app's own middleware to the list it is given."""
    replaced = {RoutingMiddleware: IndexedRoutingMiddleware, SwaggerUIMiddleware: DocumentsOnlySwaggerUI}
    return [replaced.get(layer, layer) for layer in ConnexionMiddleware.default_middlewares]


def create_app(settings: Settings | None = None, spec_path: str | Path | None = None) -> connexion.FlaskApp:
    """The mock over ``spec_path`` (default: the m3ter.yaml the package ships)."""
    settings = settings or Settings()
    # First: a state file that cannot be loaded stops start-up before anything else is done.
    loaded = read_state_file(settings.state_file) if settings.state_file else None
    # So does a seed file that cannot be read; its entities are checked once the backend exists.
    seeds = [(path, read_fixture_file(path)) for path in settings.seed_files]
    spec = load_spec(Path(spec_path) if spec_path is not None else M3TER_SPEC)
    if settings.lenient:
        spec = lenient_spec(spec)  # what m3ter states only in prose, relaxed (backend/lenient.py)
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
        spec=spec,
    )
    # Compact JSON (Connexion's default indents), as m3ter answers and to keep pages small.
    app = connexion.FlaskApp(__name__, specification_dir=str(SPEC_DIR), middlewares=_middlewares(),
                             security_map=SECURITY_MAP,
                             jsonifier=Jsonifier(json, separators=(",", ":")),
                             lifespan=saved_at_shutdown(backend.state) if settings.state_file else None)
    app._middleware_app.asgi_app = InlineWSGI(app.app.wsgi_app)
    app.app.url_rule_class = LazyBuildRule
    with _spec_already_validated(spec_path is None):
        admin_spec = _add_apis(app, spec, settings, backend)
    app.app.extensions[BACKEND_EXTENSION] = backend
    backend.journal.resolve_operation = operation_resolver(spec["paths"])
    # Outermost (it answers nothing): keeps the server's own receive, which a dropping fault needs.
    app.add_middleware(ConnectionHandle, position=MiddlewarePosition.BEFORE_EXCEPTION)
    cors = CorsPolicy.from_values(settings.cors_origins)
    if cors is not None:
        # Added first, so outside the others: their early answers (401, 404, 413...) get it too.
        app.add_middleware(CorsMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, policy=cors,
                           excluded_prefix=ADMIN_BASE)
    app.add_middleware(
        MockMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        backend=backend,
        routes=compile_routes(spec["paths"]) + compile_routes(admin_spec["paths"], ADMIN_BASE),
        passthrough_prefixes=("/openapi.json", "/ui", ADMIN_BASE + "/openapi.json", ADMIN_BASE + "/ui"),
        quiet=settings.quiet,
        admin_prefix=ADMIN_BASE,
        admin_token=settings.admin_token,
        # /health: probes (a load balancer, a container's health check) carry no token, and it
        # tells nothing an admin token guards (openapi/admin.yaml, GetHealth).
        public_admin_paths=(ADMIN_BASE + "/downloads/", ADMIN_BASE + "/uploads/", ADMIN_BASE + "/openapi.json",
                            ADMIN_BASE + "/health"),
        documents=("/openapi.json", ADMIN_BASE + "/openapi.json"),
    )
    # Inside MockMiddleware (unknown paths, 405s and the admin token come first), before
    # everything else: an injected fault never reaches security, validation or a handler.
    app.add_middleware(FaultInjection, position=MiddlewarePosition.BEFORE_EXCEPTION, backend=backend,
                       spec_paths=spec["paths"], admin_prefix=ADMIN_BASE,
                       max_body_bytes=settings.max_body_bytes)
    # Added after MockMiddleware, so inside it: refused requests are logged too.
    app.add_middleware(RequestLimits, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       limits=Limits.from_settings(settings))
    if settings.state_file:
        backend.state.open_file(settings.state_file, loaded)
        app.add_middleware(StateChanges, position=MiddlewarePosition.BEFORE_EXCEPTION, state=backend.state)
    if seeds:
        # After the state file, so that an organization it filled is not seeded again.
        backend.seeding.load_files(seeds)
    errors.register(app)
    app.backend = backend
    app.settings = settings
    return app


def _add_apis(app: connexion.FlaskApp, spec: dict, settings: Settings, backend: Backend) -> dict:
    """Adds the m3ter API and, under ``/_mock``, the admin API; returns the admin spec."""
    # Literal path segments win over parameters: Connexion tries routes in the order given.
    app.add_api(
        {**spec, "paths": ordered_paths(spec["paths"])},
        resolver=Resolver(function_resolver=lenient_resolver(resolver_for(spec), spec, backend.resources)
                          if settings.lenient else resolver_for(spec)),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=None,
    )
    admin_spec = load_spec(ADMIN_SPEC)
    app.add_api(
        {**admin_spec, "paths": ordered_paths(admin_spec["paths"])},
        base_path=ADMIN_BASE,
        resolver=Resolver(function_resolver=resolve_admin),
        strict_validation=True,
        # Connexion would parse the JSONL export download as one JSON document; the admin
        # API is the mock's own, and its JSON responses are checked by the tests.
        validate_responses=False,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=None,
    )
    return admin_spec
