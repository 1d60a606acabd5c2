"""Closure evidence and drift: which facts close a position, and what they prove, to the last decimal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id
from reconciler.domain import (
    AlgoFact,
    DriftKind,
    Facts,
    NoClosure,
    OrderFact,
    PositionView,
    TradeFact,
    closure,
    drift_of,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OPEN_INTENT = uuid.UUID("11111111-1111-1111-1111-111111111111")
TP_ID = client_order_id(OPEN_INTENT, OrderPurpose.TAKE_PROFIT)


def position(status="open", side="long", entry="2942.67", **extra) -> PositionView:
    return PositionView(
        position_id=uuid.uuid4(),
        bot_id=uuid.uuid4(),
        status=status,
        symbol="ETHUSDT",
        side=side,
        open_intent_id=OPEN_INTENT,
        executed_qty=Decimal("0.003"),
        avg_entry_price=Decimal(entry) if entry else None,
        **extra,
    )


def order(order_id="900", client="x-spawned", status="FILLED", executed="0.003", seconds=0, fact_id=1) -> OrderFact:
    return OrderFact(fact_id, order_id, client, status, Decimal(executed), T0 + timedelta(seconds=seconds))


def trade(trade_id, price, qty, pnl="0", fee="0.001", seconds=0, order_id="900", asset="USDT") -> TradeFact:
    return TradeFact(
        trade_id,
        order_id,
        Decimal(price),
        Decimal(qty),
        Decimal(pnl),
        Decimal(fee),
        asset,
        T0 + timedelta(seconds=seconds),
    )


TP_TRIGGERED = AlgoFact(7, "55", TP_ID, "TRIGGERED", "900")


def test_a_triggered_take_profit_closes_the_position_with_prices_pnl_and_fees_from_its_trades():
    facts = Facts(
        orders=(order(status="NEW", executed="0"), order()),
        algos=(TP_TRIGGERED,),
        trades=(
            trade("t1", "3000", "0.001", pnl="0.05733", fee="0.0012", seconds=1),
            trade("t2", "3001.5", "0.002", pnl="0.11766", fee="0.0024", seconds=3),
        ),
    )
    p = position()
    backfill = closure(p, facts)
    assert isinstance(backfill, c.BackfillClosure)
    assert (backfill.position_id, backfill.bot_id, backfill.close_exchange_order_id) == (p.position_id, p.bot_id, "900")
    assert backfill.close_price == Decimal(3001)  # (3 + 6.003) / 0.003
    assert backfill.closed_at == T0 + timedelta(seconds=3)
    assert backfill.realised_pnl_usd == Decimal("0.17499")  # 9.003 - 2942.67 * 0.003
    assert backfill.fee_usd == Decimal("0.0036")
    assert backfill.evidence["exchange_realised_pnl_usd"] == "0.17499"
    assert backfill.evidence["trade_ids"] == ["t1", "t2"] and backfill.evidence["route"] == "take_profit:algo:55"


def test_a_short_gains_when_the_price_falls_and_the_exchange_pnl_is_kept_beside_the_computed_one():
    facts = Facts(orders=(order(),), algos=(TP_TRIGGERED,), trades=(trade("t1", "2900", "0.003", pnl="0.99"),))
    backfill = closure(position(side="short", entry="3000"), facts)
    assert backfill.realised_pnl_usd == Decimal("0.3")
    assert backfill.evidence["exchange_realised_pnl_usd"] == "0.99" and backfill.evidence["computed_pnl_usd"] == "0.300"


def test_without_an_entry_price_the_exchanges_realised_pnl_is_used():
    facts = Facts(orders=(order(),), algos=(TP_TRIGGERED,), trades=(trade("t1", "2900", "0.003", pnl="-0.12"),))
    backfill = closure(position(entry=None), facts)
    assert backfill.realised_pnl_usd == Decimal("-0.12") and backfill.evidence["pnl_source"] == "exchange_realised_pnl"


def test_our_own_close_order_is_found_by_its_deterministic_client_id():
    close_intent = uuid.uuid4()
    facts = Facts(
        orders=(order(order_id="901", client=client_order_id(close_intent)),),
        trades=(trade("t9", "3000", "0.003", order_id="901"),),
    )
    backfill = closure(position(status="closing", close_intent_id=close_intent), facts)
    assert backfill.close_exchange_order_id == "901" and backfill.evidence["route"] == "close"


def test_a_closed_position_missing_close_facts_is_not_skipped():
    facts = Facts(orders=(order(),), algos=(TP_TRIGGERED,), trades=(trade("t1", "3000", "0.003"),))
    assert isinstance(closure(position(status="closed"), facts), c.BackfillClosure)
    complete = position(
        status="closed",
        close_exchange_order_id="900",
        close_price=Decimal(3000),
        closed_at=T0,
        realised_pnl_usd=Decimal("0.17"),
    )
    assert closure(complete, facts) is NoClosure.CLOSE_FACTS_COMPLETE


def test_every_missing_piece_of_evidence_has_its_reason():
    p = position()
    assert closure(p, Facts()) is NoClosure.NO_FILLED_CLOSING_ORDER
    assert closure(p, Facts(orders=(order(status="NEW"),), algos=(TP_TRIGGERED,))) is NoClosure.NO_FILLED_CLOSING_ORDER
    unrelated = Facts(orders=(order(),), trades=(trade("t1", "3000", "0.003"),))  # no algo links order 900 to p
    assert closure(p, unrelated) is NoClosure.NO_FILLED_CLOSING_ORDER
    partial = Facts(orders=(order(),), algos=(TP_TRIGGERED,), trades=(trade("t1", "3000", "0.002"),))
    assert closure(p, partial) is NoClosure.TRADES_INCOMPLETE
    bnb = Facts(orders=(order(),), algos=(TP_TRIGGERED,), trades=(trade("t1", "3000", "0.003", asset="BNB"),))
    assert closure(p, bnb) is NoClosure.FEE_NOT_IN_USD
    assert closure(position(status="failed"), bnb) is NoClosure.NOT_A_CLOSABLE_POSITION


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=2)
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(50), places=3)


@given(
    st.lists(st.tuples(prices, quantities, st.decimals(min_value=0, max_value=5, places=8)), min_size=1, max_size=8),
    prices,
    st.sampled_from(["long", "short"]),
)
def test_closure_arithmetic_is_exact(fills, entry, side):
    trades = tuple(trade(f"t{i}", str(p), str(q), fee=str(f), seconds=i) for i, (p, q, f) in enumerate(fills))
    qty = sum((q for _, q, _ in fills), Decimal(0))
    facts = Facts(orders=(order(executed=str(qty)),), algos=(TP_TRIGGERED,), trades=trades)
    backfill = closure(position(side=side, entry=str(entry)), facts)
    notional = sum((p * q for p, q, _ in fills), Decimal(0))
    direction = 1 if side == "long" else -1
    assert backfill.realised_pnl_usd == (notional - entry * qty) * direction  # exact: no division involved
    assert backfill.fee_usd == sum((f for _, _, f in fills), Decimal(0))
    assert abs(backfill.close_price * qty - notional) <= Decimal("1e-18") * qty  # the one rounding: 18 places
    assert min(p for p, _, _ in fills) <= backfill.close_price <= max(p for p, _, _ in fills)
    assert backfill.closed_at == T0 + timedelta(seconds=len(fills) - 1)


def test_drift_kinds():
    filled_tp = Facts(orders=(order(),), algos=(TP_TRIGGERED,), trades=(trade("t1", "3000", "0.003"),))
    kinds = {d.kind for d in drift_of(position(), filled_tp)}
    assert kinds == {DriftKind.EXCHANGE_FILLED_CLOSE_BUT_POSITION_OPEN, DriftKind.POSITION_OPEN_BUT_NO_FILL_FACT}
    entry = order(order_id="1", client=client_order_id(OPEN_INTENT), fact_id=2)
    assert drift_of(position(), Facts(orders=(entry,))) == []
    assert [d.kind for d in drift_of(position(status="closed"), Facts())] == [DriftKind.CLOSED_WITHOUT_CLOSE_FACTS]
    other = position(
        status="closed",
        close_exchange_order_id="777",
        close_price=Decimal(1),
        closed_at=T0,
        realised_pnl_usd=Decimal(0),
    )
    assert [d.kind for d in drift_of(other, filled_tp)] == [DriftKind.CLOSE_ORDER_DIFFERS_FROM_EXCHANGE]


def test_a_liquidation_on_the_positions_account_and_symbol_closes_it():
    entry = OrderFact(
        1, "1", client_order_id(OPEN_INTENT), "FILLED", Decimal("0.003"), T0, "binance_usdm", "a", "ETHUSDT"
    )

    def liquidation(account="a", symbol="ETHUSDT", seconds=60):
        return OrderFact(
            2,
            "950",
            "autoclose-1763",
            "FILLED",
            Decimal("0.003"),
            T0 + timedelta(seconds=seconds),
            "binance_usdm",
            account,
            symbol,
        )

    trades = (trade("t1", "2500", "0.003", order_id="950", seconds=60),)
    backfill = closure(position(), Facts(orders=(entry, liquidation()), trades=trades))
    assert backfill.evidence["route"] == "liquidation" and backfill.close_price == Decimal(2500)
    assert backfill.realised_pnl_usd == Decimal("-1.32801")  # (2500 - 2942.67) * 0.003
    for other in (liquidation(account="b"), liquidation(symbol="BTCUSDT"), liquidation(seconds=-1)):
        assert closure(position(), Facts(orders=(entry, other), trades=trades)) is NoClosure.NO_FILLED_CLOSING_ORDER
