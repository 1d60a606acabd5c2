"""Pending orders resolved without an operator: the periodic resolver on real Kafka and Postgres.

Each test drives `PendingResolver.run` (what `reconciler.main` runs every few seconds) against the paper venue's
tables or the local Binance server; the session's reconciler and ledger consume what it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from paper_helpers import (
    ledger_positions,
    paper_bot,
    reserved,
    running_paper_venue,
    settled_in_ledger,
    trade,
    unique_symbol,
    went_pending,
)
from prometheus_client import REGISTRY
from reconciler_helpers import BINANCE_ACCOUNT, HeldVenue, admin_command, ask, publish

from egis_common import contracts as c
from egis_common.contracts import AdminCommandName, utc_now
from egis_common.ids import client_order_id
from egis_common.topics import EXECUTOR_COMMANDS, LEDGER_COMMANDS
from egis_localinfra.testing import eventually
from egis_venues.port import NotFound, OrderSide
from reconciler.adapters import pending
from reconciler.adapters.pending import pending_orders
from reconciler.flow import build_resolver

pytestmark = pytest.mark.infra
D = Decimal
BINANCE = c.ExchangeName.BINANCE_USDM.value
LOOKUP_PATH = "/fapi/v1/order"


@pytest.fixture(scope="module")
async def paper(reconciler_runtime):
    async with running_paper_venue() as venue:
        yield venue


def binance_pending(bot_id, minutes_ago: float) -> c.OrderPendingReconciliation:
    intent_id = uuid.uuid4()
    return c.OrderPendingReconciliation(
        intent_id=intent_id,
        bot_id=bot_id,
        position_id=uuid.uuid4(),
        intent=c.IntentKind.OPEN,
        symbol="ETHUSDT",
        client_order_id=client_order_id(intent_id),
        exchange=c.ExchangeName.BINANCE_USDM,
        exchange_account=BINANCE_ACCOUNT,
        cause="timeout",
        occurred_at=utc_now() - timedelta(minutes=minutes_ago),
    )


async def row_of(runtime, intent_id) -> sa.Row | None:
    query = sa.select(pending_orders).where(pending_orders.c.intent_id == intent_id)
    async with runtime.engine.connect() as conn:
        return (await conn.execute(query)).first()


async def recorded(runtime, *orders) -> bool:
    return all([await row_of(runtime, order.intent_id) is not None for order in orders])


async def sent_about(messages, kind, intent_id) -> list:
    return await messages.matching(lambda m: isinstance(m, kind) and m.intent_id == intent_id)


async def sent_once(messages, kind, intent_id) -> list:
    return await messages.wait_for(lambda m: isinstance(m, kind) and m.intent_id == intent_id, what=kind.__name__)


def lookups_of(server, order) -> int:
    return sum(r.params.get("origClientOrderId") == order.client_order_id for r in server.requests("GET", LOOKUP_PATH))


def gauge(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_paper_orders_filled_before_the_executor_lost_track_are_settled_by_the_periodic_job_alone(
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
    await eventually(lambda: recorded(reconciler_runtime, filled, absent), what="pending recorded")

    resolver = build_resolver(reconciler_runtime)  # the configured venues: the paper venue's own tables
    job = asyncio.create_task(reconciler_runtime.every(0.2, resolver.run, "pending-resolver"))  # as main runs it
    try:
        rows = await eventually(lambda: settled_in_ledger(ledger_runtime, bot.bot_id, filled, absent), what="ledger")
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
    opened = rows[filled.position_id]
    assert (opened.executed_qty, opened.avg_entry_price, opened.size_usd) == (D("0.05"), D("200"), D("10"))
    assert [p for p in rows.values() if p.status == "open"] == [opened]

    fills = await sent_once(messages, c.ApplyFoundFill, filled.intent_id)
    assert [(f.executed_qty, f.exchange_order_id) for f in fills] == [(D("0.05"), booked.exchange_order_id)]
    releases = await sent_once(messages, c.ReleaseReservation, absent.intent_id)
    assert [r.reason for r in releases] == ["not_found_after_window"]
    records = await eventually(lambda: _records_of(messages, bot.bot_id, 2), what="resolutions recorded")
    assert sorted((r.intent_id, r.resolution, r.resolved_by) for r in records) == sorted(
        [(filled.intent_id, "found_filled", "auto"), (absent.intent_id, "not_found_after_window", "auto")]
    )
    fill_stated = {r.intent_id: r.fill for r in records}
    assert (fill_stated[filled.intent_id].executed_qty, fill_stated[filled.intent_id].exchange_order_id) == (
        D("0.05"),
        booked.exchange_order_id,
    )
    assert fill_stated[absent.intent_id] is None
    for intent_id in (filled.intent_id, absent.intent_id):
        row = await row_of(reconciler_runtime, intent_id)
        assert (row.resolved_by, row.attempts) == ("auto", 1)
        assert [r.resolved_at for r in records if r.intent_id == intent_id] == [row.resolved_at]

    # The operator's command finds nothing left, and says what the automatic path did.
    report = (
        await ask(
            reconciler_runtime,
            messages,
            admin_command(AdminCommandName.RESOLVE_PENDING, bot_id=bot.bot_id, confirm=True),
        )
    ).report
    assert (report["examined"], report["changed"]) == (0, 0)
    automatic = {line["intent_id"]: line for line in report["resolved_automatically"]}
    assert {k: automatic[str(filled.intent_id)][k] for k in ("resolution", "attempts")} == {
        "resolution": "found_filled",
        "attempts": 1,
    }
    assert automatic[str(filled.intent_id)]["evidence"]["exchange_order_id"] == booked.exchange_order_id
    assert automatic[str(absent.intent_id)]["resolution"] == "not_found_after_window"
    assert (
        automatic[str(absent.intent_id)]["resolved_at"]
        == (await row_of(reconciler_runtime, absent.intent_id)).resolved_at.isoformat()
    )
    assert len(await ledger_positions(ledger_runtime, bot.bot_id)) == 2


async def test_an_order_not_found_yet_is_asked_again_only_after_its_backoff_and_released_once_the_window_passed(
    reconciler_runtime, binance_server, binance_lookup, messages
):
    order = binance_pending(uuid.uuid4(), minutes_ago=0)
    await publish(reconciler_runtime, order)
    await eventually(lambda: recorded(reconciler_runtime, order), what="pending recorded")
    resolver = build_resolver(reconciler_runtime, venues={BINANCE: binance_lookup})
    settings = reconciler_runtime.settings

    before = utc_now()
    await resolver.run()
    row = await row_of(reconciler_runtime, order.intent_id)
    assert (row.resolved_at, row.attempts, row.last_lookup["resolution"]) == (None, 1, "not_found_within_window")
    first_wait = timedelta(seconds=settings.pending_retry_initial_seconds)  # the first window is exactly that
    assert before + first_wait <= row.next_attempt_at <= utc_now() + first_wait
    await resolver.run()  # not due yet: not asked again
    assert (await row_of(reconciler_runtime, order.intent_id)).attempts == 1 and lookups_of(binance_server, order) == 1

    # Its backoff and the not-found window have passed.
    async with reconciler_runtime.engine.begin() as conn:
        await conn.execute(
            pending_orders.update()
            .where(pending_orders.c.intent_id == order.intent_id)
            .values(pending_since=utc_now() - timedelta(minutes=10), next_attempt_at=utc_now())
        )
    run = await resolver.run()
    assert order.intent_id in {o.intent_id for o, _decision in run.settled}
    row = await row_of(reconciler_runtime, order.intent_id)
    assert (row.resolution, row.resolved_by, row.attempts) == ("not_found_after_window", "auto", 2)
    assert lookups_of(binance_server, order) == 2
    releases = await eventually(lambda: sent_about(messages, c.ReleaseReservation, order.intent_id), what="release")
    [record] = await eventually(lambda: sent_about(messages, c.RecordResolution, order.intent_id), what="record")
    assert [r.reason for r in releases] == ["not_found_after_window"]
    assert (record.resolved_by, record.resolution, record.evidence["client_order_id"]) == (
        "auto",
        "not_found_after_window",
        order.client_order_id,
    )
    await resolver.run()  # settled: never asked again
    assert lookups_of(binance_server, order) == 2


async def test_an_order_the_venue_cannot_answer_for_is_escalated_once_and_shown_in_gauges_and_drift_report(
    reconciler_runtime, binance_server, binance_lookup, messages
):
    order = binance_pending(uuid.uuid4(), minutes_ago=121)
    await publish(reconciler_runtime, order)
    await eventually(lambda: recorded(reconciler_runtime, order), what="pending recorded")
    resolver = build_resolver(reconciler_runtime, venues={BINANCE: binance_lookup})
    binance_server.inject_fault("http_503", count=10_000, method="GET", path=LOOKUP_PATH)
    try:
        run = await resolver.run()
    finally:
        binance_server.clear_faults()

    assert order.intent_id not in {o.intent_id for o, _d in run.settled}
    [escalated] = [o for o in run.escalated if o.intent_id == order.intent_id]
    assert (escalated.client_order_id, escalated.attempts) == (order.client_order_id, 1)
    assert escalated.last_lookup["resolution"] == "still_unknown"
    row = await row_of(reconciler_runtime, order.intent_id)
    assert row.resolved_at is None and row.escalated_at is not None
    async with reconciler_runtime.engine.connect() as conn:
        waiting = await pending.unresolved(conn)
    limit = timedelta(seconds=reconciler_runtime.settings.pending_escalate_after_seconds)
    assert gauge("egis_reconciler_pending_unresolved") == len(waiting) == run.backlog.count
    assert gauge("egis_reconciler_pending_escalated") == sum(utc_now() - o.pending_since >= limit for o in waiting) >= 1
    assert gauge("egis_reconciler_pending_oldest_age_seconds") >= 121 * 60
    assert gauge("egis_reconciler_pending_orders", age="over_1h") == run.backlog.by_age["over_1h"] >= 1

    again = await resolver.run()  # escalated once; asked again only after its backoff
    assert order.intent_id not in {o.intent_id for o in again.escalated}
    drift = await ask(reconciler_runtime, messages, admin_command(AdminCommandName.DRIFT_REPORT, bot_id=order.bot_id))
    assert drift.report["by_kind"] == {"pending_unresolved": 1}
    [line] = drift.report["drift"]
    assert (line["kind"], line["intent_id"], line["position_id"], line["client_order_id"], line["attempts"]) == (
        "pending_unresolved",
        str(order.intent_id),
        str(order.position_id),
        order.client_order_id,
        1,
    )
    assert line["last_lookup"]["resolution"] == "still_unknown" and float(line["pending_for_s"]) >= 121 * 60
    assert await sent_about(messages, c.ReleaseReservation, order.intent_id) == []


async def test_an_order_an_operator_settles_while_the_job_asks_the_venue_is_settled_once(reconciler_runtime, messages):
    order = binance_pending(uuid.uuid4(), minutes_ago=10)
    await publish(reconciler_runtime, order)
    await eventually(lambda: recorded(reconciler_runtime, order), what="pending recorded")
    venue = HeldVenue(NotFound())
    resolver = build_resolver(reconciler_runtime, venues={BINANCE: venue})
    running = asyncio.create_task(resolver.run())
    async with asyncio.timeout(15):
        await venue.asked.wait()

    # Meanwhile the operator's confirmed resolve-pending asks the local Binance server and settles the order.
    confirmed = await ask(
        reconciler_runtime, messages, admin_command(AdminCommandName.RESOLVE_PENDING, bot_id=order.bot_id, confirm=True)
    )
    assert [(line["resolution"], line["changed"]) for line in confirmed.report["pending"]] == [
        ("not_found_after_window", True)
    ]
    venue.release.set()
    run = await running

    assert order.intent_id not in {o.intent_id for o, _d in run.settled}
    row = await row_of(reconciler_runtime, order.intent_id)
    assert (row.resolution, row.resolved_by) == ("not_found_after_window", "operator:ops-alice")
    releases = await eventually(lambda: sent_about(messages, c.ReleaseReservation, order.intent_id), what="release")
    records = await eventually(lambda: sent_about(messages, c.RecordResolution, order.intent_id), what="record")
    assert [r.resolved_by for r in records] == ["operator:ops-alice"] and len(releases) == 1
    assert await _outbox_rows_about(reconciler_runtime, order.intent_id) == 2  # the release and the record, once


async def _outbox_rows_about(runtime, intent_id) -> int:
    """The reconciler's commands to the ledger and the executor that name this intent."""
    outbox = runtime.outbox.table
    query = sa.select(outbox.c.payload).where(outbox.c.topic.in_([LEDGER_COMMANDS.name, EXECUTOR_COMMANDS.name]))
    async with runtime.engine.connect() as conn:
        return sum(str(intent_id).encode() in bytes(p) for p in (await conn.execute(query)).scalars())


