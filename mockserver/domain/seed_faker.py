"""A coherent, realistic organization made with Faker, as a fixture (``seed_fixture``): what
``m3ter-mock seed`` writes and ``POST /_mock/organizations/{orgId}/seed`` loads.

What it holds, for ``products`` offerings taken from a catalogue of usage-priced services
(storage, API requests, compute...):

* per product: a Meter (a MEASURE field with its unit, a WHERE ``region``, a WHO ``user``),
  two Aggregations (the measure's SUM, or MAX for seats, and a COUNT of measurements), a
  Compound Aggregation (the measure in thousands), a monthly USD Plan Template, two Plans
  (Standard, and Premium with a standing charge) and their Pricings: Standard prices the
  measure in three tiers, Premium prices the thousands in three volume bands;
* ``accounts`` Accounts (Faker company names, billing e-mail addresses, US postal
  addresses), each on one to three of the products' Plans from ``start``, about a third of
  them with a Commitment for the year from ``start``;
* per Account, ``measurementsPerAccount`` measurements of its products' meters, spread
  over the ``days`` from ``start``.

Deterministic: one Faker instance seeded with ``seed`` draws everything in a fixed order,
so the same seed (and sizes, and Faker version) gives the same document. Nothing reads
the clock. Sizes are bounded (``LIMITS``) so one request's CPU and memory are too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping

from .errors import MockError


@dataclass(frozen=True)
class Offering:
    name: str
    code: str
    field: str          # the MEASURE data field's code
    field_name: str
    unit: str
    function: str       # the main aggregation's
    typical: float      # a typical measured value
    whole: bool = False  # values are whole numbers


CATALOGUE = (
    Offering("Object Storage", "storage", "gb_hours", "GB-hours stored", "GB-h", "SUM", 40.0),
    Offering("API Requests", "api", "requests", "Requests", "requests", "SUM", 500, whole=True),
    Offering("Compute", "compute", "vcpu_hours", "vCPU hours", "h", "SUM", 3.0),
    Offering("Data Transfer", "transfer", "gb_out", "GB transferred out", "GB", "SUM", 2.5),
    Offering("Team Seats", "seats", "active_users", "Active users", "users", "MAX", 25, whole=True),
    Offering("Messaging", "messaging", "messages", "Messages sent", "messages", "SUM", 120, whole=True),
    Offering("Log Analytics", "logs", "gb_ingested", "GB ingested", "GB", "SUM", 1.2),
    Offering("Video Streaming", "streaming", "minutes", "Minutes streamed", "min", "SUM", 45.0),
)
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
STANDING_CHARGES = (29, 49, 99, 199)
COMMITMENTS = (1000, 2500, 5000, 10000, 25000)

LIMITS = {
    "seed": (0, 2**31 - 1),
    "accounts": (1, 1000),
    "products": (1, len(CATALOGUE)),
    "measurementsPerAccount": (0, 10_000),
    "days": (1, 366),
}
MAX_MEASUREMENTS = 200_000  # accounts x measurementsPerAccount
DEFAULT_START = date(2025, 1, 1)


@dataclass(frozen=True)
class SeedSize:
    seed: int = 0
    accounts: int = 10
    products: int = 3
    measurementsPerAccount: int = 100
    start: date = DEFAULT_START
    days: int = 31

    def check(self, names: Mapping[str, str] | None = None) -> "SeedSize":
        """A 400 naming the field (as ``names`` spells it) for a size beyond its bounds."""
        def label(name: str) -> str:
            return (names or {}).get(name, name)

        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise MockError.bad_request(f"{label(name)}: {value!r} is outside {low}-{high}")
        total = self.accounts * self.measurementsPerAccount
        if total > MAX_MEASUREMENTS:
            raise MockError.bad_request(
                f"{label('measurementsPerAccount')}: {label('accounts')} x {label('measurementsPerAccount')} is "
                f"{total}; at most {MAX_MEASUREMENTS} measurements are made at once")
        return self


def parse_start(text: Any, name: str = "start") -> date:
    """A period's first day, ``YYYY-MM-DD``; a 400 naming ``name`` otherwise."""
    if isinstance(text, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise MockError.bad_request(f"{name}: {str(text)[:40]!r} is not a date (YYYY-MM-DD)")


def _faker(seed: int):
    from faker import Faker  # imported on use: a second of start-up the mock does not need otherwise

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return fake


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "account"


def _instant(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def generate(size: SeedSize) -> dict:
    """One organization's part of a fixture document (groups of entities by reference name,
    then ``measurements``), in the order they can be created."""
    size.check()
    fake = _faker(size.seed)
    rnd = fake.random
    start = size.start
    offerings = rnd.sample(CATALOGUE, size.products)
    doc: dict[str, Any] = {group: {} for group in (
        "products", "meters", "aggregations", "compoundaggregations", "plantemplates", "plans", "pricings",
        "accounts", "accountplans", "commitments")}
    plans: dict[str, list[str]] = {}
    for offer in offerings:
        _catalogue_entities(doc, offer, rnd, start)
        plans[offer.code] = [f"{offer.code}_standard", f"{offer.code}_premium"]

    accounts = []
    used: set[str] = set()
    for _ in range(size.accounts):
        company = fake.unique.company()
        code = _slug(company)
        while code in used:
            code = f"{_slug(company)[:55]}-{rnd.randint(2, 9999)}"
        used.add(code)
        doc["accounts"][code] = {
            "name": company, "code": code, "emailAddress": f"billing@{code}.example", "currency": "USD",
            "daysBeforeBillDue": rnd.choice((7, 14, 30)),
            "address": {"addressLine1": fake.street_address()[:50], "locality": fake.city()[:100],
                        "region": fake.state_abbr(), "postCode": fake.postcode(), "country": "US"},
        }
        chosen = rnd.sample(offerings, rnd.randint(1, min(3, len(offerings))))
        for offer in chosen:
            plan = plans[offer.code][0 if rnd.random() < 0.7 else 1]
            doc["accountplans"][f"{code}.{offer.code}"] = {
                "accountId": f"@accounts/{code}", "planId": f"@plans/{plan}", "startDate": _instant(start)}
        if rnd.random() < 1 / 3:
            doc["commitments"][code] = {
                "accountId": f"@accounts/{code}", "amount": rnd.choice(COMMITMENTS), "currency": "USD",
                "startDate": start.isoformat(), "endDate": _year_after(start).isoformat()}
        accounts.append((code, chosen))

    doc["measurements"] = _measurements(size, accounts, rnd)
    return doc


def _catalogue_entities(doc: dict, offer: Offering, rnd, start: date) -> None:
    code = offer.code
    doc["products"][code] = {"name": offer.name, "code": code}
    doc["meters"][code] = {
        "productId": f"@products/{code}", "name": offer.name, "code": code, "derivedFields": [],
        "dataFields": [{"category": "MEASURE", "code": offer.field, "name": offer.field_name, "unit": offer.unit},
                       {"category": "WHERE", "code": "region", "name": "Region"},
                       {"category": "WHO", "code": "user", "name": "User"}]}
    main, count = f"{code}_{offer.field}", f"{code}_events"
    doc["aggregations"][main] = {
        "meterId": f"@meters/{code}", "name": offer.field_name, "code": main, "aggregation": offer.function,
        "targetField": offer.field, "rounding": "NONE", "quantityPerUnit": 1, "unit": offer.unit}
    doc["aggregations"][count] = {
        "meterId": f"@meters/{code}", "name": f"{offer.name} events", "code": count, "aggregation": "COUNT",
        "targetField": offer.field, "rounding": "NONE", "quantityPerUnit": 1, "unit": "events"}
    thousands = f"{code}_thousands"
    doc["compoundaggregations"][thousands] = {
        "productId": f"@products/{code}", "name": f"{offer.field_name} (thousands)", "code": thousands,
        "calculation": f"{main} / 1000", "rounding": "NONE", "quantityPerUnit": 1, "unit": f"k {offer.unit}"[:50]}
    template = f"{code}_monthly"
    doc["plantemplates"][template] = {
        "productId": f"@products/{code}", "name": f"{offer.name} monthly", "code": template,
        "billFrequency": "MONTHLY", "currency": "USD", "standingCharge": 0}
    doc["plans"][f"{code}_standard"] = {
        "planTemplateId": f"@plantemplates/{template}", "name": f"{offer.name} Standard",
        "code": f"{code}_standard"}
    doc["plans"][f"{code}_premium"] = {
        "planTemplateId": f"@plantemplates/{template}", "name": f"{offer.name} Premium",
        "code": f"{code}_premium", "standingCharge": rnd.choice(STANDING_CHARGES),
        "standingChargeDescription": f"{offer.name} Premium subscription"}
    price = round(rnd.uniform(0.5, 5.0) / max(offer.typical, 1), 4) or 0.0001
    volume = max(offer.typical * 100, 10)
    tiers = (0, round(volume), round(volume * 10))
    doc["pricings"][f"{code}_standard"] = {
        "planId": f"@plans/{code}_standard", "aggregationId": f"@aggregations/{main}",
        "startDate": _instant(start), "cumulative": True, "description": f"{offer.field_name}, tiered",
        "pricingBands": [{"lowerLimit": low, "fixedPrice": 0, "unitPrice": round(price * factor, 4)}
                         for low, factor in zip(tiers, (1.0, 0.8, 0.6))]}
    per_thousand = round(price * 1000 * 0.9, 2)
    doc["pricings"][f"{code}_premium"] = {
        "planId": f"@plans/{code}_premium", "compoundAggregationId": f"@compoundaggregations/{thousands}",
        "startDate": _instant(start), "cumulative": False, "description": f"{offer.field_name} per thousand, volume",
        "pricingBands": [{"lowerLimit": low, "fixedPrice": 0, "unitPrice": round(per_thousand * factor, 2)}
                         for low, factor in zip((0, 10, 100), (1.0, 0.85, 0.7))]}


def _year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _measurements(size: SeedSize, accounts: list[tuple[str, list[Offering]]], rnd) -> list[dict]:
    # The draws below are written out (random() scaled, not randrange/choice/randint): a
    # third of the time for a hundred thousand rows, and as deterministic.
    origin = datetime.combine(size.start, time())  # naive UTC, written with a Z
    span = size.days * 86400
    draw, spread = rnd.random, rnd.lognormvariate
    rows: list[dict] = []
    for index, (code, offers) in enumerate(accounts):
        seconds = sorted(int(draw() * span) for _ in range(size.measurementsPerAccount))
        for number, second in enumerate(seconds):
            offer = offers[int(draw() * len(offers))]
            value: float | int = (max(1, round(spread(0, 0.6) * offer.typical)) if offer.whole
                                  else round(spread(0, 0.6) * offer.typical, 3))
            rows.append({"uid": f"s{size.seed}-a{index}-m{number}", "meter": offer.code, "account": code,
                         "ts": (origin + timedelta(seconds=second)).isoformat() + "Z",
                         "measure": {offer.field: value}, "where": {"region": REGIONS[int(draw() * len(REGIONS))]},
                         "who": {"user": f"user{int(draw() * 40) + 1:02d}"}})
    return rows
