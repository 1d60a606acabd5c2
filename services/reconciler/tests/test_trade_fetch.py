"""When the stream missed a closing order's trades, sync fetches them from the venue's REST API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from reconciler_helpers import (
    BINANCE_ACCOUNT,
    BINANCE_KEY,
    BINANCE_SECRET,
    admin_command,
    ask,
    base,
    publish,
)

from egis_binance_local import local_async_client
from egis_common import contracts as c
from egis_common.contracts import AdminCommandName
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually
from reconciler.adapters import read_model
from reconciler.adapters.repository import trade_facts

pytestmark = pytest.mark.infra


async def sell_on_exchange(server, client_id: str) -> dict:
    client = local_async_client(server.base_url, BINANCE_KEY, BINANCE_SECRET)
    try:
        return await client.futures_create_order(
            symbol="ETHUSDT",
            side="SELL",
            type="MARKET",
            quantity="0.01",
            newClientOrderId=client_id,
            newOrderRespType="RESULT",
        )
    finally:
        await client.close_connection()


async def test_missing_trades_of_a_filled_close_are_fetched_stored_and_used(
    reconciler_runtime, binance_server, messages
):
    bot_id, position_id, open_intent, close_intent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with reconciler_runtime.engine.begin() as conn:
        await conn.execute(
            read_model.positions.insert().values(
                position_id=position_id,
                bot_id=bot_id,
                symbol="ETHUSDT",
                side="short",
                status="closing",
                open_intent_id=open_intent,
                close_intent_id=close_intent,
                executed_qty=Decimal("0.01"),
                avg_entry_price=Decimal(3100),
                updated_at=datetime.now(UTC),
            )
        )
    body = await sell_on_exchange(binance_server, client_order_id(close_intent))
    order_id = str(body["orderId"])
    await publish(
        reconciler_runtime,
        c.ExchangeOrderFact(  # the order's final state arrived; its trade did not
            **{**base(BINANCE_ACCOUNT), "exchange": c.ExchangeName.BINANCE_USDM},
            exchange_order_id=order_id,
            client_order_id=client_order_id(close_intent),
            status="FILLED",
            side="SELL",
            order_type="MARKET",
            reduce_only=False,
            orig_qty=Decimal("0.01"),
            executed_qty=Decimal("0.01"),
            avg_price=Decimal(body["avgPrice"]),
        ),
    )

    async def repairable():
        reply = await ask(
            reconciler_runtime, messages, admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot_id)
        )
        return reply if reply.report["would_change"] == 1 else None

    line = (await eventually(repairable, what="trades fetched")).report["positions"][0]
    backfill = line["backfill"]
    assert backfill["close_exchange_order_id"] == order_id
    close_price = Decimal(backfill["close_price"])
    assert close_price == Decimal(body["avgPrice"])
    assert Decimal(backfill["realised_pnl_usd"]) == (Decimal(3100) - close_price) * Decimal("0.01")  # a short
    async with reconciler_runtime.engine.connect() as conn:
        stored = (await conn.execute(sa.select(trade_facts).where(trade_facts.c.exchange_order_id == order_id))).all()
    assert [t.trade_id for t in stored] == backfill["evidence"]["trade_ids"] and stored[0].qty == Decimal("0.01")
    assert Decimal(backfill["fee_usd"]) == stored[0].commission > 0
