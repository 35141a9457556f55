"""``m3ter-mock serve``: run the mock with uvicorn. ``m3ter-mock validate`` and
``m3ter-mock contract``: see ``mockserver/validate.py`` and ``mockserver/contract.py``."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import warnings

from . import about, environment, logs


class _Version(argparse.Action):
    """``--version``, reading the installed version only when asked: the package metadata
    takes tens of milliseconds to find, on every start otherwise."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {about.version()}")
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    # Connexion imports Starlette's test client at start-up, which warns about httpx on every
    # run of the command; it concerns only tests, never the served mock.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    parser = argparse.ArgumentParser(prog="m3ter-mock", description="A stateful mock of the m3ter API.")
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the mock over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=4010, help="1-65535; 4010 is where m3ter's SDK tests expect a mock")
    serve.add_argument("--client", action="append", default=[], metavar="ID:SECRET[:ORG,ORG...]", type=_client,
                       help="accept only these API clients (repeatable; also M3TER_MOCK_CLIENTS)")
    serve.add_argument("--quiet", action="store_true", help="no per-request log lines")
    serve.add_argument("--delivery-attempts", type=int, default=5, metavar="N",
                       help="webhook delivery attempts before giving up (default 5)")
    serve.add_argument("--delivery-backoff", type=float, default=1.0, metavar="SECONDS",
                       help="delay before the first retry; doubles each time (default 1)")
    serve.add_argument("--export-dir", metavar="DIR",
                       help="also write data export files under DIR/<bucket>/<key> (never outside DIR)")
    serve.add_argument("--admin-token", metavar="TOKEN",
                       help="every /_mock call must carry it (also M3TER_MOCK_ADMIN_TOKEN); with --client "
                            "and no token, one is generated and printed once")
    serve.add_argument("--webhook-allow", action="append", default=[], metavar="HOST|CIDR",
                       help="deliver webhooks only to these hosts or networks (repeatable; also "
                            "M3TER_MOCK_WEBHOOK_ALLOW)")
    serve.add_argument("--max-body-bytes", type=_positive, default=1024 * 1024, metavar="N",
                       help="larger request bodies are answered 413 (default 1048576)")
    serve.add_argument("--retain-events", type=_positive, default=10_000, metavar="N",
                       help="Events kept per organization, oldest dropped first (default 10000)")
    serve.add_argument("--retain-deliveries", type=_positive, default=10_000, metavar="N",
                       help="delivery attempts kept per organization, oldest dropped first (default 10000)")
    serve.add_argument("--retain-export-files", type=_positive, default=100, metavar="N",
                       help="export jobs per organization whose files are kept, oldest dropped first (default 100)")
    serve.add_argument("--retain-journal", type=_non_negative, default=10_000, metavar="N",
                       help="requests kept in the request journal (GET /_mock/journal), oldest dropped first; "
                            "0 turns it off (default 10000)")
    serve.add_argument("--state-file", metavar="PATH",
                       help="load the store from PATH at start-up (if it exists) and save it there after changes "
                            "and at shutdown; a file that is not a whole state file stops start-up")
    serve.add_argument("--max-snapshots", type=_positive, default=20, metavar="N",
                       help="named snapshots kept at once (POST /_mock/snapshots); one more is refused (default 20)")
    serve.add_argument("--cors", action="append", default=[], metavar="ORIGIN|*", type=_origin,
                       help="let browser pages from ORIGIN (scheme://host[:port]; repeatable) or from any "
                            "origin (*) read the m3ter API's answers; never /_mock (default: off)")
    serve.add_argument("--log-format", choices=logs.FORMATS, default="text",
                       help="text lines, or one JSON object per line (default text)")
    serve.add_argument("--lenient", action="store_true",
                       help="Prism-compatible: any bearer token; an unknown id is answered with a generated "
                            "entity that is then stored; a PUT needs no version (default: off, faithful to m3ter)")
    serve.add_argument("--seed", action="append", default=[], metavar="FILE",
                       help="load this fixture (YAML or JSON; repeatable) into its organizations at start-up; "
                            "a bad one stops start-up, and nothing of it is loaded")
    from . import contract, validate

    validate.add_arguments(commands.add_parser(
        "validate", help="check an OpenAPI document: openapi-spec-validator and the project's lint"))
    contract.add_arguments(commands.add_parser(
        "contract", help="run the contract suite against a target and print the parity report"))
    from . import seed_command

    seed_command.add_arguments(commands.add_parser(
        "seed", help="write a fixture of a generated, realistic organization (Faker), for serve --seed"))
    # Last, so every serve flag (whoever added it) has its M3TER_MOCK_* variable.
    environment.document(serve)
    try:
        args = environment.parse_args(parser, serve, argv, os.environ)
    except ValueError as exc:
        print(f"m3ter-mock: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        return serve_forever(args)
    if args.command == "validate":
        return validate.run(args)
    if args.command == "contract":
        return contract.run(args)
    if args.command == "seed":
        return seed_command.run(args)
    return 2


def serve_forever(args) -> int:
    # Start-up time: while the app is built, the collector would walk the spec's many objects
    # again and again (a measured 0.1 s of about 1 s). It is back on once the server listens,
    # with what start-up made frozen (left out of every later collection), or when serving
    # ends without having started.
    gc.disable()
    try:
        return _serve(args)
    finally:
        gc.enable()


def _serve(args) -> int:
    import uvicorn

    from .app import create_app
    from .backend.seeding import SeedFileError
    from .backend.state import StateFileError
    from .domain.delivery_policy import RetryPolicy
    from .domain.webhook_policy import WebhookPolicy
    from .settings import Settings

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.formatter(args.log_format))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        settings = Settings.from_environment(
            args.client, environ={}, cors_origins=tuple(args.cors), quiet=args.quiet, delivery_attempts=args.delivery_attempts,
            delivery_base_delay_seconds=args.delivery_backoff, export_dir=args.export_dir,
            admin_token=args.admin_token, webhook_allow=args.webhook_allow,
            max_body_bytes=args.max_body_bytes, retain_events=args.retain_events,
            retain_delivery_attempts=args.retain_deliveries, retain_export_files=args.retain_export_files,
            state_file=args.state_file, max_snapshots=args.max_snapshots, retain_journal=args.retain_journal,
            seed_files=tuple(args.seed), lenient=args.lenient)
        RetryPolicy(settings.delivery_attempts, settings.delivery_base_delay_seconds)
        WebhookPolicy.from_allow_list(settings.webhook_allow)
    except ValueError as exc:
        print(f"m3ter-mock: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings)
    except (StateFileError, SeedFileError) as exc:
        print(f"m3ter-mock: {exc}", file=sys.stderr)
        return 2
    app.backend.own_addresses.add((args.host, args.port))
    mode = f"{len(settings.clients)} configured client(s)" if settings.clients else "any client id/secret"
    if settings.lenient:
        mode += "; lenient: any bearer token, unknown ids generated"
    if settings.admin_token_generated:
        # Printed once, on stdout only (never through the log): the one way to learn it.
        print(f"m3ter-mock: admin token for /_mock (generated; pass --admin-token to choose one): "
              f"{settings.admin_token}", flush=True)
    control = "admin token required" if settings.admin_token else "open to anyone who reaches the port"
    logging.getLogger("m3ter_mock").info("serving on http://%s:%d (%s; /_mock %s)", args.host, args.port, mode,
                                         control)
    # As JSON, uvicorn's own records go through the same handler (log_config=None leaves
    # logging as set up here) so that every line is one object.
    uvicorn_logging = {"log_config": None} if args.log_format == "json" else {}
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            **uvicorn_logging)
    server = collector_back_on_when_listening(uvicorn.Server, sweep_first=bool(settings.seed_files or settings.state_file))(
        config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        app.backend.state.close()  # the last save of the state file, if there is one
    return 0 if server.started else 3  # uvicorn's exit status for a failed start


def collector_back_on_when_listening(server_class, sweep_first: bool):
    """``server_class`` (uvicorn's Server) that turns the collector back on once it listens:
    by then the app's lifespan start-up has built Connexion's middleware too."""

    class Server(server_class):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if sweep_first:
                gc.collect()  # loading fixtures or a state file may have left cycles; not frozen
            gc.freeze()
            gc.enable()

    return Server


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is out of range; a port is 1-65535")
    return value


def _client(text: str) -> str:
    from .domain.auth import parse_client_spec

    try:
        parse_client_spec(text)  # its message names the id, never the secret
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _origin(text: str) -> str:
    from .domain.cors import parse_origin

    try:
        return parse_origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
    return value


def _non_negative(text: str) -> int:
    return _whole_number(text, 0)


def _positive(text: str) -> int:
    return _whole_number(text, 1)


if __name__ == "__main__":
    sys.exit(main())
