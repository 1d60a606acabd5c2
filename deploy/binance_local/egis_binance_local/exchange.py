"""The venue's state: symbols, mark prices, accounts, id sequences, and how a fill is booked.

Everything here is synchronous: aiohttp runs handlers on one event loop, so
each request's read-check-write on this state is atomic by construction.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from egis_binance_local import algos, errors, orders
from egis_binance_local.margin import account_figures
from egis_binance_local.model import Account, AlgoOrder, Order, Trade
from egis_binance_local.money import ZERO, ceil_to, floor_to, usdt
from egis_binance_local.positions import apply_fill, closing_qty
from egis_binance_local.symbols import DEFAULT_SYMBOLS, SymbolSpec

# The venue's listen key lives 60 minutes after its creation or its last keepalive.
LISTEN_KEY_VALIDITY_MS = 60 * 60 * 1000


class Listener(Protocol):
    """Hears every order and algo order change as it happens (the user data stream)."""

    def order_changed(self, account: Account, order: Order, execution: str, trade: Trade | None) -> None: ...

    def algo_changed(self, account: Account, algo: AlgoOrder) -> None: ...

    def listen_key_ended(self, account: Account, listen_key: str, expired: bool) -> None: ...


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Fees:
    taker_rate: Decimal = Decimal("0.0005")
    maker_rate: Decimal = Decimal("0.0002")


class Exchange:
    def __init__(
        self,
        symbols: Iterable[SymbolSpec] = DEFAULT_SYMBOLS,
        *,
        fees: Fees = Fees(),
        slippage_rate: Decimal = ZERO,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.specs = {spec.symbol: spec for spec in symbols}
        self.marks = {spec.symbol: spec.mark_price for spec in self.specs.values()}
        self.fees = fees
        self.slippage_rate = slippage_rate
        self.clock = clock
        self.accounts: dict[str, Account] = {}
        # Disjoint ranges, so an algo id sent to a regular order endpoint is never found there; each
        # server starts at its own offset, so facts from two servers never share an id in one database.
        offset = secrets.randbelow(10_000_000) * 100
        self._order_ids = itertools.count(4_000_000_001 + offset)
        self._algo_ids = itertools.count(2_000_000_000_000_001 + offset)
        self._trade_ids = itertools.count(300_000_001 + offset)
        self.listeners: list[Listener] = []

    # --- accounts ------------------------------------------------------------

    def add_account(self, api_key: str, api_secret: str, usdt_balance: Decimal, leverage: int = 20) -> Account:
        account = Account(api_key, api_secret, usdt_balance, leverage, update_ms=self.clock())
        self.accounts[api_key] = account
        return account

    def fund(self, api_key: str, amount: Decimal) -> Account:
        account = self.accounts[api_key]
        account.wallet_usdt += amount
        account.update_ms = self.clock()
        return account

    def listen_key(self, account: Account) -> str:
        """POST: the valid key if there is one (extended), else a new one."""
        if self.valid_listen_key(account) is None:
            account.listen_key = secrets.token_urlsafe(48)[:64]
        account.listen_key_expires_ms = self.clock() + LISTEN_KEY_VALIDITY_MS
        return account.listen_key

    def keep_listen_key_alive(self, account: Account, given: str | None) -> str:
        """PUT: extends the valid key; -1125 once it expired or was closed."""
        key = self.valid_listen_key(account)
        if key is None or given not in (None, key):
            raise errors.listen_key_does_not_exist()
        account.listen_key_expires_ms = self.clock() + LISTEN_KEY_VALIDITY_MS
        return key

    def valid_listen_key(self, account: Account) -> str | None:
        if account.listen_key is not None and self.clock() >= account.listen_key_expires_ms:
            self.end_listen_key(account, expired=True)
        return account.listen_key

    def end_listen_key(self, account: Account, *, expired: bool) -> None:
        """DELETE (expired=False) or expiry: the key is gone and its streams end."""
        key, account.listen_key = account.listen_key, None
        if key is not None:
            for listener in self.listeners:
                listener.listen_key_ended(account, key, expired)

    # --- what the user data stream hears ---------------------------------------

    def announce_order(self, account: Account, order: Order, execution: str, trade: Trade | None = None) -> None:
        for listener in self.listeners:
            listener.order_changed(account, order, execution, trade)

    def announce_algo(self, account: Account, algo: AlgoOrder) -> None:
        for listener in self.listeners:
            listener.algo_changed(account, algo)

    # --- market --------------------------------------------------------------

    def spec(self, symbol: str) -> SymbolSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def set_mark_price(self, symbol: str, price: Decimal) -> None:
        """Move the mark price, then fill crossed limit orders and trigger crossed algo orders."""
        self.spec(symbol)
        if price <= ZERO:
            raise errors.price_not_positive()
        self.marks[symbol] = price
        for account in list(self.accounts.values()):
            orders.on_mark_price(self, account, symbol, price)
            algos.on_mark_price(self, account, symbol, price)

    def taker_price(self, symbol: str, side: str) -> Decimal:
        """Mark price moved against the taker by the slippage, on the tick grid."""
        spec, mark = self.spec(symbol), self.marks[symbol]
        if side == "BUY":
            return ceil_to(mark * (1 + self.slippage_rate), spec.tick_size)
        return floor_to(mark * (1 - self.slippage_rate), spec.tick_size)

    # --- ids -----------------------------------------------------------------

    def next_order_id(self) -> int:
        return next(self._order_ids)

    def next_algo_id(self) -> int:
        return next(self._algo_ids)

    # --- checks shared by orders and algo orders -----------------------------

    def check_margin(self, account: Account, symbol: str, side: str, qty: Decimal, price: Decimal) -> None:
        opening = qty - closing_qty(account.position(symbol).amount, side, qty)
        required = usdt(opening * price / account.leverage_of(symbol))
        if required > account_figures(account, self.marks).available:
            raise errors.margin_insufficient()

    # --- fills ---------------------------------------------------------------

    def fill(self, account: Account, order: Order, price: Decimal, *, maker: bool) -> Trade:
        """Fill the order's remaining quantity at `price`: trade, position, wallet, order."""
        now, qty = self.clock(), order.remaining_qty
        position = account.position(order.symbol)
        effect = apply_fill(position.amount, position.entry_price, qty if order.side == "BUY" else -qty, price)
        fee = usdt(qty * price * (self.fees.maker_rate if maker else self.fees.taker_rate))
        trade = Trade(
            next(self._trade_ids),
            order.order_id,
            order.symbol,
            order.side,
            price,
            qty,
            qty * price,
            effect.realized_pnl,
            fee,
            now,
            maker,
        )
        position.amount, position.entry_price, position.update_ms = effect.amount, effect.entry_price, now
        account.wallet_usdt += effect.realized_pnl - fee
        account.update_ms = now
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.status, order.update_ms = "FILLED", now
        account.trades.append(trade)
        self.announce_order(account, order, "TRADE", trade)
        return trade
