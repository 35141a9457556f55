"""Pricing maths: billable quantities, plans, commitments and balances in; bill line items out.

Pure rules, no storage: the bill run (``mockserver.backend.bill_runs``) looks the entities up,
calls these functions in the order below and stores what they return. Where m3ter's
documentation states a rule the mock follows it; where it is silent the mock's choice is
written here (and in the spec's operation descriptions).

Money
    Every amount is a ``Decimal`` (a JSON float enters by its shortest repr, so 0.1 stays 0.1).
    A line's subtotal is rounded once, when the line is made, to the currency's decimal places
    with its rounding mode (``Money``: the org's Currency entity ``maxDecimalPlaces`` and
    ``roundingMode``; without one, 2 places, HALF_UP). Figures inside a line (band subtotals,
    average unit price) are exact and never rounded, so the bands of a line may add up to a
    fraction of a cent more or less than its subtotal. A bill's total is the sum of its
    rounded subtotals. ``UNNECESSARY`` keeps the exact amount.

Pricing bands (``band_charge``)
    Bands are taken in order of ``lowerLimit``. A band holds the units above its lower limit up
    to the next band's lower limit, upper limit included: with bands at 0 and 100, unit 100 is in
    the first band and unit 100.5 in the second; no band holds a quantity of 0, and a quantity of 0
    or less costs nothing. Tiered, the units up to the first band's lower limit are free; volume,
    a total at or below it costs nothing.
    * Tiered (``cumulative`` TRUE): each band prices the units in it at its ``unitPrice``; a
      band's ``fixedPrice`` is charged once, when usage first enters the band.
    * Volume (``cumulative`` FALSE): the band holding the total prices every unit, plus its
      ``fixedPrice``.
    ``cumulative`` left out is FALSE (volume), as PricingRequest says (PricingResponse says
    TRUE; the request is what the user sent).
    * ``tiersSpanPlan``: ``already`` is the quantity billed earlier in the same account plan.
      Tiered: the bands continue from there, so the charges of consecutive periods add up to
      the charge of their summed quantity, a band's fixedPrice included once. Volume: the band
      holding the running total (already + this period) prices this period's units, and its
      fixedPrice is charged in the period that reaches the band.

Usage lines (``usage_lines``)
    One line per priced quantity. Pricing ``type`` DEBIT (the default) makes a ``USAGE`` line;
    PRODUCT_CREDIT and GLOBAL_CREDIT make a ``USAGE_CREDIT`` line of the negative amount
    (``additional.pricingType`` keeps which, for the cap). A quantity of 0 (or none) makes no
    line. ``quantity`` and ``units`` are the billable quantity (after quantityPerUnit and
    rounding); ``averageUnitPrice`` is the exact charge / quantity; ``usagePerPricingBand``
    lists the bands that charged something.

Credits (``cap_credits``)
    A PRODUCT_CREDIT line is capped at the debit lines of the same product, a GLOBAL_CREDIT line
    at the debit lines of the whole bill, less the credits before it (in line order), so the
    credits never make the bill (or the product) negative.

Standing charge (``standing_charge_lines``)
    The Plan's ``standingCharge`` (and description, bill-in-advance, accounting product) when
    set, else the Plan Template's; bill-in-advance falls back to the org config's, then FALSE.
    The charge is for one billing period and is prorated by time to the part of the period the
    plan is active for the account (``active``). ``standingChargeInterval`` n and
    ``standingChargeOffset`` k: the charge is on bills k, k+n, k+2n... of the account plan
    (``bill_index`` 0 is its first bill). In arrears a bill carries the charge for its own
    period; in advance (the mock makes a bill at the end of its period) it carries the charge
    for the next period, and the plan's first bill carries its own period's too. The next period
    follows the template's ``billFrequency`` x ``billFrequencyInterval``; AD_HOC and MIXED have
    no next period, so their standing charge is billed in arrears.

Minimum spend (``minimum_spend_lines``)
    A Pricing's ``minimumSpend`` applies to that Pricing's usage charge; the Plan's (else the
    template's) to the plan's usage charges, each Pricing counted at no less than its own
    minimum. In arrears a shortfall is topped up by a ``MINIMUM_SPEND`` line. In advance the
    minimum is charged whole for the next period (and on the first bill for its own period too)
    and each bill refunds, by a ``MINIMUM_SPEND_REFUND`` line, the part its usage covers, so a
    period costs max(minimum, usage) either way. Minimum spends are not prorated.

Commitments (``commitment_lines``)
    Fees: the ``feeDates`` whose ``date`` falls in the bill's period, each a ``COMMITMENT_FEE``
    line for its own service period. Without feeDates but with a ``billingPlanId`` (and the
    billing plan's frequency), the outstanding ``amount - amountPrePaid`` is billed in equal
    instalments, one per fee cycle: cycles are ``billingInterval`` billing periods long, counted
    from ``billEpoch`` (else the start date) and clipped to the commitment's period, the first
    ``billingOffset`` cycles carry no fee, ``amountFirstBill`` (when set) is the first instalment,
    and the last instalment takes the rounding remainder. A fee in advance is on the bill whose
    period holds its cycle's start; in arrears, on the bill whose period holds its cycle's end.
    Drawdown: while the commitment's period overlaps the bill's, the charges of its
    ``lineItemTypes`` (default: every type m3ter lets draw down) and ``productIds`` (default:
    all) in the commitment's currency are drawn, in line order, against ``amount - amountSpent``:
    one ``COMMITMENT_CONSUMED`` line per charge, negative, ``referencedLineItemId`` naming it.
    A charge's drawable amount is its subtotal less the credits that net against it and what
    was drawn from it already. Overage: the USAGE charges' amounts left undrawn. With
    ``overageSurchargePercent`` (negative is a discount) one ``OVERAGE_SURCHARGE`` line per such
    charge adds that percentage of it. Otherwise, with ``separateOverageUsage``, the overage
    moves to an ``OVERAGE_USAGE`` line, changing the USAGE charge in place: a charge wholly in
    overage becomes that line; one partly in overage keeps the covered amount and the rest goes
    to a new line, its units the charge's quantity in proportion to the amounts. A tiered
    pricing's ``overagePricingBands`` then re-rate those units (continuing from the units
    covered). OVERAGE_USAGE draws down as USAGE.
    ``amountSpent`` grows by everything the commitment's eligible charges cost on the bill: what
    was drawn and the overage beyond it (re-rated when overage pricing applies; a surcharge is
    not counted), so an overspent commitment's ``amountSpent`` exceeds its ``amount``; the
    drawdown is against ``amount - amountSpent``, never below zero.

Balances (``balance_lines``)
    Balances draw in the order given, after the commitments, from what the commitments left:
    a balance that is active in the bill's period (``startDate`` to ``endDate``, or until
    ``rolloverEndDate`` with at most ``rolloverAmount``) draws the charges of its
    ``lineItemTypes`` and ``productIds`` in its currency up to its ``amount`` (with
    ``allowOverdraft``, every such charge whole, the amount going below zero): one
    ``BALANCE_CONSUMED`` line per charge. A USAGE charge left undrawn after all balances gets one
    ``OVERAGE_SURCHARGE`` line by the first eligible balance's ``overageSurchargePercent``.

Order of a bill: ``usage_lines``, ``standing_charge_lines``, ``minimum_spend_lines``,
``cap_credits`` over them all, ``commitment_lines``, ``balance_lines``, ``bill_total``.

Every line made here has an ``id``; the drawdown lines reference the charge they draw with
``referencedLineItemId`` (a charge without an ``id`` is given one in place), so the ids must be
kept when the lines are stored. ``wire`` turns a line's Decimals into JSON numbers. Not
modelled: overage pricing bands for balances; a commitment or balance active for only part of
a bill's period draws from the whole bill; currency conversion (``conversionRate`` 1);
counters; plan groups.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import (ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP,
                     ROUND_UP, Decimal)
from typing import Any, Callable, Iterable, Mapping, Sequence

from .balances import run_at
from .bills import instant_of, number
from .clock import isoformat, utc

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

ROUNDING_MODES = {"UP": ROUND_UP, "DOWN": ROUND_DOWN, "CEILING": ROUND_CEILING, "FLOOR": ROUND_FLOOR,
                  "HALF_UP": ROUND_HALF_UP, "HALF_DOWN": ROUND_HALF_DOWN, "HALF_EVEN": ROUND_HALF_EVEN,
                  "UNNECESSARY": None}

# The charge types that can draw down a commitment (CommitmentRequest.lineItemTypes) or a balance
# (BalanceLineItemType); none listed means all of them.
COMMITMENT_DRAWABLE = ("STANDING_CHARGE", "USAGE", "MINIMUM_SPEND", "COUNTER_RUNNING_TOTAL_CHARGE",
                       "COUNTER_ADJUSTMENT_DEBIT")
BALANCE_DRAWABLE = COMMITMENT_DRAWABLE + ("AD_HOC",)
CREDIT_PRICING_TYPES = ("PRODUCT_CREDIT", "GLOBAL_CREDIT")
DRAW_TYPES = ("COMMITMENT_CONSUMED", "BALANCE_CONSUMED")
PERIOD_STEPS = ("DAILY", "WEEKLY", "MONTHLY", "ANNUALLY")

Period = tuple[datetime, datetime]


# -- money ------------------------------------------------------------------------------------

def dec(value: Any) -> Decimal:
    """A stored number as an exact Decimal: an int as it is, a float by its shortest repr."""
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


@dataclass(frozen=True)
class Money:
    """A currency and how its amounts are rounded (once per line)."""
    currency: str = "USD"
    places: int = 2
    mode: str = "HALF_UP"

    @classmethod
    def of(cls, currency: str | None, entity: Mapping | None = None) -> "Money":
        """The rounding of ``currency``: its Currency entity's ``maxDecimalPlaces`` and
        ``roundingMode`` when there is one, else 2 places, HALF_UP."""
        entity = entity or {}
        places = entity.get("maxDecimalPlaces")
        return cls(currency or "USD", 2 if places is None else int(places), entity.get("roundingMode") or "HALF_UP")

    def round(self, amount: Decimal) -> Decimal:
        rounding = ROUNDING_MODES.get(self.mode, ROUND_HALF_UP)
        if rounding is None:
            return amount
        return amount.quantize(Decimal(1).scaleb(-self.places), rounding=rounding)  # pragma: no mutate  quantize reads only the exponent


def _money(money: Money | None, currency: str | None) -> Money:
    return money if money is not None else Money.of(currency)


# -- pricing bands ----------------------------------------------------------------------------

def _sorted_bands(bands: Iterable[Mapping]) -> list[Mapping]:
    return sorted(bands or (), key=lambda band: dec(band.get("lowerLimit")))


def _volume_band(ordered: Sequence[Mapping], total: Decimal) -> int | None:
    """The index of the band holding ``total`` (lowerLimit < total <= next lowerLimit)."""
    held = None
    for index, band in enumerate(ordered):
        if total > dec(band.get("lowerLimit")):
            held = index
    return held


def band_usage(quantity: Decimal, bands: list[dict], cumulative: bool, *,
               already: Decimal = ZERO) -> list[dict]:
    """The ``usagePerPricingBand`` rows of a charge: the bands that charged something, with the
    units in each and what they cost (exact Decimals)."""
    ordered = _sorted_bands(bands)
    already = max(dec(already), ZERO)
    quantity = dec(quantity)
    if quantity <= 0 or not ordered:
        return []
    total = already + quantity
    rows = []
    if cumulative:
        for index, band in enumerate(ordered):
            lower = dec(band.get("lowerLimit"))
            upper = dec(ordered[index + 1].get("lowerLimit")) if index + 1 < len(ordered) else None

            def clip(value: Decimal) -> Decimal:
                value = max(value, lower)
                return value if upper is None else min(value, upper)

            units = clip(total) - clip(already)
            entered = already <= lower < total
            if units > 0 or entered:
                rows.append(_band_row(band, units, dec(band.get("fixedPrice")) if entered else ZERO))
        return rows
    index = _volume_band(ordered, total)
    if index is None:
        return []
    band = ordered[index]
    entered = _volume_band(ordered, already) != index
    return [_band_row(band, quantity, dec(band.get("fixedPrice")) if entered else ZERO)]


def _band_row(band: Mapping, units: Decimal, fixed: Decimal) -> dict:
    unit_price = dec(band.get("unitPrice"))
    row = {"lowerLimit": dec(band.get("lowerLimit")), "fixedPrice": fixed, "unitPrice": unit_price,
           "bandUnits": units, "bandQuantity": units, "unitSubtotal": units * unit_price,
           "bandSubtotal": units * unit_price + fixed}
    if band.get("id"):
        row = {"pricingBandId": band["id"], **row}
    return row


def band_charge(quantity: Decimal, bands: list[dict], cumulative: bool, *,
                already: Decimal = ZERO) -> Decimal:
    """The exact (unrounded) charge for ``quantity`` units priced by ``bands`` (PricingBand dicts
    ``{lowerLimit, fixedPrice, unitPrice}``, numbers as stored). ``cumulative`` TRUE (tiered):
    each band prices the units in it, plus the fixedPrice of each band entered; FALSE (volume):
    the band holding the total prices every unit, plus its fixedPrice. ``already``: units billed
    earlier in the same account plan (tiersSpanPlan), so the bands continue from there."""
    return sum((row["bandSubtotal"] for row in band_usage(quantity, bands, cumulative, already=already)), ZERO)


# -- lines ------------------------------------------------------------------------------------

def _line(line_type: str, description: str, subtotal: Decimal, money: Money, period: Period, *,
          quantity: Decimal = ONE, unit: str = "", **fields: Any) -> dict:
    """A line with every field BillLineItem requires (no currency conversion: rate 1)."""
    line = {"id": str(uuid.uuid4()), "lineItemType": line_type, "description": description,
            "quantity": quantity, "units": quantity, "unit": unit,
            "averageUnitPrice": subtotal / quantity if quantity else ZERO,
            "subtotal": subtotal, "currency": money.currency, "conversionRate": ONE, "convertedSubtotal": subtotal,
            "servicePeriodStartDate": isoformat(period[0]), "servicePeriodEndDate": isoformat(period[1])}
    line.update({key: value for key, value in fields.items() if value is not None})
    return line


def _instant(value: Any) -> datetime:
    return utc(value) if isinstance(value, datetime) else instant_of(str(value))


def _overlap(a: Period, b: Period) -> Period | None:
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return (start, end) if start < end else None


def _active(active: tuple[datetime | None, datetime | None] | None) -> Period:
    """When the account plan is attached; an open end is unbounded."""
    start, end = active or (None, None)
    return (utc(start) if start else datetime.min.replace(tzinfo=timezone.utc),
            utc(end) if end else datetime.max.replace(tzinfo=timezone.utc))


def _next_period(period: Period, template: Mapping) -> Period | None:
    """The billing period after ``period`` by the template's bill frequency (None for AD_HOC/MIXED)."""
    frequency = str(template.get("billFrequency")).upper()  # None reads "NONE": no frequency either
    if frequency not in PERIOD_STEPS:
        return None
    interval = int(template.get("billFrequencyInterval") or 1)
    return period[1], run_at(period[1], frequency, interval, 1)


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


