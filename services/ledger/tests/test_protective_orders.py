"""ProtectiveOrdersPlaced: the TP/SL client algo ids land on the position once, and nothing else moves."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from ledger_helpers import open_position, position_rows, send

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id
from egis_localinfra.testing import eventually
from ledger import domain
from ledger import repository as repo
from ledger.domain import Position, PositionStatus

pytestmark = pytest.mark.infra
D = Decimal


def placed(answer: c.BudgetReserved, **overrides) -> c.ProtectiveOrdersPlaced:
    fields = dict(
        intent_id=answer.intent_id,
        bot_id=answer.bot_id,
        position_id=answer.position_id,
        tp_order_id=client_order_id(answer.intent_id, OrderPurpose.TAKE_PROFIT),
        sl_order_id=client_order_id(answer.intent_id, OrderPurpose.STOP_LOSS),
    )
    return c.ProtectiveOrdersPlaced(**{**fields, **overrides})


async def the_row(runtime, position_id):
    async with runtime.engine.connect() as conn:
        return (await conn.execute(sa.select(repo.positions).where(repo.positions.c.position_id == position_id))).one()


async def apply(ledger, runtime, *executions):
    async with runtime.uow.begin() as conn:
        return await ledger.apply_executions(conn, list(executions))


async def test_the_ids_land_on_the_position_and_a_repeat_changes_nothing(
    ledger, ledger_runtime, ledger_events, make_bot
):
    bot = await make_bot("100")
    _, answer = await open_position(ledger_runtime, ledger_events, bot)
    first = placed(answer)
    await send(ledger_runtime, first)

    async def recorded():
        return [r for r in await position_rows(ledger_runtime, bot.bot_id) if r.tp_order_id is not None]

    (row,) = await eventually(recorded, what="tp_order_id recorded")
    assert (row.tp_order_id, row.sl_order_id) == (first.tp_order_id, first.sl_order_id)

    other_ids = placed(answer, tp_order_id="egt-other", sl_order_id="egs-other")
    repeat = first.model_copy(update={"message_id": uuid.uuid4()})
    outcomes = await apply(ledger, ledger_runtime, repeat, other_ids, repeat)
    assert [o.positions for o in outcomes] == [(), (), ()] and all(o.messages == () for o in outcomes)
    after = await the_row(ledger_runtime, answer.position_id)
    assert after == row  # every column, updated_at included: nothing was written


async def test_a_stop_loss_alone_fills_only_its_own_column_and_a_later_take_profit_completes_it(
    ledger, ledger_runtime, ledger_events, make_bot
):
    bot = await make_bot("100")
    _, answer = await open_position(ledger_runtime, ledger_events, bot)
    sl_only = placed(answer, tp_order_id=None)
    (outcome,) = await apply(ledger, ledger_runtime, sl_only)
    assert outcome.messages == ()
    row = await the_row(ledger_runtime, answer.position_id)
    assert (row.tp_order_id, row.sl_order_id, row.status) == (None, sl_only.sl_order_id, "open")
    await apply(ledger, ledger_runtime, placed(answer, sl_order_id="egs-other"))
    row = await the_row(ledger_runtime, answer.position_id)
    assert (row.tp_order_id, row.sl_order_id) == (placed(answer).tp_order_id, sl_only.sl_order_id)


async def test_an_unknown_position_or_another_intents_stops_are_a_no_op(
    ledger, ledger_runtime, ledger_events, make_bot
):
    bot = await make_bot("100")
    _, answer = await open_position(ledger_runtime, ledger_events, bot)
    before = await the_row(ledger_runtime, answer.position_id)
    unknown_position = placed(answer, position_id=uuid.uuid4())
    unknown_bot = placed(answer, bot_id=uuid.uuid4())
    other_intent = placed(answer, intent_id=uuid.uuid4())
    outcomes = await apply(ledger, ledger_runtime, unknown_position, unknown_bot, other_intent)
    assert all(o.positions == () and o.messages == () for o in outcomes)
    assert "no position" in outcomes[0].note and "no position" in outcomes[1].note
    assert await the_row(ledger_runtime, answer.position_id) == before


def test_a_closed_position_still_gets_its_ids_and_no_budget_moves():
    """They are facts about orders that existed, whatever happened to the position since (a TP that fired)."""
    closed = Position(
        position_id=uuid.uuid4(),
        bot_id=uuid.uuid4(),
        symbol="ETHUSDT",
        side=c.Side.LONG,
        status=PositionStatus.CLOSED,
        exchange="paper",
        exchange_account="acct",
        requested_size_usd=D("10"),
        open_intent_id=uuid.uuid4(),
        size_usd=D("8.82801"),
        executed_qty=D("0.003"),
    )
    message = c.ProtectiveOrdersPlaced(
        intent_id=closed.open_intent_id,
        bot_id=closed.bot_id,
        position_id=closed.position_id,
        tp_order_id="egt-1",
        sl_order_id="egs-1",
    )
    outcome = domain.decide_execution(message, closed, D("100"), [])
    (recorded,) = outcome.positions
    assert (recorded.status, recorded.tp_order_id, recorded.sl_order_id) == (PositionStatus.CLOSED, "egt-1", "egs-1")
    assert outcome.messages == () and recorded.size_usd == closed.size_usd


async def test_the_database_refuses_to_change_a_recorded_id(ledger, ledger_runtime, ledger_events, make_bot):
    """The invariant's second home: even a write that skips the domain cannot move a recorded id."""
    bot = await make_bot("100")
    _, answer = await open_position(ledger_runtime, ledger_events, bot)
    first = placed(answer)
    await apply(ledger, ledger_runtime, first)
    table = repo.positions
    for change in ({"tp_order_id": "egt-other"}, {"sl_order_id": None}):
        with pytest.raises(sa.exc.IntegrityError, match="never change"):
            async with ledger_runtime.engine.begin() as conn:
                await conn.execute(table.update().where(table.c.position_id == answer.position_id).values(**change))
    row = await the_row(ledger_runtime, answer.position_id)
    assert (row.tp_order_id, row.sl_order_id) == (first.tp_order_id, first.sl_order_id)
    async with ledger_runtime.engine.begin() as conn:  # the same ids written again, as every batch update does
        await conn.execute(
            table.update()
            .where(table.c.position_id == answer.position_id)
            .values(tp_order_id=first.tp_order_id, sl_order_id=first.sl_order_id)
        )
