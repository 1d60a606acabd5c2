"""resolve-pending on the paper venue: the reconciler looks its orders up in the venue's tables, read-only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from paper_helpers import (
    paper_bot,
    paper_orders,
    reserved,
    running_paper_venue,
    settled_in_ledger,
    trade,
    unique_symbol,
    went_pending,
)
from reconciler_helpers import admin_command, ask, publish

from egis_common import contracts as c
from egis_common.contracts import AdminCommandName
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually
from egis_venues.port import OrderSide
from reconciler.adapters import pending

pytestmark = pytest.mark.infra
D = Decimal
RESOLVE = AdminCommandName.RESOLVE_PENDING


@pytest.fixture(scope="module")
async def paper(reconciler_runtime):
    async with running_paper_venue() as venue:
        yield venue


async def unresolved(reconciler_runtime, bot_id) -> list:
    async with reconciler_runtime.engine.connect() as conn:
        return await pending.unresolved(conn, bot_id)


async def test_a_filled_paper_order_opens_exactly_one_position_and_an_absent_one_releases_its_reservation(
    reconciler_runtime, ledger_runtime, messages, paper
):
    bot, placed_symbol, absent_symbol = await paper_bot(ledger_runtime), unique_symbol(), unique_symbol()
    filled, absent = (
        await reserved(ledger_runtime, messages, bot, placed_symbol),
        await reserved(ledger_runtime, messages, bot, absent_symbol),
    )
    await paper.set_mark_price(placed_symbol, D("200"))
    booked = await trade(
        paper,
        bot.exchange_account,
        placed_symbol,
        OrderSide.BUY,
        "0.05",
        client_order_id=client_order_id(filled.intent_id),
    )
    await publish(
        reconciler_runtime, went_pending(bot, filled, placed_symbol), went_pending(bot, absent, absent_symbol)
    )
    await eventually(lambda: _has(unresolved(reconciler_runtime, bot.bot_id), 2), what="pending recorded")

    dry = await ask(reconciler_runtime, messages, admin_command(RESOLVE, bot_id=bot.bot_id))
    by_intent = {line["intent_id"]: line for line in dry.report["pending"]}
    assert by_intent[str(filled.intent_id)]["resolution"] == "found_filled"
    assert by_intent[str(filled.intent_id)]["evidence"]["exchange_order_id"] == booked.exchange_order_id
    assert by_intent[str(absent.intent_id)]["resolution"] == "not_found_after_window"
    assert (dry.report["would_change"], dry.report["changed"]) == (2, 0)

    confirmed = await ask(reconciler_runtime, messages, admin_command(RESOLVE, bot_id=bot.bot_id, confirm=True))
    assert confirmed.report["changed"] == 2
    rows = await eventually(lambda: settled_in_ledger(ledger_runtime, bot.bot_id, filled, absent), what="ledger")
    opened = rows[filled.position_id]
    assert (opened.executed_qty, opened.avg_entry_price, opened.size_usd) == (D("0.05"), D("200"), D("10"))
    assert [p for p in rows.values() if p.status == "open"] == [opened]  # exactly one open position

    again = await ask(reconciler_runtime, messages, admin_command(RESOLVE, bot_id=bot.bot_id, confirm=True))
    assert (again.report["examined"], again.report["changed"]) == (0, 0)
    fills = await messages.matching(lambda m: isinstance(m, c.ApplyFoundFill) and m.bot_id == bot.bot_id)
    assert [(f.intent_id, f.executed_qty, f.exchange_order_id) for f in fills] == [
        (filled.intent_id, D("0.05"), booked.exchange_order_id)
    ]
    releases = await messages.matching(lambda m: isinstance(m, c.ReleaseReservation) and m.bot_id == bot.bot_id)
    assert [(r.intent_id, r.reason) for r in releases] == [(absent.intent_id, "not_found_after_window")]
    records = await eventually(lambda: _two_records(messages, bot.bot_id), what="resolutions recorded")
    assert sorted((r.intent_id, r.resolution, r.resolved_by) for r in records) == sorted(
        [
            (filled.intent_id, "found_filled", "operator:ops-alice"),
            (absent.intent_id, "not_found_after_window", "operator:ops-alice"),
        ]
    )
    assert len(await paper_orders(reconciler_runtime.engine, bot.exchange_account)) == 1  # looked up, never placed


async def _has(found, count: int) -> bool:
    return len(await found) == count


async def _two_records(messages, bot_id) -> list | None:
    found = await messages.matching(lambda m: isinstance(m, c.RecordResolution) and m.bot_id == bot_id)
    return found if len(found) == 2 else None
