"""Cross-margin figures of one account, from its positions, open orders and mark prices.

Simplified on purpose: one maintenance rate instead of the venue's notional
brackets, and no liquidation engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from egis_binance_local.model import Account, Position
from egis_binance_local.money import ZERO, usdt
from egis_binance_local.positions import closing_qty, unrealized_pnl

MAINTENANCE_RATE = Decimal("0.004")


@dataclass(frozen=True)
class PositionFigures:
    position: Position
    mark_price: Decimal
    leverage: int
    unrealized: Decimal
    notional: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    open_order_margin: Decimal


@dataclass(frozen=True)
class AccountFigures:
    wallet: Decimal
    unrealized: Decimal
    position_margin: Decimal
    open_order_margin: Decimal
    maint_margin: Decimal

    @property
    def margin_balance(self) -> Decimal:
        return self.wallet + self.unrealized

    @property
    def initial_margin(self) -> Decimal:
        return self.position_margin + self.open_order_margin

    @property
    def available(self) -> Decimal:
        return max(ZERO, self.margin_balance - self.initial_margin)

    @property
    def max_withdraw(self) -> Decimal:
        return min(self.wallet, self.available)


def position_figures(account: Account, position: Position, mark: Decimal) -> PositionFigures:
    leverage = account.leverage_of(position.symbol)
    notional = usdt(position.amount * mark)
    return PositionFigures(
        position,
        mark,
        leverage,
        unrealized_pnl(position.amount, position.entry_price, mark),
        notional,
        usdt(abs(notional) / leverage),
        usdt(abs(notional) * MAINTENANCE_RATE),
        open_order_margin(account, position.symbol),
    )


def open_order_margin(account: Account, symbol: str) -> Decimal:
    """Resting orders reserve margin for the part of them that would open exposure."""
    amount = account.position(symbol).amount
    total = ZERO
    for order in account.open_orders(symbol):
        opening = order.remaining_qty - closing_qty(amount, order.side, order.remaining_qty)
        total += opening * order.price
    return usdt(total / account.leverage_of(symbol))


def account_figures(account: Account, marks: Mapping[str, Decimal]) -> AccountFigures:
    figures = [position_figures(account, p, marks[p.symbol]) for p in account.positions.values()]
    return AccountFigures(
        account.wallet_usdt,
        sum((f.unrealized for f in figures), ZERO),
        sum((f.initial_margin for f in figures), ZERO),
        sum((f.open_order_margin for f in figures), ZERO),
        sum((f.maint_margin for f in figures), ZERO),
    )