@dataclass
class PricedUsage:
    """One usage line to be: the Pricing entity, the segment (None when not segmented) and the
    billable quantity (after quantityPerUnit and rounding). The rest names what the line shows."""
    pricing: dict
    segment: dict[str, str] | None
    quantity: Decimal
    product_id: str | None = None
    plan_id: str | None = None
    meter_id: str | None = None
    unit: str | None = None
    name: str | None = None      # the aggregation's name: the line's description when the pricing has none


def usage_lines(items: list[PricedUsage], period: Period, *,
                already: Callable[[dict], Decimal] | None = None, money: Money | None = None) -> list[dict]:
    """The USAGE (and USAGE_CREDIT) lines of ``items`` for the billing ``period`` ([start, end)).
    ``already(pricing)``: the quantity billed earlier in the account plan, asked only for a
    pricing with ``tiersSpanPlan``. ``money``: the plan's currency (default USD, 2 places)."""
    money = _money(money, None)
    lines = []
    for item in items:
        pricing = item.pricing
        quantity = dec(item.quantity) if item.quantity is not None else ZERO
        if quantity == 0:
            continue
        before = dec(already(pricing)) if already is not None and pricing.get("tiersSpanPlan") else ZERO
        cumulative = bool(pricing.get("cumulative", False))
        rows = band_usage(quantity, pricing.get("pricingBands") or [], cumulative, already=before)
        charge = sum((row["bandSubtotal"] for row in rows), ZERO)
        pricing_type = pricing.get("type") or "DEBIT"
        credit = pricing_type in CREDIT_PRICING_TYPES
        subtotal = money.round(charge)
        line = _line("USAGE_CREDIT" if credit else "USAGE",
                     pricing.get("description") or item.name or ("Usage credit" if credit else "Usage"),
                     -subtotal if credit else subtotal, money, period, quantity=quantity, unit=item.unit or "",
                     productId=item.product_id, planId=pricing.get("planId") or item.plan_id,
                     pricingId=pricing.get("id"), aggregationId=pricing.get("aggregationId"),
                     compoundAggregationId=pricing.get("compoundAggregationId"), meterId=item.meter_id,
                     accountingProductId=pricing.get("accountingProductId"),
                     segment=dict(item.segment) if item.segment else None, usagePerPricingBand=rows,
                     additional={"pricingType": pricing_type} if credit else None)
        line["averageUnitPrice"] = (-charge if credit else charge) / quantity
        lines.append(line)
    return lines


