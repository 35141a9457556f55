"""``m3ter-mock serve``: run the mock with uvicorn. ``m3ter-mock validate`` and
``m3ter-mock contract``: see ``mockserver/validate.py`` and ``mockserver/contract.py``."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="m3ter-mock", description="A stateful mock of the m3ter API.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the mock over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4010, help="4010 is where m3ter's SDK tests expect a mock")
    serve.add_argument("--client", action="append", default=[], metavar="ID:SECRET[:ORG,ORG...]",
                       help="accept only these API clients (repeatable; also M3TER_MOCK_CLIENTS)")
    serve.add_argument("--quiet", action="store_true", help="no per-request log lines")
    serve.add_argument("--delivery-attempts", type=int, default=5, metavar="N",
                       help="webhook delivery attempts before giving up (default 5)")
    serve.add_argument("--delivery-backoff", type=float, default=1.0, metavar="SECONDS",
                       help="delay before the first retry; doubles each time (default 1)")
    serve.add_argument("--export-dir", metavar="DIR",
                       help="also write data export files under DIR/<bucket>/<key>")
    from . import contract, validate

    validate.add_arguments(commands.add_parser(
        "validate", help="check an OpenAPI document: openapi-spec-validator and the project's lint"))
    contract.add_arguments(commands.add_parser(
        "contract", help="run the contract suite against a target and print the parity report"))
    args = parser.parse_args(argv)

    if args.command == "serve":
        return serve_forever(args)
    if args.command == "validate":
        return validate.run(args)
    if args.command == "contract":
        return contract.run(args)
    return 2


def serve_forever(args) -> int:
    import uvicorn

    from .app import create_app
    from .domain.delivery_policy import RetryPolicy
    from .settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        settings = Settings.from_environment(
            args.client, quiet=args.quiet, delivery_attempts=args.delivery_attempts,
            delivery_base_delay_seconds=args.delivery_backoff, export_dir=args.export_dir)
        RetryPolicy(settings.delivery_attempts, settings.delivery_base_delay_seconds)
    except ValueError as exc:
        print(f"m3ter-mock: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    mode = f"{len(settings.clients)} configured client(s)" if settings.clients else "any client id/secret"
    logging.getLogger("m3ter_mock").info("serving on http://%s:%d (%s)", args.host, args.port, mode)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
