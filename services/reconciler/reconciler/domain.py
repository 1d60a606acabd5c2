"""The reconciler's rules: which exchange facts close a position, what they prove, and drift.

Pure: no I/O, no async. Facts come in as plain records; out come a
`BackfillClosure` backed by evidence, or an enumerated reason why not.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from uuid import UUID

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id

ZERO = Decimal(0)
FEE_ASSETS = frozenset({"USDT"})
LIQUIDATION_PREFIX = "autoclose-"  # Binance's client id of the orders its liquidation engine places
PRICE_PLACES = Decimal("1e-18")  # the wire carries at most 18 decimal places
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation])
_AVERAGE = decimal.Context(prec=60)


@dataclass(frozen=True)
class PositionView:
    """The reconciler's read model of one ledger position."""

    position_id: UUID
    bot_id: UUID
    status: str
    symbol: str | None = None
    side: str | None = None
    open_intent_id: UUID | None = None
    close_intent_id: UUID | None = None
    executed_qty: Decimal | None = None
    avg_entry_price: Decimal | None = None
    close_exchange_order_id: str | None = None
    close_price: Decimal | None = None
    closed_at: datetime | None = None
    realised_pnl_usd: Decimal | None = None

    @property
    def missing_close_facts(self) -> list[str]:
        names = ("close_exchange_order_id", "close_price", "closed_at", "realised_pnl_usd")
        return [name for name in names if getattr(self, name) is None]


@dataclass(frozen=True)
class OrderFact:
    fact_id: int
    exchange_order_id: str
    client_order_id: str
    status: str
    executed_qty: Decimal
    event_time: datetime
    # Where the order lives, to ask the venue for its trades when the stream missed some.
    exchange: str = ""
    exchange_account: str = ""
    symbol: str = ""


@dataclass(frozen=True)
class AlgoFact:
    fact_id: int
    algo_id: str
    client_algo_id: str
    status: str
    spawned_order_id: str | None


@dataclass(frozen=True)
class TradeFact:
    trade_id: str
    exchange_order_id: str
    price: Decimal
    qty: Decimal
    realised_pnl_usd: Decimal
    commission: Decimal
    commission_asset: str
    event_time: datetime


@dataclass(frozen=True)
class Facts:
    orders: tuple[OrderFact, ...] = ()
    algos: tuple[AlgoFact, ...] = ()
    trades: tuple[TradeFact, ...] = ()


class NoClosure(str, Enum):
    """Why no backfill comes out of the evidence: every skip has a reason."""

    NO_FILLED_CLOSING_ORDER = "no_filled_closing_order"
    TRADES_INCOMPLETE = "trades_incomplete"
    FEE_NOT_IN_USD = "fee_not_in_usd"
    NOT_A_CLOSABLE_POSITION = "not_a_closable_position"
    CLOSE_FACTS_COMPLETE = "close_facts_complete"


def closing_ids(position: PositionView) -> dict[str, str]:
    """The deterministic client ids of every order that could close this position, by route."""
    ids: dict[str, str] = {}
    if position.open_intent_id is not None:
        ids["take_profit"] = client_order_id(position.open_intent_id, OrderPurpose.TAKE_PROFIT)
        ids["stop_loss"] = client_order_id(position.open_intent_id, OrderPurpose.STOP_LOSS)
    if position.close_intent_id is not None:
        ids["close"] = client_order_id(position.close_intent_id, OrderPurpose.ENTRY)
    return ids


def entry_client_id(position: PositionView) -> str | None:
    return client_order_id(position.open_intent_id) if position.open_intent_id else None


def candidate_orders(position: PositionView, facts: Facts) -> dict[str, str]:
    """exchange_order_id -> how it is linked to the position (route, and the algo order when spawned)."""
    ids = closing_ids(position)
    routes = {client_id: route for route, client_id in ids.items()}
    found: dict[str, str] = {}
    for algo in facts.algos:
        if algo.client_algo_id in routes and algo.spawned_order_id:
            found[algo.spawned_order_id] = f"{routes[algo.client_algo_id]}:algo:{algo.algo_id}"
    for order in facts.orders:
        if order.client_order_id in routes:
            found.setdefault(order.exchange_order_id, routes[order.client_order_id])
    if position.close_exchange_order_id:
        found.setdefault(position.close_exchange_order_id, "recorded_close")
    for order_id in liquidations(position, facts):
        found.setdefault(order_id, "liquidation")
    return found