def cap_credits(lines: list[dict]) -> list[dict]:
    """The lines with each USAGE_CREDIT line capped: a PRODUCT_CREDIT at the debit lines of its
    product, a GLOBAL_CREDIT at the debit lines of the bill, less the credits before it."""
    debits: dict[str | None, Decimal] = {}
    for line in lines:
        amount = dec(line.get("subtotal"))
        if line.get("lineItemType") != "USAGE_CREDIT" and amount > 0:
            debits[line.get("productId")] = debits.get(line.get("productId"), ZERO) + amount
    capped = []
    used_global = ZERO
    used_product: dict[str | None, Decimal] = {}
    for line in lines:
        amount = dec(line.get("subtotal"))
        if line.get("lineItemType") != "USAGE_CREDIT" or amount >= 0:
            capped.append(line)
            continue
        product = line.get("productId")
        if _credit_type(line) == "GLOBAL_CREDIT":
            room = sum(debits.values(), ZERO) - used_global
        else:
            room = min(debits.get(product, ZERO) - used_product.get(product, ZERO),
                       sum(debits.values(), ZERO) - used_global)
        credit = min(-amount, max(room, ZERO))
        used_global += credit
        used_product[product] = used_product.get(product, ZERO) + credit
        if credit != -amount:
            line = {**line, "subtotal": -credit if credit else ZERO, "convertedSubtotal": -credit if credit else ZERO}
        capped.append(line)
    return capped


