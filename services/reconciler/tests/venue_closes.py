"""Positions the exchange closed while nobody listened: on the local venue, and as the reconciler knows them.

On the venue each position is an entry fill, a take-profit and a stop-loss algo
order, and the trigger of one of them (its spawned order filled, with trades).
The reconciler's read model has the position closed without close facts, and
its facts hold only the entry's fill: the stream missed everything after it.
Shared by the tests and bench/reconciler/sync_dry_run.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from egis_binance_local import local_async_client
from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id
from reconciler.adapters import read_model
from reconciler.adapters.repository import insert_facts

SYMBOL, QTY = "ETHUSDT", "0.01"
MARK, TAKE_PROFIT, STOP_LOSS = "3000", "3100", "2900"


async def close_on_venue(server, api_key: str, api_secret: str, count: int, *, stop_loss_every: int = 4) -> list[dict]:
    """`count` positions opened and closed on the venue, one after another; every n-th by its stop-loss."""
    client = local_async_client(server.base_url, api_key, api_secret)
    closed = []
    try:
        for n in range(count):
            closed.append(await _one(server, client, by_stop_loss=n % stop_loss_every == stop_loss_every - 1))
    finally:
        await client.close_connection()
    return closed


async def _one(server, client, *, by_stop_loss: bool) -> dict:
    open_intent = uuid.uuid4()
    server.set_mark_price(SYMBOL, MARK)
    entry = await client.futures_create_order(
        symbol=SYMBOL,
        side="BUY",
        type="MARKET",
        quantity=QTY,
        newClientOrderId=client_order_id(open_intent),
        newOrderRespType="RESULT",
    )
    for purpose, kind, trigger in (
        (OrderPurpose.TAKE_PROFIT, "TAKE_PROFIT_MARKET", TAKE_PROFIT),
        (OrderPurpose.STOP_LOSS, "STOP_MARKET", STOP_LOSS),
    ):
        await client.futures_create_algo_order(
            algoType="CONDITIONAL",
            symbol=SYMBOL,
            side="SELL",
            type=kind,
            triggerPrice=trigger,
            closePosition="true",
            workingType="MARK_PRICE",
            clientAlgoId=client_order_id(open_intent, purpose),
        )
    server.set_mark_price(SYMBOL, STOP_LOSS if by_stop_loss else TAKE_PROFIT)
    other = OrderPurpose.TAKE_PROFIT if by_stop_loss else OrderPurpose.STOP_LOSS
    # The venue cancels the other side when the position closes; so does this helper, by hand.
    await client.futures_cancel_algo_order(symbol=SYMBOL, clientAlgoId=client_order_id(open_intent, other))
    server.set_mark_price(SYMBOL, MARK)
    return {"open_intent_id": open_intent, "entry": entry, "by_stop_loss": by_stop_loss}


def known_to_reconciler(closed: list[dict], bot_id: uuid.UUID, account: str) -> tuple[list[dict], list[c.Message]]:
    """Read-model rows (closed, no close facts) and the entry fills' facts of these positions."""
    now = datetime.now(UTC)
    rows, facts = [], []
    for position in closed:
        entry = position["entry"]
        rows.append(
            {
                "position_id": uuid.uuid4(),
                "bot_id": bot_id,
                "symbol": SYMBOL,
                "side": "long",
                "status": "closed",
                "open_intent_id": position["open_intent_id"],
                "executed_qty": Decimal(QTY),
                "avg_entry_price": Decimal(entry["avgPrice"]),
                "opened_at": now,
                "updated_at": now,
            }
        )
        facts.append(
            c.ExchangeOrderFact(
                exchange=c.ExchangeName.BINANCE_USDM,
                exchange_account=account,
                symbol=SYMBOL,
                event_time=now,
                exchange_order_id=str(entry["orderId"]),
                client_order_id=entry["clientOrderId"],
                status="FILLED",
                side="BUY",
                order_type="MARKET",
                reduce_only=False,
                orig_qty=Decimal(QTY),
                executed_qty=Decimal(entry["executedQty"]),
                avg_price=Decimal(entry["avgPrice"]),
            )
        )
    return rows, facts


async def store(conn, rows: list[dict], facts: list[c.Message]) -> None:
    await conn.execute(read_model.positions.insert(), rows)
    await insert_facts(conn, facts)
