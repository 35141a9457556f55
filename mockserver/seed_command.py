"""``m3ter-mock seed``: write a fixture of a generated, realistic organization (Faker), for
``m3ter-mock serve --seed FILE``. Needs no running mock; ``POST
/_mock/organizations/{orgId}/seed`` loads the same data into a running one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FLAGS = {"seed": "--seed", "accounts": "--accounts", "products": "--products",
         "measurementsPerAccount": "--measurements-per-account", "start": "--start", "days": "--days"}


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .domain.seed_faker import DEFAULT_START, LIMITS, MAX_MEASUREMENTS

    def bounds(name: str) -> str:
        low, high = LIMITS[name]
        return f"{low}-{high}"

    parser.add_argument("--org", default="my-test-org", metavar="ORG_ID",
                        help="the organization the fixture fills (default my-test-org)")
    parser.add_argument("--seed", type=_whole, default=0, metavar="N",
                        help=f"the same seed gives the same data ({bounds('seed')}, default 0)")
    parser.add_argument("--accounts", type=_whole, default=10, metavar="N",
                        help=f"accounts to make ({bounds('accounts')}, default 10)")
    parser.add_argument("--products", type=_whole, default=3, metavar="N",
                        help=f"products to make ({bounds('products')}, default 3)")
    parser.add_argument("--measurements-per-account", type=_whole, default=100, metavar="N",
                        help=f"measurements of each account ({bounds('measurementsPerAccount')}, default 100; "
                             f"at most {MAX_MEASUREMENTS} in all)")
    parser.add_argument("--start", default=DEFAULT_START.isoformat(), metavar="YYYY-MM-DD",
                        help=f"the first day of the plans and measurements (default {DEFAULT_START.isoformat()})")
    parser.add_argument("--days", type=_whole, default=31, metavar="N",
                        help=f"days the measurements are spread over ({bounds('days')}, default 31)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the fixture here (JSON when FILE ends in .json, YAML otherwise); "
                             "default: YAML on standard output")


def run(args: argparse.Namespace) -> int:
    from .backend.seeding import dump_fixture
    from .domain.errors import MockError
    from .domain.seed_faker import SeedSize, generate, parse_start
    from .domain.seed_fixture import check_org_id

    try:
        check_org_id(args.org)
        size = SeedSize(seed=args.seed, accounts=args.accounts, products=args.products,
                        measurementsPerAccount=args.measurements_per_account,
                        start=parse_start(args.start, "--start"), days=args.days).check(FLAGS)
    except MockError as error:
        print(f"m3ter-mock: {error.message.replace('organizations: ', '--org: ', 1)}", file=sys.stderr)
        return 2
    document = {"organizations": {args.org: generate(size)}}
    name = args.output or "-"
    text = dump_fixture(document, name)
    if not name.lower().endswith(".json"):
        text = (f"# m3ter-mock fixture, made by: m3ter-mock seed --org {args.org} --seed {size.seed} "
                f"--accounts {size.accounts} --products {size.products} --measurements-per-account "
                f"{size.measurementsPerAccount} --start {size.start.isoformat()} --days {size.days}\n"
                f"# Load it with: m3ter-mock serve --seed FILE\n" + text)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"m3ter-mock: --output: {args.output!r} cannot be written ({error.strerror or error})", file=sys.stderr)
        return 2
    return 0