def _credit_type(line: Mapping) -> str:
    return (line.get("additional") or {}).get("pricingType") or "PRODUCT_CREDIT"  # pragma: no mutate  only ever compared with GLOBAL_CREDIT


def standing_charge_lines(plan: dict, template: dict, period: Period, *, bill_index: int | None = None,
                          active: tuple[datetime | None, datetime | None] | None = None,
                          org_config: Mapping | None = None, money: Money | None = None) -> list[dict]:
    """The STANDING_CHARGE lines of the bill for ``period`` (the whole billing period).
    ``bill_index``: which bill of the account plan this is (0 the first; None: a later bill, the
    interval and offset not applied). ``active``: when the account plan starts and ends (None:
    open), to prorate a partly covered period. ``org_config``: the org's bill-in-advance default."""
    amount = dec(_first(plan.get("standingCharge"), template.get("standingCharge")))
    if amount == 0:
        return []
    if bill_index is not None:
        interval = int(template.get("standingChargeInterval") or 1)
        offset = int(template.get("standingChargeOffset") or 0)
        if bill_index < offset or (bill_index - offset) % max(interval, 1):
            return []
    money = _money(money, template.get("currency"))
    in_advance = bool(_first(plan.get("standingChargeBillInAdvance"), template.get("standingChargeBillInAdvance"),
                             (org_config or {}).get("standingChargeBillInAdvance"), False))
    description = _first(plan.get("standingChargeDescription"), template.get("standingChargeDescription")) \
        or "Standing charge"
    accounting = plan.get("standingChargeAccountingProductId")
    lines = []
    for covered in _charged_periods(period, template, in_advance, bill_index):
        part = _overlap(covered, _active(active))
        if part is None:
            continue
        share = Decimal((part[1] - part[0]).total_seconds()) / Decimal((covered[1] - covered[0]).total_seconds())
        lines.append(_line("STANDING_CHARGE", description, money.round(amount * share), money, part,
                           productId=template.get("productId"), planId=plan.get("id"),
                           accountingProductId=accounting))
    return lines


