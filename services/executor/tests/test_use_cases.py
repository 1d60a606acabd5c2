"""The executor's use cases called directly, on the real database, with a counting stub around the paper venue."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from executor_helpers import (
    bot_of,
    intent_in,
    intent_row,
    of,
    open_intent,
    paper_orders,
    position_in,
    reserved,
    rows,
    unique_symbol,
)
from prometheus_client import REGISTRY

from egis_common import contracts as c
from egis_common.contracts import ExchangeName, utc_now
from egis_venues.paper import tables as paper
from executor import domain as decisions
from executor.adapters import repository as repo
from executor.flow import build_executor
from executor.handlers import ask_again

pytestmark = pytest.mark.infra
D = Decimal


class CountingVenue:
    """Counts the orders that reach the venue; everything else is the paper venue's."""

    def __init__(self, venue) -> None:
        self.venue, self.orders = venue, []

    def __getattr__(self, name):
        return getattr(self.venue, name)

    async def place_market_order(self, order):
        self.orders.append(order)
        return await self.venue.place_market_order(order)


@pytest.fixture
def counted(executor):
    """An executor wired like the service's, whose paper orders are counted; it consumes nothing."""
    venue = CountingVenue(executor.paper)
    return build_executor(executor.runtime, {ExchangeName.PAPER: venue}, executor.wiring.bots), venue


async def test_a_batch_of_new_intents_asks_for_each_reservation_once(executor, counted):
    built, _ = counted
    intents = [open_intent(bot_of(executor)) for _ in range(3)]
    async with executor.runtime.uow.begin() as conn:
        first = await built.receive_intents(conn, [*intents, intents[0]])
    async with executor.runtime.uow.begin() as conn:
        again = await built.receive_intents(conn, intents)
    assert [d.intent.status.value for _, d in first] == ["preflight_requested"] * 3
    assert [d.intent for _, d in again] == [None] * 3
    outbox = executor.runtime.outbox.table
    query = sa.select(outbox.c.payload).where(outbox.c.topic == "egis.ledger.commands.v1")
    commands = await rows(executor.engine, query)
    asked = [c.ReserveBudget.model_validate_json(bytes(r.payload)).intent_id for r in commands]
    assert sorted(i for i in asked if i in {x.intent_id for x in intents}) == sorted(x.intent_id for x in intents)


async def receive_withheld(executor, built, intents) -> None:
    """The intents recorded, their ReserveBudget withheld from Kafka: the test plays the ledger.

    Published, they would reach the session's real ledger, whose answer (this bot is unknown to
    it) the running executor could act on before the test's own answers arrive.
    """
    async with executor.runtime.uow.begin() as conn:
        made = await built.receive_intents(conn, intents)
        commands = [m.message_id for _, d in made for m in d.messages]
        outbox = executor.runtime.outbox.table
        await conn.execute(outbox.delete().where(outbox.c.message_id.in_(commands)))


async def test_the_same_reservation_twice_in_one_batch_or_again_later_places_one_order(executor, counted):
    built, venue = counted
    symbol = unique_symbol()
    await executor.paper.set_mark_price(symbol, D("100"))
    intent = open_intent(bot_of(executor), symbol)
    await receive_withheld(executor, built, [intent])
    answer = reserved(intent)
    repeat = answer.model_copy(update={"message_id": uuid.uuid4()})  # the ledger's stored answer, sent again
    await built.handle_answers([answer, repeat, answer])
    assert await built.handle_answers([repeat]) == []
    assert len(venue.orders) == 1
    assert (await intent_row(executor.engine, intent.intent_id)).status == "filled"


async def test_answers_for_intents_this_executor_never_saw_are_ignored(executor, counted):
    built, venue = counted
    stranger = open_intent(bot_of(executor))
    assert (
        await built.handle_answers(
            [
                reserved(stranger),
                c.PreflightRejected(
                    intent_id=stranger.intent_id, bot_id=stranger.bot_id, reason=c.PreflightRejectReason.UNKNOWN_BOT
                ),
            ]
        )
        == []
    )
    assert venue.orders == []


