"""A batch of executions ends exactly where applying them one at a time ends: rows and events.

Two identical histories run side by side on fresh bots; one gets its
executions one transaction each, the other all in one batch. Ids differ
between the two, so rows and messages are compared with every id replaced by
the order in which the history first used it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from ledger_helpers import fill_for, position_rows, reserve

from egis_common import contracts as c
from egis_common.topics import LEDGER_EVENTS
from ledger import domain
from ledger import repository as repo

pytestmark = pytest.mark.infra
FILLED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Labels:
    """Every id a history uses, named by first use, so two histories compare."""

    def __init__(self) -> None:
        self.names: dict[uuid.UUID, str] = {}

    def add(self, *ids: uuid.UUID) -> None:
        for value in ids:
            self.names.setdefault(value, f"id{len(self.names)}")

    def row(self, values: dict) -> dict:
        return {k: self.names[v] if isinstance(v, uuid.UUID) else v for k, v in values.items()}

    def message(self, message: c.Message) -> dict:
        return self.row(message.model_dump(exclude={"message_id", "occurred_at"}))


class History:
    """Reservations made beforehand, then the executions under test, for two bots."""

    def __init__(self, ledger, runtime, x, y) -> None:
        self.ledger, self.runtime, self.x, self.y = ledger, runtime, x, y
        self.labels = Labels()
        self.labels.add(x.bot_id, y.bot_id)

    async def reserved(self, bot, symbol: str, intent=c.IntentKind.OPEN) -> c.BudgetReserved:
        async with self.runtime.uow.begin() as conn:
            (answer, *_) = (
                await self.ledger.reserve(
                    conn, reserve(bot.bot_id, symbol, intent=intent, account=bot.exchange_account)
                )
            ).messages
        assert isinstance(answer, c.BudgetReserved), answer
        self.labels.add(answer.position_id, answer.intent_id)
        return answer

    async def closing(self, bot, symbol: str) -> c.BudgetReserved:
        """An open position (0.01 at 1000) with a close reserved."""
        opened = await self.reserved(bot, symbol)
        async with self.runtime.uow.begin() as conn:
            await self.ledger.apply_executions(conn, [fill(opened, "1", "0.01", "1000")])
        return await self.reserved(bot, symbol, c.IntentKind.CLOSE)

    async def executions(self) -> list[c.Message]:
        x, y = self.x, self.y
        p1, p2, p4, p3 = (
            await self.reserved(x, "ETHUSDT"),
            await self.reserved(x, "BTCUSDT"),
            await self.reserved(x, "XRPUSDT"),
            await self.closing(x, "SOLUSDT"),
        )
        p5, p6 = await self.reserved(y, "ETHUSDT"), await self.closing(y, "SOLUSDT")
        stray_close = p1.model_copy(update={"intent": c.IntentKind.CLOSE, "intent_id": uuid.uuid4()})
        unknown = p1.model_copy(update={"position_id": uuid.uuid4()})
        unknown_bot = p5.model_copy(update={"bot_id": uuid.uuid4()})
        self.labels.add(stray_close.intent_id, unknown.position_id, unknown_bot.bot_id)
        return [
            fill(p1, "2", "0.003", "3000"),  # opens at 9
            fill(stray_close, "3", "0.003", "3100"),  # a close fill of a position that is not closing: ignored
            fill(p2, "4", "0.0001", "50000"),  # opens at 5; its budget must see the first open at 9
            pending(p2),  # p2 no longer holds its intent: not recorded
            pending(p3),
            fill(p3, "5", "0.004", "1100"),  # partial close: 0.006 stays open, and p3's pending order is settled
            fill(p3, "5", "0.004", "1100"),  # the same fill again: the position is no longer closing
            pending(p4),
            rejected(p4),  # settles p4's pending order
            fill(p4, "6", "0.003", "3000"),  # a fill after the rejection: ignored
            rejected(p1),  # the open intent is settled: ignored
            fill(unknown, "7", "0.003", "3000"),
            fill(p5, "8", "0.002", "3000"),
            fill(p6, "9", "0.01", "900"),  # full close at a loss
            fill(unknown_bot, "10", "0.002", "3000"),
        ]

    async def rows(self) -> list[dict]:
        rows = [*await position_rows(self.runtime, self.x.bot_id), *await position_rows(self.runtime, self.y.bot_id)]
        # Each bot has an account of its own, random; updated_at is the clock.
        return sorted(
            (self.labels.row(r._asdict() | {"updated_at": None, "exchange_account": None}) for r in rows),
            key=lambda r: r["position_id"],
        )

    async def pending_rows(self) -> list[dict]:
        """The orders pending reconciliation of both bots, settled or not, ids named as the history uses them."""
        p = repo.pending_reconciliations
        query = sa.select(p.c.intent_id, p.c.intent, p.c.settled_by, p.c.settled_detail, p.c.settled_at.is_not(None))
        async with self.runtime.engine.connect() as conn:
            rows = (await conn.execute(query.where(p.c.bot_id.in_([self.x.bot_id, self.y.bot_id])))).all()
        return sorted((self.labels.row(r._asdict()) for r in rows), key=lambda r: r["intent_id"])


def fill(answer: c.BudgetReserved, order_id: str, qty: str, price: str) -> c.OrderFilled:
    return fill_for(answer, qty, price).model_copy(update={"exchange_order_id": order_id, "filled_at": FILLED_AT})


def rejected(answer: c.BudgetReserved) -> c.OrderRejected:
    return c.OrderRejected(
        intent_id=answer.intent_id,
        bot_id=answer.bot_id,
        position_id=answer.position_id,
        intent=answer.intent,
        client_order_id="x",
        exchange_code="-2019",
        reason="margin",
    )


def pending(answer: c.BudgetReserved) -> c.OrderPendingReconciliation:
    return c.OrderPendingReconciliation(
        intent_id=answer.intent_id,
        bot_id=answer.bot_id,
        position_id=answer.position_id,
        intent=answer.intent,
        symbol=answer.symbol,
        client_order_id="x",
        exchange=c.ExchangeName.PAPER,
        exchange_account="a",
        cause="timeout",
    )


async def outbox_events(runtime, history: History, after_id: int) -> list[c.Message]:
    table = runtime.outbox.table
    keys = [str(history.x.bot_id).encode(), str(history.y.bot_id).encode()]
    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(table.c.payload).where(table.c.id > after_id, table.c.key.in_(keys)).order_by(table.c.id)
            )
        ).all()
    return [LEDGER_EVENTS.decode(bytes(row.payload)) for row in rows]


async def last_outbox_id(runtime) -> int:
    async with runtime.engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(runtime.outbox.table.c.id), 0)))


async def test_a_batch_of_executions_ends_where_one_at_a_time_ends(ledger_runtime, ledger, make_bot):
    one_by_one = History(ledger, ledger_runtime, await make_bot("100"), await make_bot("100"))
    batched = History(ledger, ledger_runtime, await make_bot("100"), await make_bot("100"))
    sequential_executions, batch_executions = await one_by_one.executions(), await batched.executions()

    sequential_start = await last_outbox_id(ledger_runtime)
    for execution in sequential_executions:
        async with ledger_runtime.uow.begin() as conn:
            await ledger.handle_executions(conn, [execution])
    batch_start = await last_outbox_id(ledger_runtime)
    async with ledger_runtime.uow.begin() as conn:
        outcomes = await ledger.handle_executions(conn, batch_executions)

    notes = [outcome.note for _, outcome in outcomes]
    assert notes[11].startswith("no position") and notes[14].startswith("no position") and len(notes) == 15
    assert await batched.rows() == await one_by_one.rows()
    assert await batched.pending_rows() == await one_by_one.pending_rows()
    sequential_events = domain.latest_budget_per_bot(await outbox_events(ledger_runtime, one_by_one, sequential_start))
    batch_events = await outbox_events(ledger_runtime, batched, batch_start)
    assert [batched.labels.message(m) for m in batch_events] == [
        one_by_one.labels.message(m) for m in sequential_events
    ]


async def test_the_batch_gives_these_rows_and_events(ledger_runtime, ledger, make_bot):
    """The same history, against the figures worked out by hand."""
    history = History(ledger, ledger_runtime, await make_bot("100"), await make_bot("100"))
    executions = await history.executions()
    start = await last_outbox_id(ledger_runtime)
    async with ledger_runtime.uow.begin() as conn:
        await ledger.handle_executions(conn, executions)

    x = {r.symbol: r for r in await position_rows(ledger_runtime, history.x.bot_id)}
    y = {r.symbol: r for r in await position_rows(ledger_runtime, history.y.bot_id)}
    assert (x["ETHUSDT"].status, x["ETHUSDT"].size_usd) == ("open", Decimal("9.000"))
    assert (x["BTCUSDT"].status, x["BTCUSDT"].size_usd) == ("open", Decimal("5.0000"))
    assert (x["SOLUSDT"].status, x["SOLUSDT"].executed_qty, x["SOLUSDT"].realised_pnl_usd) == (
        "open",
        Decimal("0.006"),
        Decimal("0.400"),
    )
    assert x["SOLUSDT"].close_intent_id is None and x["SOLUSDT"].fee_usd == Decimal("0.0070")
    assert (x["XRPUSDT"].status, x["XRPUSDT"].failure_reason) == ("failed", "exchange_rejected:-2019:margin")
    assert (y["ETHUSDT"].status, y["ETHUSDT"].size_usd) == ("open", Decimal("6.000"))
    assert (y["SOLUSDT"].status, y["SOLUSDT"].close_price, y["SOLUSDT"].realised_pnl_usd) == (
        "closed",
        Decimal(900),
        Decimal("-1.00"),
    )

    events = await outbox_events(ledger_runtime, history, start)
    assert [type(m).__name__ for m in events] == [
        "PositionOpened",
        "PositionOpened",
        "PositionReduced",
        "PositionFailed",
        "BudgetChanged",
        "PositionOpened",
        "PositionClosed",
        "BudgetChanged",
    ]
    budgets = {m.bot_id: m.available_usd for m in events if isinstance(m, c.BudgetChanged)}
    assert budgets == {history.x.bot_id: Decimal("80.0000"), history.y.bot_id: Decimal("94.000")}
    settled = {(r["settled_by"], r["settled_detail"]) for r in await history.pending_rows()}
    assert settled == {("OrderFilled", "exchange order 5"), ("OrderRejected", "-2019: margin")}