def _charged_periods(period: Period, template: Mapping, in_advance: bool, bill_index: int | None) -> list[Period]:
    """The periods a bill carries a per-period charge for: its own in arrears; the next one in
    advance, and its own too on the plan's first bill."""
    period = (utc(period[0]), utc(period[1]))
    following = _next_period(period, template) if in_advance else None
    if following is None:
        return [period]
    return [period, following] if bill_index == 0 else [following]


def minimum_spend_lines(plan: dict, template: dict, usage_total: Decimal, period: Period, *,
                        pricing_totals: Sequence[tuple[dict, Decimal]] = (), bill_index: int | None = None,
                        active: tuple[datetime | None, datetime | None] | None = None,
                        org_config: Mapping | None = None, money: Money | None = None) -> list[dict]:
    """The MINIMUM_SPEND and MINIMUM_SPEND_REFUND lines of the bill for ``period``.
    ``usage_total``: the plan's usage charges in the period (the subtotals of its USAGE and
    USAGE_CREDIT lines). ``pricing_totals``: (Pricing, its usage charge in the period) for the
    plan's pricings, whose own ``minimumSpend`` is topped up per pricing and counted into the
    plan's. ``bill_index``, ``active``, ``org_config``: as for ``standing_charge_lines``."""
    money = _money(money, template.get("currency"))
    org_default = (org_config or {}).get("minimumSpendBillInAdvance")
    usage_total = dec(usage_total)
    lines = []
    counted = usage_total
    for pricing, charged in pricing_totals:
        minimum = dec(pricing.get("minimumSpend"))
        if minimum <= 0:
            continue
        charged = dec(charged)
        counted += max(minimum - charged, ZERO)
        in_advance = bool(_first(pricing.get("minimumSpendBillInAdvance"), org_default, False))
        lines += _minimum_lines(minimum, charged, period, template, in_advance, bill_index, active, money,
                                pricing.get("minimumSpendDescription") or "Minimum spend",
                                planId=pricing.get("planId") or plan.get("id"), pricingId=pricing.get("id"),
                                productId=template.get("productId"),
                                accountingProductId=pricing.get("accountingProductId"))
    minimum = dec(_first(plan.get("minimumSpend"), template.get("minimumSpend")))
    if minimum > 0:
        in_advance = bool(_first(plan.get("minimumSpendBillInAdvance"), template.get("minimumSpendBillInAdvance"),
                                 org_default, False))
        description = _first(plan.get("minimumSpendDescription"), template.get("minimumSpendDescription")) \
            or "Minimum spend"
        lines += _minimum_lines(minimum, counted, period, template, in_advance, bill_index, active, money,
                                description, planId=plan.get("id"), productId=template.get("productId"),
                                accountingProductId=plan.get("minimumSpendAccountingProductId"))
    return lines


def _minimum_lines(minimum: Decimal, charged: Decimal, period: Period, template: Mapping, in_advance: bool,
                   bill_index: int | None, active, money: Money, description: str, **fields: Any) -> list[dict]:
    window = _active(active)
    period = (utc(period[0]), utc(period[1]))
    covered = _charged_periods(period, template, in_advance, bill_index)
    if len(covered) == 1 and covered[0] == period:        # in arrears (or no next period)
        shortfall = minimum - charged
        if shortfall > 0 and _overlap(period, window):
            return [_line("MINIMUM_SPEND", description, money.round(shortfall), money, period, **fields)]
        return []
    lines = [_line("MINIMUM_SPEND", description, money.round(minimum), money, part, **fields)
             for part in (_overlap(whole, window) for whole in covered) if part]
    refund = min(minimum, max(charged, ZERO))
    if refund > 0 and _overlap(period, window):
        lines.append(_line("MINIMUM_SPEND_REFUND", f"{description} refund", -money.round(refund), money, period,
                           **fields))
    return lines


