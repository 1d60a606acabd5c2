"""A reservation behind its bot's order in flight on the symbol waits, and is decided when that order settles."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from ledger_helpers import fill_for, position_rows, reserve

from egis_common import contracts as c
from ledger import repository as repo

pytestmark = pytest.mark.infra
CLOSE = c.IntentKind.CLOSE
REASON = c.PreflightRejectReason


class Bot:
    """One bot's commands and executions, each in its own transaction, as the flow runs them."""

    def __init__(self, ledger, runtime, row) -> None:
        self.ledger, self.runtime, self.row = ledger, runtime, row

    def command(self, intent=c.IntentKind.OPEN, symbol="ETHUSDT") -> c.ReserveBudget:
        return reserve(self.row.bot_id, symbol, intent=intent, account=self.row.exchange_account)

    async def ask(self, *commands: c.ReserveBudget) -> list:
        async with self.runtime.uow.begin() as conn:
            return [
                (cmd, o) for cmd, o in zip(commands, await self.ledger.reserve_batch(conn, list(commands)), strict=True)
            ]

    async def execute(self, *executions: c.Message) -> list:
        async with self.runtime.uow.begin() as conn:
            return await self.ledger.handle_executions(conn, list(executions))

    async def waiting(self) -> list:
        async with self.runtime.engine.connect() as conn:
            w = repo.waiting_reservations
            return list(
                (
                    await conn.execute(sa.select(w.c.intent_id).where(w.c.bot_id == self.row.bot_id).order_by(w.c.seq))
                ).scalars()
            )


def answer(outcome) -> c.Message:
    (first, *_) = outcome.messages
    return first


@pytest.fixture
async def bot(ledger, ledger_runtime, make_bot):
    return Bot(ledger, ledger_runtime, await make_bot("100"))


async def test_a_close_behind_its_open_closes_it_and_a_buy_behind_the_close_then_opens(bot):
    buy, close, buy_again = bot.command(), bot.command(CLOSE), bot.command()
    [(_, opened)] = await bot.ask(buy)
    reserved = answer(opened)
    assert isinstance(reserved, c.BudgetReserved)

    [(_, first_wait), (_, second_wait)] = await bot.ask(close, buy_again)
    assert first_wait.waiting and second_wait.waiting and not first_wait.messages and not second_wait.messages
    assert await bot.waiting() == [close.intent_id, buy_again.intent_id]

    # The open fills: the close that waited is decided now, and closes what the open made; the buy waits on.
    handled = await bot.execute(fill_for(reserved, "0.003", "2942.67"))
    resumed = {cmd.intent_id: o for cmd, o in handled if isinstance(cmd, c.ReserveBudget)}
    close_answer = answer(resumed[close.intent_id])
    assert isinstance(close_answer, c.BudgetReserved) and close_answer.position_id == reserved.position_id
    assert close_answer.close_qty == Decimal("0.003") and resumed[buy_again.intent_id].waiting
    assert await bot.waiting() == [buy_again.intent_id]

    # The close fills: the buy opens a new position.
    handled = await bot.execute(fill_for(close_answer, "0.003", "3000"))
    [(cmd, outcome)] = [(cmd, o) for cmd, o in handled if isinstance(cmd, c.ReserveBudget)]
    assert cmd.intent_id == buy_again.intent_id
    new = answer(outcome)
    assert isinstance(new, c.BudgetReserved) and new.position_id != reserved.position_id
    assert await bot.waiting() == []
    statuses = {r.position_id: r.status for r in await position_rows(bot.runtime, bot.row.bot_id)}
    assert statuses == {reserved.position_id: "closed", new.position_id: "opening"}


async def test_a_close_behind_an_open_that_fails_is_refused_with_open_failed(bot):
    buy, close = bot.command(), bot.command(CLOSE)
    [(_, opened)] = await bot.ask(buy)
    reserved = answer(opened)
    [(_, waited)] = await bot.ask(close)
    assert waited.waiting

    rejection = c.OrderRejected(
        intent_id=reserved.intent_id,
        bot_id=reserved.bot_id,
        position_id=reserved.position_id,
        intent=reserved.intent,
        client_order_id="x",
        exchange_code="-2019",
        reason="margin is insufficient",
    )
    handled = await bot.execute(rejection)
    [(cmd, outcome)] = [(cmd, o) for cmd, o in handled if isinstance(cmd, c.ReserveBudget)]
    assert cmd.intent_id == close.intent_id
    assert outcome.rejection is REASON.OPEN_FAILED and answer(outcome).reason is REASON.OPEN_FAILED
    assert await bot.waiting() == []


async def test_a_reservation_asked_again_while_it_waits_still_waits_once_and_is_answered_once(bot):
    buy, close = bot.command(), bot.command(CLOSE)
    [(_, opened)] = await bot.ask(buy)
    await bot.ask(close)
    [(_, again)] = await bot.ask(close.model_copy(update={"message_id": buy.message_id}))  # the executor re-sent it
    assert again.waiting and not again.messages
    assert await bot.waiting() == [close.intent_id]

    handled = await bot.execute(fill_for(answer(opened), "0.003", "2942.67"))
    assert [cmd.intent_id for cmd, _ in handled if isinstance(cmd, c.ReserveBudget)] == [close.intent_id]
    [(_, repeated)] = await bot.ask(close)  # asked again after it was decided: the stored answer
    assert isinstance(answer(repeated), c.BudgetReserved) and answer(repeated).intent_id == close.intent_id


async def test_other_symbols_and_other_bots_do_not_wait(bot, ledger, ledger_runtime, make_bot):
    other = Bot(ledger, ledger_runtime, await make_bot("100"))
    await bot.ask(bot.command())
    [(_, btc)] = await bot.ask(bot.command(symbol="BTCUSDT"))
    [(_, eth_elsewhere)] = await other.ask(other.command())
    assert isinstance(answer(btc), c.BudgetReserved) and isinstance(answer(eth_elsewhere), c.BudgetReserved)


async def test_a_reservation_that_waits_too_long_is_refused_with_wait_expired(bot):
    buy, close = bot.command(), bot.command(CLOSE)
    await bot.ask(buy)
    await bot.ask(close)
    async with bot.runtime.uow.begin() as conn:
        assert await bot.ledger.expire_waiting(conn, older_than_seconds=3600) == []
    async with bot.runtime.uow.begin() as conn:
        await conn.execute(
            repo.waiting_reservations.update()
            .where(
                repo.waiting_reservations.c.intent_id == close.intent_id,
            )
            .values(waiting_since=sa.func.now() - sa.text("interval '2 hours'"))
        )
        expired = await bot.ledger.expire_waiting(conn, older_than_seconds=3600)
    [(cmd, outcome)] = expired
    assert cmd.intent_id == close.intent_id and outcome.rejection is REASON.WAIT_EXPIRED
    assert await bot.waiting() == []
    [(_, repeated)] = await bot.ask(close)
    assert answer(repeated).reason is REASON.WAIT_EXPIRED, "asked again: the same answer"