async def test_a_batch_of_reservations_is_one_venue_transaction_with_every_outcome_in_place(executor, counted):
    built, venue = counted
    symbol = unique_symbol()
    await executor.paper.set_mark_price(symbol, D("100"))
    poor = bot_of(executor)
    await executor.paper.fund(poor.exchange_account, D("1"))
    intents = [
        open_intent(bot_of(executor), symbol),
        open_intent(poor, symbol),
        open_intent(bot_of(executor), symbol, "4"),
    ]
    await receive_withheld(executor, built, intents)
    made = dict((m.intent_id, d) for m, d in await built.handle_answers([reserved(i) for i in intents]))
    assert [made[i.intent_id].intent.status.value for i in intents] == ["filled", "rejected", "rejected"]
    assert [made[i.intent_id].intent.exchange_code for i in intents] == [None, "-2019", "-4164"]
    assert len(venue.orders) == 3


async def test_every_order_of_a_venue_batch_gets_its_own_fill_back(executor, counted):
    """The venue books a batch with one insert of orders and one of trades: each result must find its order."""
    built, _ = counted
    symbol = unique_symbol()
    await executor.paper.set_mark_price(symbol, D("100"))
    sizes = ["30", "10", "50", "20", "40"]
    intents = [open_intent(bot_of(executor), symbol, size) for size in sizes]
    await receive_withheld(executor, built, intents)
    made = dict((m.intent_id, d) for m, d in await built.handle_answers([reserved(i) for i in intents]))
    assert [made[i.intent_id].intent.executed_qty for i in intents] == [D(size) / 100 for size in sizes]
    async with executor.engine.connect() as conn:
        booked = {
            row.client_order_id: row.executed_qty
            for row in await conn.execute(sa.select(paper.orders).where(paper.orders.c.symbol == symbol))
        }
    assert booked == {
        made[i.intent_id].intent.client_order_id: D(size) / 100 for i, size in zip(intents, sizes, strict=True)
    }


class InFlight:
    """Counts the orders in flight at once, each held a moment before the paper venue fills it."""

    def __init__(self, venue, batches_concurrent_calls: bool) -> None:
        self.venue, self.now, self.most = venue, 0, 0
        self.batches_concurrent_calls = batches_concurrent_calls

    def __getattr__(self, name):
        return getattr(self.venue, name)

    async def place_market_order(self, order):
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.05)
            return await self.venue.place_market_order(order)
        finally:
            self.now -= 1


@pytest.mark.parametrize(("batches_concurrent_calls", "most_in_flight"), [(False, 2), (True, 5)])
async def test_exchange_concurrency_bounds_a_remote_venue_and_not_one_that_batches_calls_itself(
    executor, batches_concurrent_calls, most_in_flight
):
    venue = InFlight(executor.paper, batches_concurrent_calls)
    bounded = executor.runtime.settings.model_copy(update={"exchange_concurrency": 2})
    runtime = SimpleNamespace(
        settings=bounded, uow=executor.runtime.uow, outbox=executor.runtime.outbox, inbox=executor.runtime.inbox
    )
    built = build_executor(runtime, {ExchangeName.PAPER: venue}, executor.wiring.bots)
    symbol = unique_symbol()
    await executor.paper.set_mark_price(symbol, D("100"))
    intents = [open_intent(bot_of(executor), symbol) for _ in range(5)]
    await receive_withheld(executor, built, intents)
    made = await built.handle_answers([reserved(i) for i in intents])
    assert sorted(d.intent.status.value for _, d in made) == ["filled"] * 5
    assert venue.most == most_in_flight


async def test_an_intent_left_submitting_long_past_any_exchange_timeout_goes_to_reconciliation(executor, counted):
    built, venue = counted
    intent = open_intent(bot_of(executor))
    async with executor.runtime.uow.begin() as conn:
        ((_, received),) = await built.receive_intents(conn, [intent])
        order = decisions.market_order(received.intent, D("0.1"))
        await repo.save(conn, [decisions.submitting(received.intent, reserved(intent), order, utc_now()).intent])
    assert await built.sweep_stale_submissions(600) == []  # just now: maybe in flight, left alone
    async with executor.runtime.uow.begin() as conn:
        await conn.execute(
            sa.update(repo.intents)
            .where(repo.intents.c.intent_id == intent.intent_id)
            .values(updated_at=sa.func.now() - sa.text("interval '11 minutes'"))
        )
    (swept,) = [d for d in await built.sweep_stale_submissions(600) if d.intent.intent_id == intent.intent_id]
    assert swept.pending.cause == "stale_submission" and venue.orders == []
    assert (await intent_row(executor.engine, intent.intent_id)).status == "pending_reconciliation"


