"""reconcile-paper-positions in the reconciler: it reads the paper venue's tables, asks the executor to repair
what no longer follows the fills, and replies with what the executor says it changed (the executor's answers are
sent by the tests here; the round trip with the executor runs in tests/e2e).

Database only: the local Binance server sees no request, and the ledger's positions are left byte for byte.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from paper_helpers import running_paper_venue, trade, unique_account, unique_symbol
from reconciler_helpers import admin_command, ask, publish, reply_parts

from egis_common import contracts as c
from egis_common.admin_client import assembled
from egis_common.contracts import AdminCommandName
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually
from egis_venues.paper import tables as paper_tables
from egis_venues.port import OrderSide
from ledger import bots
from ledger import repository as ledger_repo
from reconciler.adapters import paper_repair, runs

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
            await conn.execute(
                p.insert().values(account=account, symbol=symbol, qty=D(qty), entry_price=D(entry_price))
            )


async def ledger_positions_digest(engine) -> str:
    """Every row of the ledger's positions, as text, hashed: any change to any column shows."""
    query = "SELECT md5(coalesce(string_agg(p::text, '|' ORDER BY position_id), '')) FROM ledger.positions p"
    async with engine.connect() as conn:
        return await conn.scalar(sa.text(query))


async def ledger_open_position(ledger_runtime, messages, account: str, symbol: str) -> uuid.UUID:
    """A bot on the paper account with an open position in the ledger, through the ledger's own topics."""
    spec = bots.NewBot(
        name="paper bot",
        signal_key=f"key-{uuid.uuid4().hex}",
        exchange=c.ExchangeName.PAPER,
        exchange_account=account,
        initial_budget_usd=D(100),
        default_order_size_usd=D(10),
    )
    async with ledger_runtime.uow.begin() as conn:
        bot, _secret = await bots.create_bot(conn, ledger_runtime.outbox, uuid.uuid4(), spec)
    reserve = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=bot.bot_id,
        intent=c.IntentKind.OPEN,
        side=c.Side.LONG,
        symbol=symbol,
        requested_size_usd=D(50),
        exchange_account=account,
    )
    await publish(ledger_runtime, reserve)
    answer = (
        await eventually(
            lambda: messages.matching(lambda m: isinstance(m, c.BudgetReserved) and m.intent_id == reserve.intent_id),
            what="reservation",
        )
    )[0]
    await publish(
        ledger_runtime,
        c.OrderFilled(
            intent_id=answer.intent_id,
            bot_id=bot.bot_id,
            position_id=answer.position_id,
            intent=c.IntentKind.OPEN,
            symbol=symbol,
            side=c.Side.LONG,
            client_order_id=client_order_id(answer.intent_id),
            exchange_order_id="1",
            executed_qty=D("0.01"),
            avg_price=D("3000"),
            fee_usd=D("0.012"),
            filled_at=datetime.now(UTC),
        ),
    )
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
    return lines_of_report(reply.report, accounts)


def lines_of_report(report: dict, accounts: dict[str, str]) -> dict[str, dict]:
    names = {account: name for name, account in accounts.items()}
    return {names[line["account"]]: line for line in report["positions"] if line["account"] in names}


async def _claimed(engine, message_id: uuid.UUID) -> bool:
    query = sa.text(
        "SELECT count(*) FROM reconciler.inbox WHERE consumer = 'reconciler.paper-repairs' AND message_id = :id"
    )
    async with engine.connect() as conn:
        return await conn.scalar(query, {"id": message_id}) == 1


