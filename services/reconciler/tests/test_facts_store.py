"""Exchange facts are stored once however often they arrive, and never changed."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from reconciler_helpers import algo_fact, order_fact, publish, trade_fact, unique_id
from sqlalchemy.exc import DBAPIError

from egis_common.topics import EXCHANGE_FACTS
from egis_localinfra.testing import eventually
from reconciler.adapters import repository as repo

pytestmark = pytest.mark.infra


async def rows(runtime, table, column, value) -> list:
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(sa.select(table).where(column == value).order_by(table.c.id))).all())


async def test_facts_arriving_twice_are_stored_once_and_a_later_status_is_a_new_fact(reconciler_runtime):
    account = f"acct-{unique_id()}"
    order_id = unique_id()
    new = order_fact(account, order_id, "egt-x", status="NEW", executed="0")
    filled = order_fact(account, order_id, "egt-x", status="FILLED")
    trade = trade_fact(account, unique_id(), order_id, "3000", "0.003", pnl="0.17")
    algo = algo_fact(account, unique_id(), "egt-x", "TRIGGERED", spawned=order_id)
    await publish(reconciler_runtime, new, filled, trade, algo)
    # The same facts again, as a venue's replayed stream or a poll would send them: new message ids.
    await publish(
        reconciler_runtime, *(f.model_copy(update={"message_id": uuid.uuid4()}) for f in (new, filled, trade, algo))
    )
    await publish(reconciler_runtime, new)  # and a plain redelivery

    async def all_stored():
        orders = await rows(reconciler_runtime, repo.order_facts, repo.order_facts.c.exchange_account, account)
        trades = await rows(reconciler_runtime, repo.trade_facts, repo.trade_facts.c.exchange_account, account)
        algos = await rows(reconciler_runtime, repo.algo_facts, repo.algo_facts.c.exchange_account, account)
        return (orders, trades, algos) if len(orders) == 2 and trades and algos else None

    orders, trades, algos = await eventually(all_stored, what="facts stored")
    marker = order_fact(account, unique_id(), "egt-marker")  # same partition (key = account): after the replays
    await publish(reconciler_runtime, marker)
    await eventually(
        lambda: rows(
            reconciler_runtime, repo.order_facts, repo.order_facts.c.exchange_order_id, marker.exchange_order_id
        ),
        what="marker fact",
    )
    assert [
        r.status
        for r in await rows(reconciler_runtime, repo.order_facts, repo.order_facts.c.exchange_order_id, order_id)
    ] == ["NEW", "FILLED"]
    assert len(await rows(reconciler_runtime, repo.trade_facts, repo.trade_facts.c.exchange_account, account)) == 1
    assert len(await rows(reconciler_runtime, repo.algo_facts, repo.algo_facts.c.exchange_account, account)) == 1
    assert (trades[0].price, trades[0].realised_pnl_usd, trades[0].message_id) == (
        trade.price,
        trade.realised_pnl_usd,
        trade.message_id,
    )
    assert algos[0].spawned_order_id == order_id and orders[1].raw == {}


@pytest.mark.parametrize("table", [repo.order_facts, repo.algo_facts, repo.trade_facts], ids=lambda t: t.name)
async def test_the_database_refuses_to_update_or_delete_a_fact(reconciler_runtime, table):
    account = f"acct-{unique_id()}"
    order_id = unique_id()
    fact = {
        "order_facts": order_fact(account, order_id, "egx"),
        "trade_facts": trade_fact(account, unique_id(), order_id, "3000", "0.003"),
        "algo_facts": algo_fact(account, unique_id(), "egx", "NEW"),
    }[table.name]
    async with reconciler_runtime.engine.begin() as conn:
        assert await repo.insert_facts(conn, [fact]) == {table.name: 1}
        assert await repo.insert_facts(conn, [fact]) == {table.name: 0}
    for statement in (
        table.update().where(table.c.exchange_account == account).values(symbol="BTCUSDT"),
        table.delete().where(table.c.exchange_account == account),
        sa.text(f"TRUNCATE reconciler.{table.name}"),
    ):
        with pytest.raises(DBAPIError, match="exchange facts are immutable"):
            async with reconciler_runtime.engine.begin() as conn:
                await conn.execute(statement)
    stored = await rows(reconciler_runtime, table, table.c.exchange_account, account)
    assert len(stored) == 1 and stored[0].symbol == "ETHUSDT"
    assert EXCHANGE_FACTS.accepts(fact)