# -- drawdown ---------------------------------------------------------------------------------

def _open_amounts(charges: list[dict], drawable: Sequence[str]) -> dict[str, Decimal]:
    """What each positive charge of a drawable type still owes, by line id: its subtotal, less
    the credits netted against it (PRODUCT_CREDIT: the same product's charges; GLOBAL_CREDIT: any;
    first charges first) and less what was drawn from it already."""
    owed: dict[str, Decimal] = {}
    products: dict[str, Any] = {}
    for line in charges:
        if _kind(line) in BALANCE_DRAWABLE and dec(line.get("subtotal")) > 0:
            line.setdefault("id", str(uuid.uuid4()))
            owed[line["id"]] = dec(line["subtotal"])
            products[line["id"]] = line.get("productId")
    for line in charges:
        if line.get("lineItemType") == "USAGE_CREDIT" and dec(line.get("subtotal")) < 0:
            left = -dec(line["subtotal"])
            product_scoped = _credit_type(line) != "GLOBAL_CREDIT"
            for line_id in owed:
                if left == 0:  # pragma: no mutate  an early exit: min(owed, 0) takes nothing after
                    break  # pragma: no mutate  as above
                if product_scoped and products[line_id] != line.get("productId"):
                    continue
                take = min(owed[line_id], left)
                owed[line_id] -= take
                left -= take
        elif line.get("lineItemType") in DRAW_TYPES and line.get("referencedLineItemId") in owed:
            owed[line["referencedLineItemId"]] += dec(line.get("subtotal"))
    types = {line.get("id"): _kind(line) for line in charges}
    return {line_id: amount for line_id, amount in owed.items() if types[line_id] in drawable and amount > 0}


def _kind(line: Mapping) -> str | None:
    """A line's type for drawdown: overage usage draws as usage."""
    line_type = line.get("lineItemType")
    return "USAGE" if line_type == "OVERAGE_USAGE" else line_type


def _eligible(charges: list[dict], entity: Mapping, default_types: Sequence[str]) -> list[dict]:
    types = entity.get("lineItemTypes") or default_types
    products = entity.get("productIds") or None
    currency = entity.get("currency")
    return [line for line in charges
            if _kind(line) in types
            and (products is None or line.get("productId") in products)
            and (not currency or not line.get("currency") or line.get("currency") == currency)]


def commitment_lines(commitment: dict, charges: list[dict], period: Period, *,
                     bill_frequency: tuple[str, int] | None = None, org_config: Mapping | None = None,
                     pricings: Mapping[str, Mapping] | None = None,
                     money: Money | None = None) -> tuple[list[dict], Decimal]:
    """The COMMITMENT_FEE, COMMITMENT_CONSUMED, OVERAGE_SURCHARGE and OVERAGE_USAGE lines of
    ``commitment`` on the bill for ``period``, drawing from ``charges`` (the bill's lines so far,
    credits capped). ``bill_frequency``: the billing plan's (billFrequency,
    billFrequencyInterval), needed for the fees of a commitment billed with a ``billingPlanId``.
    ``pricings``: the Pricing entities by id, for their ``overagePricingBands``. With
    ``separateOverageUsage`` the USAGE charges in ``charges`` are changed in place (see the
    module's notes). Returns (lines, the commitment's new ``amountSpent``: the old one plus the
    drawdown and the overage)."""
    money = _money(money, commitment.get("currency"))
    period = (utc(period[0]), utc(period[1]))
    spent = dec(commitment.get("amountSpent"))
    lines = _fee_lines(commitment, period, bill_frequency, org_config, money)
    window = _active((_instant(commitment["startDate"]) if commitment.get("startDate") else None,
                      _instant(commitment["endDate"]) if commitment.get("endDate") else None))
    if _overlap(window, period) is None:
        return lines, spent
    remaining = max(dec(commitment.get("amount")) - spent, ZERO)
    billed = ZERO
    eligible = _eligible(charges, commitment, COMMITMENT_DRAWABLE)
    owed = _open_amounts(charges, COMMITMENT_DRAWABLE)
    description = commitment.get("commitmentUsageDescription") or "Commitment consumed"
    accounting = commitment.get("drawdownsAccountingProductId") or commitment.get("accountingProductId")
    surcharge = dec(commitment.get("overageSurchargePercent"))
    for charge in eligible:
        left = owed.get(charge.get("id"), ZERO)
        draw = min(left, remaining)
        if draw > 0:
            remaining -= draw
            lines.append(_draw_line("COMMITMENT_CONSUMED", description, draw, charge, money,
                                    commitmentId=commitment.get("id"), accountingProductId=accounting))
        overage = left - draw
        billed += left
        if overage <= 0 or _kind(charge) != "USAGE":
            continue
        if surcharge:
            lines.append(_surcharge_line(overage, surcharge, charge, money,
                                         commitment.get("overageDescription"), commitmentId=commitment.get("id")))
        elif commitment.get("separateOverageUsage"):
            pricing = (pricings or {}).get(charge.get("pricingId")) or {}
            moved, rerated = _separate_overage(charge, overage, pricing, money, commitment)
            billed += rerated - overage
            lines += moved
    return lines, spent + billed


