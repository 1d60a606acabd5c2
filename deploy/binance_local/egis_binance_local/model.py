"""What the venue keeps per account: orders, algo orders, trades, positions, wallet."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from egis_binance_local.money import ZERO

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
OPEN_ALGO_STATUSES = ("NEW",)
CONDITIONAL_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET")


@dataclass
class Order:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    orig_type: str
    quantity: Decimal
    price: Decimal  # zero for MARKET
    time_in_force: str
    reduce_only: bool
    close_position: bool
    time_ms: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_ms: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining_qty(self) -> Decimal:
        return self.quantity - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO


@dataclass
class AlgoOrder:
    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    order_type: str
    quantity: Decimal  # zero with closePosition
    trigger_price: Decimal
    close_position: bool
    reduce_only: bool
    working_type: str
    price_protect: bool
    time_in_force: str
    create_ms: int
    status: str = "NEW"
    update_ms: int = 0
    trigger_ms: int = 0
    actual_order_id: int | None = None  # the regular order the trigger spawned

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ALGO_STATUSES


@dataclass(frozen=True)
class Trade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    realized_pnl: Decimal
    commission: Decimal
    time_ms: int
    maker: bool
    commission_asset: str = "USDT"


@dataclass
class Position:
    symbol: str
    amount: Decimal = ZERO  # signed: one-way mode, positive is long
    entry_price: Decimal = ZERO
    update_ms: int = 0


@dataclass
class Account:
    api_key: str
    api_secret: str
    wallet_usdt: Decimal
    default_leverage: int = 20
    leverage: dict[str, int] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    algo_orders: dict[int, AlgoOrder] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    listen_key: str | None = None
    listen_key_expires_ms: int = 0  # a key not kept alive until then is gone (-1125)
    update_ms: int = 0

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position(symbol))

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, self.default_leverage)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.algo_orders.values() if a.is_open and symbol in (None, a.symbol)]
