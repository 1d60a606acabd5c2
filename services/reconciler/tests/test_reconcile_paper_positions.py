"""reconcile-paper-positions end to end: the paper venue's positions table follows its own fills.

Database only: the local Binance server sees no request, and the ledger's positions are left byte for byte.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from egis_common import contracts as c
from egis_common.contracts import AdminCommandName
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually
from egis_venues.paper import tables as paper_tables
from egis_venues.port import OrderSide
from ledger import bots
from ledger import repository as ledger_repo
from paper_helpers import running_paper_venue, trade, unique_account, unique_symbol
from reconciler import paper_repair
from reconciler_helpers import admin_command, ask, publish

pytestmark = pytest.mark.infra
D = Decimal
RECONCILE = AdminCommandName.RECONCILE_PAPER_POSITIONS


@pytest.fixture(scope="module")
async def paper(reconciler_runtime):
    async with running_paper_venue() as venue:
        yield venue


async def set_row(engine, account: str, symbol: str, qty: str | None, entry_price: str = "0") -> None:
    """Corrupt the venue's table behind its back: a row deleted (qty None), or set to other numbers."""
    p = paper_tables.positions
    async with engine.begin() as conn:
        await conn.execute(p.delete().where(p.c.account == account, p.c.symbol == symbol))
        if qty is not None:
            await conn.execute(p.insert().values(account=account, symbol=symbol, qty=D(qty), entry_price=D(entry_price)))


async def ledger_positions_digest(engine) -> str:
    """Every row of the ledger's positions, as text, hashed: any change to any column shows."""
    query = "SELECT md5(coalesce(string_agg(p::text, '|' ORDER BY position_id), '')) FROM ledger.positions p"
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(query))


async def ledger_open_position(ledger_runtime, messages, account: str, symbol: str) -> uuid.UUID:
    """A bot on the paper account with an open position in the ledger, through the ledger's own topics."""
    spec = bots.NewBot(name="paper bot", signal_key=f"key-{uuid.uuid4().hex}", exchange=c.ExchangeName.PAPER,
                       exchange_account=account, initial_budget_usd=D(100), default_order_size_usd=D(10))
    async with ledger_runtime.uow.begin() as conn:
        bot, _secret = await bots.create_bot(conn, ledger_runtime.outbox, uuid.uuid4(), spec)
    reserve = c.ReserveBudget(intent_id=uuid.uuid4(), bot_id=bot.bot_id, intent=c.IntentKind.OPEN, side=c.Side.LONG,
                              symbol=symbol, requested_size_usd=D(50), exchange_account=account)
    await publish(ledger_runtime, reserve)
    answer = (await eventually(lambda: messages.matching(
        lambda m: isinstance(m, c.BudgetReserved) and m.intent_id == reserve.intent_id), what="reservation"))[0]
    await publish(ledger_runtime, c.OrderFilled(
        intent_id=answer.intent_id, bot_id=bot.bot_id, position_id=answer.position_id, intent=c.IntentKind.OPEN,
        symbol=symbol, side=c.Side.LONG, client_order_id=client_order_id(answer.intent_id), exchange_order_id="1",
        executed_qty=D("0.01"), avg_price=D("3000"), fee_usd=D("0.012"), filled_at=datetime.now(UTC)))
    await eventually(lambda: _ledger_status(ledger_runtime, answer.position_id, "open"), what="ledger open")
    return answer.position_id


async def _ledger_status(ledger_runtime, position_id, status: str) -> bool:
    async with ledger_runtime.engine.connect() as conn:
        return (await ledger_repo.position(conn, position_id, for_update=False)).status.value == status


async def drifted_venue(paper, engine, symbol: str) -> dict[str, str]:
    """Five accounts on one symbol, four of them with a row that no longer follows the fills."""
    accounts = {name: unique_account() for name in ("missing", "stale", "ghost", "mismatch", "in_sync")}
    await paper.set_mark_price(symbol, D("3000"))
    for name in ("missing", "stale", "mismatch", "in_sync"):
        await trade(paper, accounts[name], symbol, OrderSide.BUY, "0.01")
    await trade(paper, accounts["stale"], symbol, OrderSide.SELL, "0.01", reduce_only=True)
    await paper.set_mark_price(symbol, D("3100"))
    await trade(paper, accounts["mismatch"], symbol, OrderSide.BUY, "0.01")  # 0.02 at 3050 on the venue
    await set_row(engine, accounts["missing"], symbol, None)
    await set_row(engine, accounts["stale"], symbol, "0.01", "3000")
    await set_row(engine, accounts["ghost"], symbol, "-0.5", "100")  # a row with no fill behind it
    await set_row(engine, accounts["mismatch"], symbol, "0.015", "3000")
    return accounts


