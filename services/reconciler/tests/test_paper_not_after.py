"""The paper venue's exact "not found": an order is booked only before its `not_after`, under its advisory lock,
and a look-up after `not_after` that finds nothing is final, so the resolver settles it on its first look-up.

Real Postgres (the paper venue's tables in the executor's schema, read with the reconciler's engine as in
production) and Kafka; the local Binance server for Binance, which never answers a final "not found".
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from paper_helpers import (
    ledger_positions,
    paper_bot,
    paper_orders,
    reserved,
    running_paper_venue,
    unique_account,
    unique_symbol,
    went_pending,
)
from reconciler_helpers import BINANCE_ACCOUNT, publish

from egis_common import contracts as c
from egis_common.contracts import utc_now
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually
from egis_venues.paper import booking
from egis_venues.paper.lookup import PaperLookup
from egis_venues.port import Filled, MarketOrder, NotFound, OrderSide, Rejected
from reconciler.adapters.pending import pending_orders
from reconciler.flow import build_resolver

pytestmark = pytest.mark.infra
D = Decimal


@pytest.fixture(scope="module")
async def paper(reconciler_runtime):
    async with running_paper_venue() as venue:
        yield venue


async def priced_order(paper, not_after: datetime | None) -> MarketOrder:
    symbol = unique_symbol()
    await paper.set_mark_price(symbol, D("200"))
    return MarketOrder(
        unique_account(), symbol, OrderSide.BUY, D("0.05"), f"ego-{uuid.uuid4().hex[:20]}", False, not_after=not_after
    )


async def db_clock_past(engine, moment: datetime) -> bool:
    async with engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.clock_timestamp() > moment))


async def lookups_waiting_for_a_lock(engine) -> int:
    query = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    async with engine.connect() as conn:
        return await conn.scalar(query)


async def test_an_order_past_its_not_after_is_refused_books_nothing_and_is_then_finally_not_found(
    reconciler_runtime, paper
):
    late = await priced_order(paper, not_after=utc_now() - timedelta(seconds=1))
    refused = await paper.place_market_order(late)
    assert isinstance(refused, Rejected)
    assert (refused.code, refused.not_processed) == (booking.TOO_LATE, True)
    assert await paper_orders(reconciler_runtime.engine, late.account) == []
    lookup = PaperLookup(reconciler_runtime.engine)
    assert await lookup.find_order(late.account, late.symbol, late.client_order_id, late.not_after) == NotFound(
        final=True
    )
    # Without its not_after the same absence is only "not found yet": the window decides, as before.
    assert await lookup.find_order(late.account, late.symbol, late.client_order_id) == NotFound(final=False)

    in_time = await priced_order(paper, not_after=utc_now() + timedelta(minutes=1))
    booked = await paper.place_market_order(in_time)
    assert isinstance(booked, Filled) and booked.executed_qty == D("0.05")
    found = await lookup.find_order(in_time.account, in_time.symbol, in_time.client_order_id, in_time.not_after)
    assert isinstance(found, Filled) and found.exchange_order_id == booked.exchange_order_id
    absent = await priced_order(paper, not_after=utc_now() + timedelta(minutes=1))
    assert await lookup.find_order(absent.account, absent.symbol, absent.client_order_id, absent.not_after) == NotFound(
        final=False
    )  # it may still be booked


async def test_a_look_up_racing_a_booking_waits_for_it_and_then_finds_the_order(reconciler_runtime, paper):
    order = await priced_order(paper, not_after=utc_now() + timedelta(seconds=1))
    async with paper.uow.engine.connect() as conn:
        transaction = await conn.begin()
        [outcome] = await booking.book(paper.context, conn, [order])  # checked in time, not committed yet
        assert isinstance(outcome, Filled)
        await eventually(lambda: db_clock_past(reconciler_runtime.engine, order.not_after), what="not_after passed")
        assert await paper_orders(reconciler_runtime.engine, order.account) == []  # a plain read misses it
        looking = asyncio.create_task(
            PaperLookup(reconciler_runtime.engine).find_order(
                order.account, order.symbol, order.client_order_id, order.not_after
            )
        )
        await eventually(lambda: lookups_waiting_for_a_lock(reconciler_runtime.engine), what="look-up waiting")
        assert not looking.done()
        await transaction.commit()
    found = await asyncio.wait_for(looking, 15)
    assert isinstance(found, Filled) and found.exchange_order_id == outcome.exchange_order_id


async def test_binance_ignores_not_after_and_its_not_found_is_never_final(binance_lookup):
    found = await binance_lookup.find_order(
        BINANCE_ACCOUNT, "ETHUSDT", client_order_id(uuid.uuid4()), not_after=utc_now() - timedelta(minutes=10)
    )
    assert found == NotFound() and found.final is False


async def pending_row(runtime, intent_id) -> sa.Row | None:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(sa.select(pending_orders).where(pending_orders.c.intent_id == intent_id))).first()


async def failed_in_ledger(ledger_runtime, bot_id, position_id) -> bool:
    return (await ledger_positions(ledger_runtime, bot_id))[position_id].status == "failed"


async def test_a_paper_order_absent_past_its_not_after_is_released_on_its_first_look_up_without_the_window(
    reconciler_runtime, ledger_runtime, messages, paper
):
    bot = await paper_bot(ledger_runtime)
    past, soon, older = [await reserved(ledger_runtime, messages, bot, unique_symbol()) for _ in range(3)]
    now = utc_now()  # all three went pending just now: the paper window (20 s) is far from over
    # `soon`: far enough ahead that it has not passed by the first look-up, however slow the machine.
    mine = {
        past.intent_id: went_pending(bot, past, unique_symbol()).model_copy(
            update={"occurred_at": now, "not_after": now - timedelta(seconds=1)}
        ),
        soon.intent_id: went_pending(bot, soon, unique_symbol()).model_copy(
            update={"occurred_at": now, "not_after": now + timedelta(seconds=10)}
        ),
        older.intent_id: went_pending(bot, older, unique_symbol()).model_copy(update={"occurred_at": now}),
    }
    await publish(reconciler_runtime, *mine.values())

    async def recorded():
        rows = [await pending_row(reconciler_runtime, i) for i in mine]
        return rows if all(r is not None and r.not_after == mine[r.intent_id].not_after for r in rows) else None

    await eventually(recorded, what="pending recorded with not_after")
    resolver = build_resolver(reconciler_runtime)
    run = await resolver.run()

    assert past.intent_id in {order.intent_id for order, _ in run.settled}
    row = await pending_row(reconciler_runtime, past.intent_id)
    assert (row.resolution, row.resolved_by, row.attempts) == ("not_found_after_window", "auto", 1)
    assert row.evidence["not_found"] == "final" and row.resolved_at - now < timedelta(seconds=20)
    [release] = await messages.wait_for(
        lambda m: isinstance(m, c.ReleaseReservation) and m.intent_id == past.intent_id, what="release"
    )
    assert release.reason == "not_found_after_window"
    await eventually(lambda: failed_in_ledger(ledger_runtime, bot.bot_id, past.position_id), what="released")

    # Not final yet: looked up again no later than just after its not_after (the backoff may come sooner).
    waiting = await pending_row(reconciler_runtime, soon.intent_id)
    assert (waiting.resolved_at, waiting.last_lookup["resolution"]) == (None, "not_found_within_window")
    assert waiting.next_attempt_at <= mine[soon.intent_id].not_after + timedelta(seconds=1)
    # Without a not_after (an older executor): today's window, not settled on a first look-up.
    legacy = await pending_row(reconciler_runtime, older.intent_id)
    assert (legacy.resolved_at, legacy.last_lookup["resolution"]) == (None, "not_found_within_window")

    async def settled_soon():
        await resolver.run()
        return (await pending_row(reconciler_runtime, soon.intent_id)).resolved_at

    resolved_at = await eventually(settled_soon, timeout=30, interval=0.5, what="settled after not_after")
    assert resolved_at - now < timedelta(seconds=20)
    assert (await pending_row(reconciler_runtime, older.intent_id)).resolved_at is None  # its window goes on
