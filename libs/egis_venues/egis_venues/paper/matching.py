"""The paper venue's matching rules. Pure: no I/O.

A market order is matched against the mark price: filters first (Binance's
codes), then the fill (slippage, tick, fill ratio), the fee, the one-way
position it leaves and the realised PnL. USDT amounts are rounded to 8
decimals, as the venue reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal

from egis_venues.port import MarketOrder, OrderSide, Rejected, SymbolRules

ZERO = Decimal("0")
USDT_STEP = Decimal("0.00000001")
PRICE_STEP = Decimal("0.0000000001")


@dataclass(frozen=True)
class VenueConfig:
    taker_fee_rate: Decimal
    slippage_bps: Decimal
    fill_ratio: Decimal
    leverage: Decimal


@dataclass(frozen=True)
class Book:
    """The account as an order finds it."""

    position_qty: Decimal  # signed: > 0 long, < 0 short
    entry_price: Decimal
    wallet_usd: Decimal
    used_margin_usd: Decimal  # held by every position of the account


@dataclass(frozen=True)
class Execution:
    status: str  # FILLED, or EXPIRED when only part (or none) of it filled
    orig_qty: Decimal
    executed_qty: Decimal
    price: Decimal
    fee_usd: Decimal
    realised_pnl_usd: Decimal
    position_qty: Decimal
    entry_price: Decimal
    wallet_usd: Decimal


def _on_step(value: Decimal, step: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def fill_price(side: OrderSide, mark: Decimal, rules: SymbolRules, config: VenueConfig) -> Decimal:
    """The mark moved against the taker by the slippage, onto the tick (rounded against the taker too)."""
    slip = config.slippage_bps / Decimal("10000")
    if side is OrderSide.BUY:
        return _on_step(mark * (1 + slip), rules.tick_size, ROUND_UP)
    return _on_step(mark * (1 - slip), rules.tick_size, ROUND_DOWN)


def after_fill(qty: Decimal, entry: Decimal, delta: Decimal, price: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(position qty, entry price, realised PnL) after a signed fill of `delta` at `price`."""
    new_qty = qty + delta
    if qty == 0:
        return new_qty, price, ZERO
    if (qty > 0) == (delta > 0):
        return new_qty, ((abs(qty) * entry + abs(delta) * price) / abs(new_qty)).quantize(PRICE_STEP), ZERO
    closed = min(abs(delta), abs(qty))
    realised = ((price - entry) * closed * (1 if qty > 0 else -1)).quantize(USDT_STEP, ROUND_HALF_EVEN)
    if new_qty == 0:
        return ZERO, ZERO, realised
    return new_qty, entry if (new_qty > 0) == (qty > 0) else price, realised


def opened_qty(before: Decimal, after: Decimal) -> Decimal:
    """How much exposure a fill added: what margin must cover."""
    if before != 0 and after != 0 and (before > 0) != (after > 0):
        return abs(after)  # flipped: the whole new side is opened
    return max(abs(after) - abs(before), ZERO)


def match(
    order: MarketOrder, rules: SymbolRules, mark: Decimal, book: Book, config: VenueConfig
) -> Execution | Rejected:
    qty = _on_step(order.quantity, rules.step_size)
    if qty <= 0:
        return Rejected("-4003", "Quantity less than or equal to zero.")
    if qty < rules.min_qty:
        return Rejected("-4004", f"Quantity less than minimum quantity {rules.min_qty}.")
    price = fill_price(order.side, mark, rules, config)
    closes_position = book.position_qty != 0 and (book.position_qty > 0) == (order.side is OrderSide.SELL)
    if order.reduce_only and not closes_position:
        return Rejected("-2022", "ReduceOnly Order is rejected.")
    if not order.reduce_only and qty * price < rules.min_notional_usd:
        return Rejected(
            "-4164",
            f"Order's notional must be no smaller than {rules.min_notional_usd} (unless you choose reduce only).",
        )
    executed = _on_step(qty * config.fill_ratio, rules.step_size)
    if order.reduce_only:  # never more than the position: a reduce-only order cannot flip it
        executed = min(executed, abs(book.position_qty))
    return _execute(order, qty, executed, price, book, config)


def _execute(
    order: MarketOrder, qty: Decimal, executed: Decimal, price: Decimal, book: Book, config: VenueConfig
) -> Execution | Rejected:
    fee = (executed * price * config.taker_fee_rate).quantize(USDT_STEP, ROUND_HALF_EVEN)
    delta = executed if order.side is OrderSide.BUY else -executed
    position_qty, entry, realised = book.position_qty, book.entry_price, ZERO
    if executed > 0:
        position_qty, entry, realised = after_fill(book.position_qty, book.entry_price, delta, price)
    margin_usd = opened_qty(book.position_qty, position_qty) * price / config.leverage
    if margin_usd + fee > book.wallet_usd - book.used_margin_usd:
        return Rejected("-2019", "Margin is insufficient.")
    return Execution(
        status="FILLED" if executed == qty else "EXPIRED",
        orig_qty=qty,
        executed_qty=executed,
        price=price,
        fee_usd=fee,
        realised_pnl_usd=realised,
        position_qty=position_qty,
        entry_price=entry,
        wallet_usd=book.wallet_usd + realised - fee,
    )


def triggers(kind: str, side: OrderSide, trigger_price: Decimal, mark: Decimal) -> bool:
    """A take-profit triggers when the price moves in the position's favour, a stop when it moves against it."""
    closes_long = side is OrderSide.SELL
    if kind == "TAKE_PROFIT_MARKET":
        return mark >= trigger_price if closes_long else mark <= trigger_price
    return mark <= trigger_price if closes_long else mark >= trigger_price
