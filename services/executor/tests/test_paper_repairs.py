"""RepairPaperPositions: the executor writes the paper venue's positions the reconciler found astray, and only
those whose fills still say what the reconciler saw; it answers with what it wrote, once."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import Tail, publish, unique_symbol

from egis_common import contracts as c
from egis_common.topics import PAPER_REPAIRS
from egis_localinfra.testing import eventually
from egis_venues.paper import tables as paper_tables
from egis_venues.port import MarketOrder, OrderSide
from executor.paper_repairs import repair_paper_positions

pytestmark = pytest.mark.infra
D = Decimal


@pytest.fixture
async def answers(infra, test_database):
    reader = Tail(infra.kafka_bootstrap, PAPER_REPAIRS, login=infra.kafka_options())
    await reader.start()
    yield reader
    await reader.stop()


def account() -> str:
    return f"paper-{uuid.uuid4().hex[:10]}"


async def buy(paper, who: str, symbol: str, qty: str) -> None:
    await paper.place_market_order(
        MarketOrder(who, symbol, OrderSide.BUY, D(qty), f"ego-{uuid.uuid4().hex[:20]}", False)
    )


async def set_row(engine, who: str, symbol: str, qty: str, entry_price: str) -> None:
    """Corrupt the venue's table behind its back."""
    p = paper_tables.positions
    async with engine.begin() as conn:
        await conn.execute(
            p.update().where(p.c.account == who, p.c.symbol == symbol).values(qty=D(qty), entry_price=D(entry_price))
        )


def wanted(who: str, symbol: str, qty: str, entry_price: str) -> c.PaperPosition:
    return c.PaperPosition(account=who, symbol=symbol, qty=D(qty), entry_price=D(entry_price))


async def test_rows_still_astray_are_written_once_and_the_answer_says_what_was_and_was_not(executor, producer, answers):
    paper, symbol = executor.paper, unique_symbol()
    astray, moved, in_sync = account(), account(), account()
    await paper.set_mark_price(symbol, D("100"))
    for who in (astray, moved, in_sync):
        await buy(paper, who, symbol, "1")
    await buy(paper, moved, symbol, "1")  # booked after the reconciler looked: the fills say 2 now
    for who in (astray, moved):
        await set_row(executor.engine, who, symbol, "5", "90")
    command = c.RepairPaperPositions(
        request_id=uuid.uuid4(),
        repairs=[
            wanted(astray, symbol, "1", "100"),
            wanted(moved, symbol, "1", "100"),
            wanted(in_sync, symbol, "1", "100"),
        ],
    )

    await publish(producer, command)
    [answer] = await answers.wait_for(lambda m: m.request_id == command.request_id, what="the executor's answer")
    assert [(p.account, p.qty, p.entry_price) for p in answer.changed] == [(astray, D("1"), D("100"))]
    assert {(s.account, s.reason) for s in answer.skipped} == {
        (moved, c.PaperRepairSkip.FILLS_MOVED),
        (in_sync, c.PaperRepairSkip.ALREADY_MATCHING),
    }
    assert await paper.position(astray, symbol) == (D("1"), D("100"))
    assert await paper.position(moved, symbol) == (D("5"), D("90"))  # left as it was: a new run shows what to do

    await publish(producer, command)  # redelivered: claimed already, nothing done, nothing said
    again = c.RepairPaperPositions(request_id=command.request_id, repairs=command.repairs)  # sent anew
    await publish(producer, again)
    first, second = await answers.wait_for(
        lambda m: m.request_id == command.request_id, count=2, what="the answer to the command sent anew"
    )
    assert first == answer and answers.seen.count(answer) == 1 and second.changed == []
    assert {s.reason for s in second.skipped} == {c.PaperRepairSkip.ALREADY_MATCHING, c.PaperRepairSkip.FILLS_MOVED}


async def _waiting_on_accounts(engine) -> bool:
    query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'executor.paper_accounts'::regclass"
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(query)) > 0


async def test_a_booking_waits_for_a_repair_and_then_trades_on_the_repaired_row(executor):
    paper, engine, symbol, who = executor.paper, executor.engine, unique_symbol(), account()
    await paper.set_mark_price(symbol, D("100"))
    await buy(paper, who, symbol, "1")
    await set_row(engine, who, symbol, "5", "90")
    command = c.RepairPaperPositions(request_id=uuid.uuid4(), repairs=[wanted(who, symbol, "1", "100")])
    async with engine.begin() as conn:
        [answer] = await repair_paper_positions(conn, executor.runtime.outbox, [command])
        booking = asyncio.create_task(buy(paper, who, symbol, "1"))
        await eventually(lambda: _waiting_on_accounts(engine), what="the booking waits for the repair")
    await booking
    assert len(answer.changed) == 1
    assert await paper.position(who, symbol) == (D("2"), D("100"))  # 1 + 1, not the corrupt 5 + 1
