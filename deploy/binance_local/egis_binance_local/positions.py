"""One-way position arithmetic: what a fill does to amount, entry price and realised PnL."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from egis_binance_local.money import ZERO, usdt

# Entry prices are averages that may not terminate; keep 8 decimals, like the venue shows them.
ENTRY_STEP = Decimal("0.00000001")


@dataclass(frozen=True)
class FillEffect:
    amount: Decimal
    entry_price: Decimal
    realized_pnl: Decimal


def apply_fill(amount: Decimal, entry_price: Decimal, signed_qty: Decimal, price: Decimal) -> FillEffect:
    """`signed_qty` is positive for a buy. Reducing realises PnL against the entry price."""
    if amount == ZERO or (amount > ZERO) == (signed_qty > ZERO):
        return _increase(amount, entry_price, signed_qty, price)
    closed = min(abs(signed_qty), abs(amount))
    direction = 1 if amount > ZERO else -1
    realized = usdt((price - entry_price) * closed * direction)
    new_amount = amount + signed_qty
    if new_amount == ZERO:
        return FillEffect(ZERO, ZERO, realized)
    flipped = (new_amount > ZERO) != (amount > ZERO)
    return FillEffect(new_amount, price if flipped else entry_price, realized)


def _increase(amount: Decimal, entry_price: Decimal, signed_qty: Decimal, price: Decimal) -> FillEffect:
    new_amount = amount + signed_qty
    cost = abs(amount) * entry_price + abs(signed_qty) * price
    entry = (cost / abs(new_amount)).quantize(ENTRY_STEP)
    return FillEffect(new_amount, entry, ZERO)


def closing_qty(amount: Decimal, side: str, qty: Decimal) -> Decimal:
    """How much of an order on `side` reduces the current position."""
    reduces = (amount > ZERO and side == "SELL") or (amount < ZERO and side == "BUY")
    return min(qty, abs(amount)) if reduces else ZERO


def unrealized_pnl(amount: Decimal, entry_price: Decimal, mark_price: Decimal) -> Decimal:
    return usdt((mark_price - entry_price) * amount)