def _separate_overage(charge: dict, overage: Decimal, pricing: Mapping, money: Money,
                      commitment: Mapping) -> tuple[list[dict], Decimal]:
    """Moves the undrawn ``overage`` of a USAGE charge onto an OVERAGE_USAGE line: its units are
    the charge's quantity in proportion to the amounts; tiered ``overagePricingBands`` re-rate
    them, continuing from the units the commitment covered. A charge wholly in overage becomes
    the OVERAGE_USAGE line; one partly in overage keeps the covered part. Returns (the new
    lines, what the overage costs now)."""
    subtotal, quantity = dec(charge["subtotal"]), dec(charge.get("quantity"))
    units = quantity * overage / subtotal
    bands = pricing.get("overagePricingBands") or []
    amount = overage
    if bands and pricing.get("cumulative"):
        amount = money.round(band_charge(units, bands, True, already=quantity - units))
    fields = {"lineItemType": "OVERAGE_USAGE", "commitmentId": commitment.get("id"),
              "description": commitment.get("overageDescription") or charge.get("description") or "Overage usage"}
    if overage == subtotal:
        charge.update(fields, subtotal=amount, convertedSubtotal=amount, averageUnitPrice=amount / quantity)
        if amount != overage:
            charge["usagePerPricingBand"] = band_usage(units, bands, True)
        return [], amount
    kept = subtotal - overage
    charge.update(subtotal=kept, convertedSubtotal=kept, quantity=quantity - units, units=quantity - units,
                  averageUnitPrice=kept / (quantity - units))
    moved = {key: value for key, value in charge.items() if key != "usagePerPricingBand"}  # its id is replaced below
    moved.update(fields, id=str(uuid.uuid4()), subtotal=amount, convertedSubtotal=amount, quantity=units,
                 units=units, averageUnitPrice=amount / units)
    if amount != overage:
        moved["usagePerPricingBand"] = band_usage(units, bands, True, already=quantity - units)
    return [moved], amount


def _draw_line(line_type: str, description: str, draw: Decimal, charge: Mapping, money: Money,
               **fields: Any) -> dict:
    """A drawdown: the drawn amount is the exact (already rounded) part of a charge's subtotal."""
    return _line(line_type, description, -draw, money, _service_period(charge), productId=charge.get("productId"),
                 planId=charge.get("planId"), referencedLineItemId=charge.get("id"), **fields)


def _surcharge_line(overage: Decimal, percent: Decimal, charge: Mapping, money: Money, description: str | None,
                    **fields: Any) -> dict:
    return _line("OVERAGE_SURCHARGE", description or "Overage surcharge", money.round(overage * percent / HUNDRED),
                 money, _service_period(charge), productId=charge.get("productId"), planId=charge.get("planId"),
                 pricingId=charge.get("pricingId"), referencedLineItemId=charge.get("id"), **fields)


def _service_period(line: Mapping) -> Period:
    return _instant(line["servicePeriodStartDate"]), _instant(line["servicePeriodEndDate"])


def _fee_lines(commitment: Mapping, period: Period, bill_frequency: tuple[str, int] | None,
               org_config: Mapping | None, money: Money) -> list[dict]:
    description = commitment.get("commitmentFeeDescription") or "Commitment fee"
    fields = {"commitmentId": commitment.get("id"),
              "accountingProductId": commitment.get("feesAccountingProductId") or commitment.get("accountingProductId")}
    lines = []
    for due, amount, service in commitment_fees(commitment, bill_frequency, org_config, money):
        if period[0] <= due < period[1] and amount != 0:
            lines.append(_line("COMMITMENT_FEE", description, amount, money, service, **fields))
    return lines