async def recorded_without_their_reservation(executor, built, intents) -> dict:
    """The intents recorded and their ReserveBudget lost before reaching Kafka; the lost commands, by intent."""
    async with executor.runtime.uow.begin() as conn:
        made = await built.receive_intents(conn, intents)
        lost = {m.intent_id: m for _, d in made for m in d.messages}
        outbox = executor.runtime.outbox.table
        await conn.execute(outbox.delete().where(outbox.c.message_id.in_([m.message_id for m in lost.values()])))
        return lost


async def waited(executor, intent_ids, ago: timedelta) -> None:
    """The intents recorded (and their reservation asked for) `ago`."""
    async with executor.runtime.uow.begin() as conn:
        await conn.execute(
            sa.update(repo.intents)
            .where(repo.intents.c.intent_id.in_(intent_ids))
            .values(updated_at=sa.func.now() - ago)
        )


def asked(made, intent_ids) -> list:
    return sorted(m.intent_id for d in made for m in d.messages if m.intent_id in intent_ids)


async def test_an_intent_left_without_an_answer_asks_for_its_reservation_again_once_per_interval(executor, counted):
    built, venue = counted
    intents = [open_intent(bot_of(executor)) for _ in range(3)]
    ids = {i.intent_id for i in intents}
    lost = await recorded_without_their_reservation(executor, built, intents)
    assert asked(await built.ask_again_for_reservations(30, 500), ids) == []  # just asked: an answer may be coming
    await waited(executor, ids, timedelta(days=10))  # older than any other test's, so first in line
    first = asked(await built.ask_again_for_reservations(30, 2), ids)
    second = asked(await built.ask_again_for_reservations(30, 2), ids)
    assert first == sorted(ids)[:2] and second == sorted(ids)[2:]  # at most the batch per round, longest waiting first
    assert asked(await built.ask_again_for_reservations(30, 500), ids) == []  # each asked once per interval
    found = await rows(executor.engine, sa.select(repo.intents).where(repo.intents.c.intent_id.in_(ids)))
    assert {r.status for r in found} <= {"preflight_requested", "skipped"}  # skipped: the ledger knows no such bot
    assert all(r.reservation_sent_at is not None and r.updated_at < r.reservation_sent_at for r in found)
    outbox = executor.runtime.outbox.table
    sent = [
        c.ReserveBudget.model_validate_json(bytes(r.payload))
        for r in await rows(
            executor.engine, sa.select(outbox.c.payload).where(outbox.c.topic == "egis.ledger.commands.v1")
        )
    ]
    again = {m.intent_id: m for m in sent if m.intent_id in ids}
    assert sorted(again) == sorted(ids) and len([m for m in sent if m.intent_id in ids]) == 3
    unchanged = {"message_id", "occurred_at"}
    assert all(again[i].model_dump(exclude=unchanged) == lost[i].model_dump(exclude=unchanged) for i in ids)
    assert venue.orders == []


async def test_a_reservation_asked_again_reaches_the_ledger_and_the_order_is_placed_once(
    executor, counted, make_bot, tail
):
    built, _ = counted
    bot = await make_bot("100")
    symbol = unique_symbol()
    await executor.paper.set_mark_price(symbol, D("100"))
    intent = open_intent(bot, symbol)
    await recorded_without_their_reservation(executor, built, [intent])
    await waited(executor, [intent.intent_id], timedelta(minutes=1))
    resent_before = REGISTRY.get_sample_value("egis_executor_reservations_resent_total") or 0
    await ask_again(executor.wiring.executor, 30, 500)
    assert REGISTRY.get_sample_value("egis_executor_reservations_resent_total") >= resent_before + 1
    row = await intent_in(executor.engine, intent.intent_id, "filled")
    (order,) = await paper_orders(executor.engine, bot.exchange_account)
    assert order.client_order_id == row.client_order_id
    await position_in(executor.engine, bot.bot_id, "open")
    await tail.wait_for(of(c.OrderFilled, intent_id=intent.intent_id))
    assert len(await tail.matching(of(c.ReserveBudget, intent_id=intent.intent_id))) == 1
    assert asked(await built.ask_again_for_reservations(0, 500), {intent.intent_id}) == []  # answered: never again
