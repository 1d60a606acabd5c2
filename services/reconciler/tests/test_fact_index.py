"""FactIndex: each position's rules, run on its own facts only, decide exactly as on everyone's facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id
from reconciler.domain import (
    AlgoFact,
    FactIndex,
    Facts,
    OrderFact,
    PositionView,
    TradeFact,
    closure,
    drift_of,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
QTY = Decimal("0.01")


def _position(n: int, status: str, recorded: str | None = None, closing: bool = False) -> PositionView:
    return PositionView(
        position_id=uuid.UUID(int=n),
        bot_id=uuid.UUID(int=1000 + n),
        status=status,
        symbol="ETHUSDT",
        side="long",
        open_intent_id=uuid.UUID(int=2000 + n),
        close_intent_id=uuid.UUID(int=3000 + n) if closing else None,
        executed_qty=QTY,
        avg_entry_price=Decimal(3000),
        close_exchange_order_id=recorded,
        close_price=Decimal(3100) if recorded else None,
        closed_at=T0 if recorded else None,
        realised_pnl_usd=Decimal(1) if recorded else None,
    )


def _order(fact_id: int, order_id: str, client_id: str, account: str, seconds: int = 0) -> OrderFact:
    return OrderFact(
        fact_id, order_id, client_id, "FILLED", QTY, T0 + timedelta(seconds=seconds), "binance_usdm", account, "ETHUSDT"
    )


def _trade(order_id: str, seconds: int = 1) -> TradeFact:
    return TradeFact(
        f"t{order_id}",
        order_id,
        Decimal(3100),
        QTY,
        Decimal(1),
        Decimal("0.0155"),
        "USDT",
        T0 + timedelta(seconds=seconds),
    )


def mixed() -> tuple[list[PositionView], Facts]:
    """Positions closed by a take-profit, by our own close, by a liquidation; open ones; one without facts."""
    positions = [
        _position(1, "closed"),
        _position(2, "open"),
        _position(3, "closing", closing=True),
        _position(4, "open"),
        _position(5, "closed", recorded="999"),
        _position(6, "open"),
    ]
    orders, algos, trades = [], [], []
    for n, p in enumerate(positions[:5], start=1):
        orders.append(_order(10 * n, f"e{n}", client_order_id(p.open_intent_id), f"acct-{n}"))
    # 1 and 5: the take-profit's spawned order filled; 2 too, while the ledger thinks it open.
    for n in (1, 2, 5):
        tp = client_order_id(positions[n - 1].open_intent_id, OrderPurpose.TAKE_PROFIT)
        algos += [
            AlgoFact(10 * n + 1, f"a{n}", tp, "NEW", None),
            AlgoFact(10 * n + 2, f"a{n}", tp, "TRIGGERED", f"s{n}"),
        ]
        orders.append(_order(10 * n + 3, f"s{n}", f"algo{n}", f"acct-{n}", seconds=5))
        trades.append(_trade(f"s{n}"))
    # 3: our own close order filled; 4: liquidated on its account and symbol, and one elsewhere that is not its.
    orders.append(_order(33, "c3", client_order_id(positions[2].close_intent_id), "acct-3", seconds=5))
    trades.append(_trade("c3"))
    orders += [_order(43, "l4", "autoclose-1", "acct-4", seconds=9), _order(44, "l9", "autoclose-2", "acct-9", 9)]
    trades += [_trade("l4"), _trade("l9")]
    return positions, Facts(orders=tuple(orders), algos=tuple(algos), trades=tuple(trades))


def _comparable(outcome):
    return (
        outcome.model_dump(exclude={"message_id", "occurred_at"}) if isinstance(outcome, c.BackfillClosure) else outcome
    )


def test_each_positions_own_facts_give_the_same_drift_and_closures_as_all_the_facts():
    positions, facts = mixed()
    index = FactIndex(facts)
    for p in positions:
        assert drift_of(p, index.of(p)) == drift_of(p, facts)
        assert _comparable(closure(p, index.of(p))) == _comparable(closure(p, facts))
    kinds = sorted(d.kind.value for p in positions for d in drift_of(p, index.of(p)))
    assert kinds == [
        "close_order_differs_from_exchange",
        "closed_without_close_facts",
        "exchange_filled_close_but_position_open",
        "exchange_filled_close_but_position_open",
        "exchange_filled_close_but_position_open",
        "position_open_but_no_fill_fact",
    ]
    assert index.of(positions[5]) == Facts()