async def _records_of(messages, bot_id, count: int) -> list | None:
    found = await messages.matching(lambda m: isinstance(m, c.RecordResolution) and m.bot_id == bot_id)
    return found if len(found) == count else None


@pytest.mark.parametrize(("kind", "again"), [(c.IntentKind.CLOSE, True), (c.IntentKind.OPEN, False)])
async def test_a_close_sent_again_after_it_was_not_found_is_pending_afresh_and_an_open_never_is(
    reconciler_runtime, kind, again
):
    first = binance_pending(uuid.uuid4(), minutes_ago=5).model_copy(update={"intent": kind})
    async with reconciler_runtime.uow.begin() as conn:
        await pending.record_executions(conn, [first])
        await pending.settle(conn, first.intent_id, "not_found_after_window", {"window_s": "60.0"}, utc_now(), "auto")
    resent = first.model_copy(update={"message_id": uuid.uuid4(), "cause": "http_500", "occurred_at": utc_now()})
    async with reconciler_runtime.uow.begin() as conn:
        changed = await pending.record_executions(conn, [resent])
    row = await row_of(reconciler_runtime, first.intent_id)
    assert changed == int(again)
    if again:  # looked up afresh: its own window, from the attempt sent again
        assert (row.resolved_at, row.resolution, row.attempts, row.cause) == (None, None, 0, "http_500")
        assert row.pending_since == resent.occurred_at
    else:
        assert (row.resolution, row.cause) == ("not_found_after_window", "timeout")