async def test_a_confirmed_run_asks_the_executor_and_replies_with_what_the_executor_changed_once(
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
        "missing": "create",
        "stale": "close",
        "ghost": "close",
        "mismatch": "update",
        "in_sync": "none",
    }
    assert (mine["mismatch"]["found"], mine["mismatch"]["expected"]) == (
        {"qty": "0.015", "entry_price": "3000"},
        {"qty": "0.02", "entry_price": "3050"},
    )
    assert mine["missing"]["evidence"]["trades"] == 1 and mine["ghost"]["evidence"] == {
        "trades": 0,
        "last_trade_id": None,
    }
    assert not any(line["changed"] for line in mine.values()) and dry.report["changed"] == 0
    assert not [
        m
        for m in await messages.matching(
            lambda m: isinstance(m, c.RepairPaperPositions) and m.request_id == dry.request_id
        )
    ]

    confirm = admin_command(RECONCILE, confirm=True)
    await publish(reconciler_runtime, confirm)
    [repair] = await eventually(
        lambda: messages.matching(
            lambda m: isinstance(m, c.RepairPaperPositions) and m.request_id == confirm.request_id
        ),
        what="the repair",
    )
    names = {account: name for name, account in accounts.items()}
    asked = {names[p.account]: (p.qty, p.entry_price) for p in repair.repairs if p.account in names}
    assert asked == {
        "missing": (D("0.01"), D("3000")),
        "stale": (0, 0),
        "ghost": (0, 0),
        "mismatch": (D("0.02"), D("3050")),
    }
    assert await reply_parts(messages, confirm.request_id) is None  # no reply before the executor answers
    assert await paper.position(accounts["mismatch"], symbol) == (D("0.015"), D("3000"))  # the reconciler writes none

    # The executor's answer: three rows written; the fourth's fills moved on meanwhile.
    written = [p for p in repair.repairs if names.get(p.account) in ("missing", "stale", "ghost")]
    moved = c.PaperPositionSkipped(account=accounts["mismatch"], symbol=symbol, reason=c.PaperRepairSkip.FILLS_MOVED)
    answer = c.PaperPositionsRepaired(request_id=confirm.request_id, changed=written, skipped=[moved])
    await publish(reconciler_runtime, answer, answer)
    confirmed = assembled(await eventually(lambda: reply_parts(messages, confirm.request_id), what="the reply"))
    assert (confirmed.status, confirmed.dry_run) == ("ok", False)
    lines = lines_of(confirmed, accounts)
    assert {name for name, line in lines.items() if line["changed"]} == {"missing", "stale", "ghost"}
    assert lines["mismatch"]["skipped"] == "fills_moved" and confirmed.report["changed"] == len(written)

    again = answer.model_copy(update={"message_id": uuid.uuid4()})  # the executor answered twice
    await publish(reconciler_runtime, again)
    await eventually(lambda: _claimed(engine, again.message_id), what="the second answer handled")
    async with engine.connect() as conn:
        run = await runs.stored(conn, confirm.request_id)
    assert (run.status, lines_of_report(run.report, accounts)) == ("ok", lines)  # completed once
    replies = await messages.matching(lambda m: isinstance(m, c.AdminReply) and m.request_id == confirm.request_id)
    # One reply, however many parts a long report takes: each part once.
    assert sorted(r.part for r in replies) == list(range(1, replies[0].parts + 1))
    assert await ledger_positions_digest(engine) == ledger_before  # internal positions: never touched
    assert len(binance_server.requests()) == http_before  # no external call


async def test_a_confirmed_run_with_nothing_to_repair_replies_at_once_without_asking_the_executor(
    reconciler_runtime, messages, paper
):
    """Every row follows its fills (the rows of other tests set as the executor would have written them)."""
    async with reconciler_runtime.engine.connect() as conn:
        lines = await paper_repair.examine(conn)
    for line in lines:
        if line["would_change"]:
            qty = line["expected"]["qty"]
            await set_row(
                reconciler_runtime.engine, line["account"], line["symbol"], qty, line["expected"]["entry_price"]
            )
    confirm = admin_command(RECONCILE, confirm=True)
    reply = await ask(reconciler_runtime, messages, confirm)
    assert (reply.status, reply.report["would_change"], reply.report["changed"]) == ("ok", 0, 0)
    assert not await messages.matching(
        lambda m: isinstance(m, c.RepairPaperPositions) and m.request_id == confirm.request_id
    )


async def test_a_bot_scope_is_refused_with_its_reason_and_changes_nothing(reconciler_runtime, messages):
    reply = await ask(reconciler_runtime, messages, admin_command(RECONCILE, confirm=True, bot_id=uuid.uuid4()))
    assert (reply.status, reply.report["error"]) == ("failed", "bot_scope_not_supported")
