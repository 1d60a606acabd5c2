"""The read model of ledger positions follows ledger events, including one it never saw open."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from egis_common import contracts as c
from reconciler.adapters import read_model

pytestmark = pytest.mark.infra


async def _row(engine, position_id):
    async with engine.connect() as conn:
        return (
            await conn.execute(sa.select(read_model.positions).where(read_model.positions.c.position_id == position_id))
        ).one()


def _reduced(bot_id, position_id, remaining: str) -> c.PositionReduced:
    return c.PositionReduced(
        bot_id=bot_id,
        position_id=position_id,
        symbol="ETHUSDT",
        closed_qty=Decimal("0.001"),
        remaining_qty=Decimal(remaining),
        size_usd=Decimal("5.88534"),
        realised_pnl_usd=Decimal("0.05"),
    )


async def test_a_partial_close_leaves_the_position_open_with_what_remains(reconciler_runtime):
    bot_id, position_id, close_intent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    opened = c.PositionOpened(
        bot_id=bot_id,
        position_id=position_id,
        symbol="ETHUSDT",
        side=c.Side.LONG,
        requested_size_usd=Decimal("10"),
        size_usd=Decimal("8.82801"),
        executed_qty=Decimal("0.003"),
        avg_entry_price=Decimal("2942.67"),
        opened_at=datetime(2026, 11, 21, tzinfo=UTC),
    )
    closing = c.BudgetReserved(
        intent_id=close_intent,
        bot_id=bot_id,
        position_id=position_id,
        intent=c.IntentKind.CLOSE,
        symbol="ETHUSDT",
        side=c.Side.LONG,
        reserved_usd=Decimal("0"),
        close_qty=Decimal("0.003"),
    )
    async with reconciler_runtime.engine.begin() as conn:
        await read_model.apply_events(conn, [opened, closing, _reduced(bot_id, position_id, "0.002")])
    row = await _row(reconciler_runtime.engine, position_id)
    assert (row.status, row.executed_qty, row.close_intent_id) == ("open", Decimal("0.002"), None)


async def test_a_partial_close_of_a_position_never_seen_open_is_recorded_not_refused(reconciler_runtime):
    # Its earlier events are past the topic's retention: the batch must not fail on it.
    bot_id, position_id = uuid.uuid4(), uuid.uuid4()
    async with reconciler_runtime.engine.begin() as conn:
        assert await read_model.apply_events(conn, [_reduced(bot_id, position_id, "0.002")]) == 1
    row = await _row(reconciler_runtime.engine, position_id)
    assert (row.status, row.symbol, row.executed_qty) == ("open", "ETHUSDT", Decimal("0.002"))
