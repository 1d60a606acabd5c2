"""The paper venue's user data stream: every order, trade and algo order change as an exchange fact.

The facts go to the outbox in the venue's own transaction, so they are
published whether or not the executor manages to record the outcome, just as a
real venue's stream reports an order the caller never heard back about.
"""

from __future__ import annotations

import json
from typing import Any

from egis_common import contracts as c
from egis_common.contracts import ExchangeName, utc_now
from egis_venues.paper import tables
from egis_venues.port import Filled


def raw(row: tables.Row) -> dict[str, Any]:
    """The venue's record as evidence: JSON-safe, decimals as strings."""
    evidence: dict[str, Any] = json.loads(json.dumps(dict(row._mapping), default=str))
    return evidence


def filled(row: tables.Row) -> Filled:
    """An order row as the port's outcome, the row itself as evidence."""
    return Filled(
        exchange_order_id=str(row.order_id),
        executed_qty=row.executed_qty,
        avg_price=row.avg_price,
        fee_usd=row.fee_usd,
        filled_at=row.created_at,
        realised_pnl_usd=row.realised_pnl_usd,
        raw=raw(row),
    )


def order_fact(order: tables.Row) -> c.ExchangeOrderFact:
    return c.ExchangeOrderFact(
        exchange=ExchangeName.PAPER,
        exchange_account=order.account,
        symbol=order.symbol,
        event_time=order.created_at,
        raw=raw(order),
        exchange_order_id=str(order.order_id),
        client_order_id=order.client_order_id,
        status=order.status,
        side=order.side,
        order_type=order.order_type,
        reduce_only=order.reduce_only,
        orig_qty=order.orig_qty,
        executed_qty=order.executed_qty,
        avg_price=order.avg_price,
    )


def trade_fact(trade: tables.Row) -> c.ExchangeTradeFact:
    return c.ExchangeTradeFact(
        exchange=ExchangeName.PAPER,
        exchange_account=trade.account,
        symbol=trade.symbol,
        event_time=trade.created_at,
        raw=raw(trade),
        trade_id=str(trade.trade_id),
        exchange_order_id=str(trade.order_id),
        side=trade.side,
        price=trade.price,
        qty=trade.qty,
        realised_pnl_usd=trade.realised_pnl_usd,
        commission=trade.commission,
        commission_asset=trade.commission_asset,
    )


def algo_fact(stop: tables.Row, status: str, spawned_order_id: int | None = None) -> c.ExchangeAlgoOrderFact:
    return c.ExchangeAlgoOrderFact(
        exchange=ExchangeName.PAPER,
        exchange_account=stop.account,
        symbol=stop.symbol,
        event_time=utc_now(),
        raw={**raw(stop), "status": status, "spawned_order_id": spawned_order_id and str(spawned_order_id)},
        algo_id=str(stop.algo_id),
        client_algo_id=stop.client_algo_id,
        status=status,
        order_type=stop.kind,
        side=stop.side,
        trigger_price=stop.trigger_price,
        spawned_order_id=str(spawned_order_id) if spawned_order_id is not None else None,
    )