def liquidations(position: PositionView, facts: Facts) -> list[str]:
    """The venue's liquidation orders on the position's account and symbol since its entry.

    They carry the venue's client id, not ours: the entry order's fact says where the position lives.
    One-way mode allows one active position per account and symbol, so they can only be this one's.
    """
    entry = next((o for o in facts.orders if o.client_order_id == entry_client_id(position) and o.exchange_account),
                 None)
    if entry is None:
        return []
    return [o.exchange_order_id for o in facts.orders if o.client_order_id.startswith(LIQUIDATION_PREFIX)
            and (o.exchange, o.exchange_account, o.symbol) == (entry.exchange, entry.exchange_account, entry.symbol)
            and o.event_time >= entry.event_time]


def filled_closing_order(position: PositionView, facts: Facts) -> tuple[OrderFact, str] | None:
    """The earliest FILLED order among the position's closing candidates, with its route."""
    candidates = candidate_orders(position, facts)
    filled = [o for o in facts.orders if o.status == "FILLED" and o.exchange_order_id in candidates]
    if not filled:
        return None
    first = min(filled, key=lambda o: (o.event_time, o.fact_id))
    return first, candidates[first.exchange_order_id]


def _direction(side: str | None) -> int:
    return -1 if side == c.Side.SHORT.value else 1


def closure(position: PositionView, facts: Facts) -> c.BackfillClosure | NoClosure:
    """The close a FILLED closing order proves, computed from its trades; or why there is none."""
    if position.status not in ("open", "closing", "closed"):
        return NoClosure.NOT_A_CLOSABLE_POSITION
    if position.status == "closed" and not position.missing_close_facts:
        return NoClosure.CLOSE_FACTS_COMPLETE
    found = filled_closing_order(position, facts)
    if found is None:
        return NoClosure.NO_FILLED_CLOSING_ORDER
    order, route = found
    trades = sorted((t for t in facts.trades if t.exchange_order_id == order.exchange_order_id),
                    key=lambda t: (t.event_time, t.trade_id))
    with decimal.localcontext(_EXACT):
        if not trades or sum((t.qty for t in trades), ZERO) != order.executed_qty:
            return NoClosure.TRADES_INCOMPLETE
    if any(t.commission_asset not in FEE_ASSETS for t in trades):
        return NoClosure.FEE_NOT_IN_USD
    return _backfill(position, order, route, trades)


def _backfill(position: PositionView, order: OrderFact, route: str, trades: list[TradeFact]) -> c.BackfillClosure:
    with decimal.localcontext(_EXACT):
        qty = sum((t.qty for t in trades), ZERO)
        notional = sum((t.price * t.qty for t in trades), ZERO)
        exchange_pnl = sum((t.realised_pnl_usd for t in trades), ZERO)
        fee = sum((t.commission for t in trades), ZERO)
        computed_pnl = None
        if position.avg_entry_price is not None:
            computed_pnl = (notional - position.avg_entry_price * qty) * _direction(position.side)
    with decimal.localcontext(_AVERAGE):
        close_price = (notional / qty).quantize(PRICE_PLACES).normalize()
    pnl = computed_pnl if computed_pnl is not None else exchange_pnl
    evidence = {
        "route": route, "order_fact_id": order.fact_id, "exchange_order_id": order.exchange_order_id,
        "trade_ids": [t.trade_id for t in trades], "qty": str(qty), "notional": str(notional),
        "computed_pnl_usd": None if computed_pnl is None else str(computed_pnl),
        "exchange_realised_pnl_usd": str(exchange_pnl), "exchange_commission_usd": str(fee),
        "pnl_source": "computed_from_entry" if computed_pnl is not None else "exchange_realised_pnl",
    }
    return c.BackfillClosure(
        bot_id=position.bot_id, position_id=position.position_id, close_exchange_order_id=order.exchange_order_id,
        close_price=close_price, closed_at=trades[-1].event_time, realised_pnl_usd=pnl, fee_usd=fee,
        evidence=evidence,
    )