def commitment_fees(commitment: Mapping, bill_frequency: tuple[str, int] | None = None,
                    org_config: Mapping | None = None, money: Money | None = None
                    ) -> list[tuple[datetime, Decimal, Period]]:
    """Every fee of a commitment as (the instant that places it on a bill, amount, service
    period): its ``feeDates``, else the instalments of a commitment billed with a plan."""
    money = _money(money, commitment.get("currency"))
    fees = commitment.get("feeDates") or []
    if fees:
        return [(_instant(fee["date"]), money.round(dec(fee["amount"])),
                 (_instant(fee["servicePeriodStartDate"]), _instant(fee["servicePeriodEndDate"])))
                for fee in fees]
    if not commitment.get("billingPlanId") or not bill_frequency:
        return []
    frequency, interval = str(bill_frequency[0]).upper(), int(bill_frequency[1] or 1)
    if frequency not in PERIOD_STEPS:
        return []
    outstanding = dec(commitment.get("amount")) - dec(commitment.get("amountPrePaid"))
    if outstanding <= 0:
        return []
    start, end = _instant(commitment["startDate"]), _instant(commitment["endDate"])
    epoch = _instant(commitment.get("billEpoch") or commitment["startDate"])
    step = interval * int(commitment.get("billingInterval") or 1)
    cycles = []
    k = 0
    while run_at(epoch, frequency, step, k) > start and k > -10_000:     # an epoch after the start
        k -= 1
    while len(cycles) < 10_000:
        cycle = (run_at(epoch, frequency, step, k), run_at(epoch, frequency, step, k + 1))
        if cycle[0] >= end:
            break
        part = _overlap(cycle, (start, end))
        if part:
            cycles.append(part)
        k += 1
    cycles = cycles[int(commitment.get("billingOffset") or 0):]
    if not cycles:
        return []
    first = commitment.get("amountFirstBill")
    amounts: list[Decimal] = []
    if first is not None and len(cycles) > 1:
        amounts.append(money.round(min(dec(first), outstanding)))
        rest = outstanding - amounts[0]
        amounts += [money.round(rest / (len(cycles) - 1))] * (len(cycles) - 1)
    else:
        amounts = [money.round(outstanding / len(cycles))] * len(cycles)
    amounts[-1] = outstanding - sum(amounts[:-1], ZERO)
    in_advance = bool(_first(commitment.get("commitmentFeeBillInAdvance"),
                             (org_config or {}).get("commitmentFeeBillInAdvance"), False))
    # in arrears a fee is on the bill whose period holds its cycle's last instant
    return [(cycle[0] if in_advance else cycle[1] - _EPSILON, amount, cycle)
            for cycle, amount in zip(cycles, amounts)]


_EPSILON = datetime.resolution


def balance_lines(balances: list[dict], charges: list[dict], period: Period, *,
                  money: Money | None = None) -> tuple[list[dict], dict[str, Decimal]]:
    """The BALANCE_CONSUMED (and OVERAGE_SURCHARGE) lines drawing ``charges`` (the bill's lines so
    far, commitment drawdowns included) from ``balances`` in the order given. Returns (lines,
    {balance id: amount drawn}); a balance's new amount is its amount less what it drew."""
    period = (utc(period[0]), utc(period[1]))
    lines: list[dict] = []
    drawn: dict[str, Decimal] = {}
    working = list(charges)
    surcharged: dict[str, Mapping] = {}         # USAGE charge id -> the first balance eligible for it
    for balance in balances:
        available = _available(balance, period)
        if available is None:
            continue
        pay = _money(money, balance.get("currency"))
        owed = _open_amounts(working, BALANCE_DRAWABLE)
        description = balance.get("balanceDrawDownDescription") or "Balance consumed"
        overdraft = bool(balance.get("allowOverdraft"))
        total = ZERO
        for charge in _eligible(working, balance, BALANCE_DRAWABLE):
            left = owed.get(charge.get("id"), ZERO)
            if _kind(charge) == "USAGE" and left > 0:
                surcharged.setdefault(charge["id"], balance)
            draw = left if overdraft else min(left, max(available - total, ZERO))
            if draw > 0:
                total += draw
                line = _draw_line("BALANCE_CONSUMED", description, draw, charge, pay, balanceId=balance.get("id"),
                                  accountingProductId=balance.get("consumptionsAccountingProductId"))
                lines.append(line)
                working.append(line)
        drawn[balance.get("id")] = total
    owed = _open_amounts(working, BALANCE_DRAWABLE)
    by_id = {line.get("id"): line for line in working}
    for charge_id, balance in surcharged.items():
        percent = dec(balance.get("overageSurchargePercent"))
        if percent and owed.get(charge_id, ZERO) > 0:
            lines.append(_surcharge_line(owed[charge_id], percent, by_id[charge_id],
                                         _money(money, balance.get("currency")), balance.get("overageDescription"),
                                         balanceId=balance.get("id")))
    return lines, drawn


def _available(balance: Mapping, period: Period) -> Decimal | None:
    """What a balance can give to the bill for ``period``, or None when it is not active then."""
    start = _instant(balance["startDate"]) if balance.get("startDate") else None
    end = _instant(balance["endDate"]) if balance.get("endDate") else None
    amount = dec(balance.get("amount"))
    if start is not None and period[1] <= start:
        return None
    if end is None or period[0] < end:
        return amount
    rollover_end = balance.get("rolloverEndDate")
    if rollover_end and period[0] < _instant(rollover_end):
        rollover = balance.get("rolloverAmount")
        return amount if rollover is None else min(amount, dec(rollover))
    return None


def bill_total(lines: list[dict]) -> Decimal:
    """The bill's total: the sum of its lines' (rounded) subtotals."""
    return sum((dec(line.get("subtotal")) for line in lines), ZERO)


def wire(value: Any) -> Any:
    """A line (or any value made here) as JSON: every Decimal, nested ones too, as a JSON number."""
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, Mapping):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire(item) for item in value]
    return value
