"""Steps a user takes through the public entry points, and what they read back."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from egis_common import contracts as c
from egis_common.ids import intent_id_for
from egis_common.runtime import Runtime
from egis_common.topics import encode, key_for, topic_for
from egis_localinfra.testing import eventually
from egis_venues.paper import tables as paper_tables
from executor.adapters import repository as executor_repo
from ledger import repository as ledger_repo

BINANCE_ACCOUNT = "e2e-binance"  # the executor's name for the account; a bot's exchange_account names it
BINANCE_KEY, BINANCE_SECRET = "e2e-key", "e2e-secret"


async def post_signal(gateway: httpx.AsyncClient, bot: dict, secret: str, action: str) -> uuid.UUID:
    """POST /v1/signals as TradingView would; returns the intent id the router derives from the signal."""
    body = {
        "signal_key": bot["signal_key"],
        "secret": secret,
        "action": action,
        "symbol": "ETHUSDT",
        "signal_id": uuid.uuid4().hex,
    }
    response = await gateway.post("/v1/signals", json=body)
    assert response.status_code == 202, response.text
    return intent_id_for(uuid.UUID(response.json()["signal_id"]))


async def publish(producer: AIOKafkaProducer, message: c.Message) -> None:
    await producer.send_and_wait(topic_for(message).name, encode(message), key=key_for(message))


async def position_in(runtime: Runtime, bot_id: str, status: str) -> sa.Row:
    """The bot's one position once it has `status`."""
    table = ledger_repo.positions

    async def probe():
        async with runtime.engine.connect() as conn:
            found = (await conn.execute(sa.select(table).where(table.c.bot_id == uuid.UUID(bot_id)))).all()
        return found if [p.status for p in found] == [status] else None

    return (await eventually(probe, timeout=30, what=f"one {status} position of bot {bot_id}"))[0]


async def intent_row(runtime: Runtime, intent_id: uuid.UUID) -> sa.Row:
    table = executor_repo.intents
    async with runtime.engine.connect() as conn:
        return (await conn.execute(sa.select(table).where(table.c.intent_id == intent_id))).one()


async def budget(ledger_api: httpx.AsyncClient, bot: dict) -> dict[str, Decimal]:
    response = await ledger_api.get(f"/v1/bots/{bot['bot_id']}/budget")
    assert response.status_code == 200, response.text
    return {k: Decimal(v) for k, v in response.json().items() if k != "bot_id"}


async def paper_mark_price(producer: AIOKafkaProducer, executor, symbol: str, price: Decimal) -> None:
    """A mark price on egis.exchange.mark-prices.v1, as `egis-local mark-price` sends it, until the venue has it."""
    await publish(producer, c.MarkPrice(symbol=symbol, price=price))

    async def probe():
        async with executor.runtime.engine.connect() as conn:
            return await paper_tables.mark(conn, symbol) == price

    await eventually(probe, what=f"the paper venue's mark price of {symbol} at {price}")


async def paper_orders(executor, account: str) -> list[sa.Row]:
    query = sa.select(paper_tables.orders).where(paper_tables.orders.c.account == account)
    async with executor.runtime.engine.connect() as conn:
        return list((await conn.execute(query.order_by(paper_tables.orders.c.order_id))).all())
