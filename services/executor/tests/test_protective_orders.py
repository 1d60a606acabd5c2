"""After an open fill, the stops the venue accepted reach the ledger's position as their client algo ids."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import of, open_intent, position_in, positions, publish, rows, unique_symbol

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id
from egis_common.topics import EXECUTIONS
from egis_localinfra.testing import eventually
from executor.adapters import repository as repo
from executor.domain import Intent, IntentStatus

pytestmark = pytest.mark.infra
D = Decimal


async def open_with_stops(executor, producer, bot, **stops) -> tuple[c.OrderIntent, str]:
    symbol = unique_symbol()
    await executor.paper.set_mark_price(symbol, D("100"))
    intent = open_intent(bot, symbol, **stops)
    await publish(producer, intent)
    return intent, symbol


async def stops_settled(engine, intent_id) -> list:
    async def probe():
        found = await rows(engine, sa.select(repo.stop_orders).where(repo.stop_orders.c.intent_id == intent_id))
        return found if found and all(s.status != "placing" for s in found) else None

    return await eventually(probe, what=f"the stops of {intent_id} settled")


async def position_with_stop_ids(engine, bot_id):
    async def probe():
        return [p for p in await positions(engine, bot_id) if p.tp_order_id or p.sl_order_id]

    return (await eventually(probe, what="the stop ids on the ledger's position"))[0]


async def test_the_ledger_position_records_the_client_algo_ids_of_both_stops(executor, producer, make_bot, tail):
    bot = await make_bot("100")
    intent, _ = await open_with_stops(executor, producer, bot, take_profit_price=D("110"), stop_loss_price=D("95"))
    position = await position_with_stop_ids(executor.engine, bot.bot_id)
    tp_id = client_order_id(intent.intent_id, OrderPurpose.TAKE_PROFIT)
    sl_id = client_order_id(intent.intent_id, OrderPurpose.STOP_LOSS)
    assert (position.status, position.tp_order_id, position.sl_order_id) == ("open", tp_id, sl_id)
    (message,) = await tail.wait_for(of(c.ProtectiveOrdersPlaced, intent_id=intent.intent_id))
    assert (message.bot_id, message.position_id) == (bot.bot_id, position.position_id)
    assert {s.client_algo_id for s in await stops_settled(executor.engine, intent.intent_id)} == {tp_id, sl_id}


async def test_only_the_stops_the_venue_accepted_are_named(executor, producer, make_bot, tail):
    bot = await make_bot("100")
    # A long's take-profit below the mark would trigger at once: the venue refuses it (-2021).
    intent, _ = await open_with_stops(executor, producer, bot, take_profit_price=D("90"), stop_loss_price=D("95"))
    position = await position_with_stop_ids(executor.engine, bot.bot_id)
    assert (position.tp_order_id, position.sl_order_id) == (
        None,
        client_order_id(intent.intent_id, OrderPurpose.STOP_LOSS),
    )
    (message,) = await tail.wait_for(of(c.ProtectiveOrdersPlaced, intent_id=intent.intent_id))
    assert message.tp_order_id is None
    stops = await stops_settled(executor.engine, intent.intent_id)
    assert sorted((s.purpose, s.status, s.exchange_code) for s in stops) == [
        ("stop_loss", "placed", None),
        ("take_profit", "rejected", "-2021"),
    ]


async def test_nothing_is_sent_when_no_stop_was_placed(executor, producer, make_bot):
    bot = await make_bot("100")
    intent, _ = await open_with_stops(executor, producer, bot, take_profit_price=D("90"), stop_loss_price=D("105"))
    stops = await stops_settled(executor.engine, intent.intent_id)
    assert {s.status for s in stops} == {"rejected"}
    # The stops' outcome and any message about them commit together: none is in the outbox, none ever will be.
    outbox = executor.runtime.outbox.table
    sent = [
        EXECUTIONS.decode(bytes(r.payload))
        for r in await rows(executor.engine, sa.select(outbox.c.payload).where(outbox.c.topic == EXECUTIONS.name))
    ]
    assert [m for m in sent if isinstance(m, c.ProtectiveOrdersPlaced) and m.intent_id == intent.intent_id] == []
    position = await position_in(executor.engine, bot.bot_id, "open")
    assert (position.tp_order_id, position.sl_order_id) == (None, None)


async def test_a_bots_percentages_price_the_stops_from_the_fill_and_an_explicit_price_wins(
    executor, producer, make_bot
):
    short_bot = await make_bot("100", take_profit_pct=D("2"), stop_loss_pct=D("1"))
    short, _ = await open_with_stops(
        executor,
        producer,
        short_bot,
        side=c.Side.SHORT,
        take_profit_pct=short_bot.take_profit_pct,
        stop_loss_pct=short_bot.stop_loss_pct,
    )
    long_bot = await make_bot("100", take_profit_pct=D("2"), stop_loss_pct=D("1"))
    # The router never sends a leg's percentage next to its price; if one came, the price would win.
    long, _ = await open_with_stops(
        executor, producer, long_bot, take_profit_price=D("110"), take_profit_pct=D("2"), stop_loss_pct=D("1")
    )
    # Filled at the mark, 100: a short's TP 2 % below it and SL 1 % above; the long's SL 1 % below.
    expected_short = {("take_profit", "BUY", D("98")), ("stop_loss", "BUY", D("101"))}
    expected_long = {("take_profit", "SELL", D("110")), ("stop_loss", "SELL", D("99"))}
    for intent, bot, expected in [(short, short_bot, expected_short), (long, long_bot, expected_long)]:
        stops = await stops_settled(executor.engine, intent.intent_id)
        assert {(s.purpose, s.side, s.trigger_price) for s in stops} == expected
        assert {s.status for s in stops} == {"placed"}
        position = await position_with_stop_ids(executor.engine, bot.bot_id)
        assert (position.avg_entry_price, position.tp_order_id, position.sl_order_id) == (
            D("100"),
            client_order_id(intent.intent_id, OrderPurpose.TAKE_PROFIT),
            client_order_id(intent.intent_id, OrderPurpose.STOP_LOSS),
        )


async def test_a_stop_whose_end_was_heard_before_its_placement_was_recorded_stays_finished(executor, make_bot):
    """The venue's fact can come first: a stop that fires at once ends before the executor records it placed."""
    bot = await make_bot("100")
    intent_id, prefix = bot.bot_id, f"egt-{bot.bot_id.hex[:12]}"
    async with executor.engine.begin() as conn:
        await repo.insert_new(
            conn,
            [
                Intent(
                    intent_id=intent_id,
                    signal_id=intent_id,
                    bot_id=bot.bot_id,
                    kind=c.IntentKind.OPEN,
                    side=c.Side.LONG,
                    symbol=unique_symbol(),
                    exchange=c.ExchangeName.PAPER,
                    exchange_account=bot.exchange_account,
                    status=IntentStatus.PREFLIGHT_REQUESTED,
                    requested_size_usd=D("10"),
                )
            ],
        )
        await repo.insert_stops(
            conn,
            [
                {
                    "client_algo_id": f"{prefix}-{purpose}",
                    "intent_id": intent_id,
                    "purpose": purpose,
                    "kind": "STOP_MARKET",
                    "side": "SELL",
                    "trigger_price": D("95"),
                    "status": "placing",
                }
                for purpose in ("take_profit", "stop_loss")
            ],
        )
        ended = c.ExchangeAlgoOrderFact(
            exchange=c.ExchangeName.PAPER,
            exchange_account=bot.exchange_account,
            symbol="X",
            event_time=c.utc_now(),
            raw={},
            algo_id="41",
            client_algo_id=f"{prefix}-take_profit",
            status="FINISHED",
            order_type="STOP_MARKET",
            side="SELL",
            trigger_price=D("95"),
            spawned_order_id="42",
        )
        await repo.stops_finished(conn, [ended])
        for purpose, algo_id in (("take_profit", "41"), ("stop_loss", "43")):
            await repo.stop_placed(conn, f"{prefix}-{purpose}", status="placed", algo_id=algo_id)
    table = repo.stop_orders
    found = await rows(executor.engine, sa.select(table).where(table.c.intent_id == intent_id))
    assert sorted((s.purpose, s.status, s.detail, s.algo_id) for s in found) == [
        ("stop_loss", "placed", "", "43"),
        ("take_profit", "finished", "FINISHED", "41"),
    ]