def lines_of(reply: c.AdminReply, accounts: dict[str, str]) -> dict[str, dict]:
    names = {account: name for name, account in accounts.items()}
    return {names[line["account"]]: line for line in reply.report["positions"] if line["account"] in names}


async def test_paper_rows_are_created_closed_and_updated_to_follow_the_fills_only_when_confirmed_and_once(
    reconciler_runtime, ledger_runtime, messages, paper, binance_server
):
    engine, symbol = reconciler_runtime.engine, unique_symbol()
    accounts = await drifted_venue(paper, engine, symbol)
    await ledger_open_position(ledger_runtime, messages, accounts["missing"], symbol)
    ledger_before, http_before = await ledger_positions_digest(engine), len(binance_server.requests())

    dry = await ask(reconciler_runtime, messages, admin_command(RECONCILE))
    assert (dry.status, dry.dry_run) == ("ok", True)
    mine = lines_of(dry, accounts)
    assert {name: line["action"] for name, line in mine.items()} == {
        "missing": "create", "stale": "close", "ghost": "close", "mismatch": "update", "in_sync": "none"}
    assert (mine["mismatch"]["found"], mine["mismatch"]["expected"]) == (
        {"qty": "0.015", "entry_price": "3000"}, {"qty": "0.02", "entry_price": "3050"})
    assert mine["missing"]["evidence"]["trades"] == 1 and mine["ghost"]["evidence"] == {"trades": 0, "last_trade_id": None}
    assert not any(line["changed"] for line in mine.values()) and dry.report["changed"] == 0
    assert await paper.position(accounts["mismatch"], symbol) == (D("0.015"), D("3000"))  # the dry run changed nothing

    confirmed = await ask(reconciler_runtime, messages, admin_command(RECONCILE, confirm=True))
    assert {name for name, line in lines_of(confirmed, accounts).items() if line["changed"]} == {
        "missing", "stale", "ghost", "mismatch"}
    assert {name: await paper.position(account, symbol) for name, account in accounts.items()} == {
        "missing": (D("0.01"), D("3000")), "stale": (0, 0), "ghost": (0, 0), "mismatch": (D("0.02"), D("3050")),
        "in_sync": (D("0.01"), D("3000"))}

    again = await ask(reconciler_runtime, messages, admin_command(RECONCILE, confirm=True))
    assert again.report["changed"] == 0 and again.report["would_change"] == 0
    assert {line["action"] for line in lines_of(again, accounts).values()} == {"none"}
    assert await ledger_positions_digest(engine) == ledger_before  # internal positions: never touched
    assert len(binance_server.requests()) == http_before  # no external call


async def test_a_repaired_position_trades_on_from_the_repaired_row(reconciler_runtime, messages, paper):
    engine, symbol, account = reconciler_runtime.engine, unique_symbol(), unique_account()
    await paper.set_mark_price(symbol, D("200"))
    await trade(paper, account, symbol, OrderSide.SELL, "0.1")
    await set_row(engine, account, symbol, None)
    await ask(reconciler_runtime, messages, admin_command(RECONCILE, confirm=True))
    closed = await trade(paper, account, symbol, OrderSide.BUY, "0.1", reduce_only=True)  # the venue sees the short
    assert closed.executed_qty == D("0.1") and await paper.position(account, symbol) == (0, 0)


async def test_a_bot_scope_is_refused_with_its_reason_and_changes_nothing(reconciler_runtime, messages):
    reply = await ask(reconciler_runtime, messages, admin_command(RECONCILE, confirm=True, bot_id=uuid.uuid4()))
    assert (reply.status, reply.report["error"]) == ("failed", "bot_scope_not_supported")


async def _waiting_on_accounts(engine) -> bool:
    query = ("SELECT count(*) FROM pg_locks WHERE NOT granted "
             "AND relation = 'executor.paper_accounts'::regclass")
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(query)) > 0


async def test_a_booking_waits_for_a_confirmed_repair_and_then_trades_on_the_repaired_row(reconciler_runtime, paper):
    engine, symbol, account = reconciler_runtime.engine, unique_symbol(), unique_account()
    await paper.set_mark_price(symbol, D("100"))
    await trade(paper, account, symbol, OrderSide.BUY, "1")
    await set_row(engine, account, symbol, "5", "90")
    async with engine.begin() as conn:
        await paper_repair.reconcile(conn, confirm=True)
        booking = asyncio.create_task(trade(paper, account, symbol, OrderSide.BUY, "1"))
        await eventually(lambda: _waiting_on_accounts(engine), what="the booking waits for the repair")
    await booking
    assert await paper.position(account, symbol) == (D("2"), D("100"))  # 1 + 1, not the corrupt 5 + 1
