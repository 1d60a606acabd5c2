"""The admin commands as production runs them: the venue's weight budget, long commands, no transaction held.

The service-layer tests here drive `reconciler.admin.Admin` the way `admin.on_admin_command` does (prepare,
then claim and commit in one transaction), with a venue that answers only when the test lets it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from reconciler_helpers import (
    BINANCE_ACCOUNT,
    BINANCE_KEY,
    BINANCE_SECRET,
    OPERATOR_KEY,
    HeldVenue,
    admin_command,
    publish,
)

from egis_common import contracts as c
from egis_common.contracts import AdminCommandName, utc_now
from egis_common.ids import client_order_id
from egis_common.topics import ADMIN_COMMANDS, LEDGER_COMMANDS
from egis_localinfra.testing import eventually
from egis_venues.binance.exchange import BinanceExchange
from egis_venues.port import NotFound
from egis_venues.settings import BinanceCredentials
from reconciler import auth
from reconciler.adapters import runs
from reconciler.adapters.pending import pending_orders
from reconciler.admin import prepare_resolve_pending
from reconciler.domain import NotFoundWindows
from reconciler.flow import build_admin, build_venues
from reconciler.settings import ReconcilerSettings

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("per_minute,reported", [(777, 777), (0, "unlimited")])
async def test_the_configured_binance_look_ups_spend_the_weight_budget_of_the_settings(
    reconciler_runtime, binance_server, per_minute, reported
):
    credentials = BinanceCredentials(api_key=SecretStr(BINANCE_KEY), api_secret=SecretStr(BINANCE_SECRET))
    settings = ReconcilerSettings(
        metrics_port=0,
        binance_accounts={BINANCE_ACCOUNT: credentials},
        binance_base_url=binance_server.base_url,
        binance_weight_budget_per_minute=per_minute,
    )
    binance = build_venues(settings, reconciler_runtime.engine)[c.ExchangeName.BINANCE_USDM.value]
    assert isinstance(binance, BinanceExchange)
    try:
        outcome = await binance.find_order(BINANCE_ACCOUNT, "ETHUSDT", client_order_id(uuid.uuid4()))
        assert isinstance(outcome, NotFound)
        assert binance.weights.report()["weight_budget_per_minute"] == reported
        assert (binance.weights.requests, binance.weights.weight_sent) == (1, 1)  # the look-up was counted
    finally:
        await binance.close()


def test_a_command_stops_asking_the_venue_well_before_its_consumer_would_be_taken_for_dead():
    settings = ReconcilerSettings(metrics_port=0)
    assert settings.admin_max_command_seconds == 900 and settings.admin_max_poll_interval_ms() == 900_000
    # 1,000 positions at the default budget take about 7 minutes of asking: one run does them all.
    assert 7 * 60 < settings.admin_ask_for_s() <= settings.admin_max_command_seconds - 60


async def test_the_admin_consumer_polls_kafka_as_rarely_as_a_command_may_take(reconciler_runtime):
    settings: ReconcilerSettings = reconciler_runtime.settings
    [admin] = [s for s in reconciler_runtime.broker.subscribers if ADMIN_COMMANDS.name in s.topic_names_for_subscribe]
    assert admin.consumer._max_poll_interval_ms == settings.admin_max_poll_interval_ms()
    others = [s for s in reconciler_runtime.broker.subscribers if s is not admin]
    assert others and {s.consumer._max_poll_interval_ms for s in others} == {300_000}  # Kafka's default


async def handle(runtime, admin, command: c.AdminCommand) -> list[c.AdminReply] | None:
    """What `admin.on_admin_command` does with a decoded command."""
    prepared = await admin.prepare(command)
    async with runtime.uow.begin() as conn:
        if not await runtime.inbox("reconciler.admin").claim(conn, command.message_id):
            return None
        return await admin.commit(conn, command, prepared)


def pending_order(bot_id) -> c.OrderPendingReconciliation:
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
        occurred_at=utc_now() - timedelta(minutes=10),
    )


async def resolution_of(runtime, intent_id) -> str | None:
    query = sa.select(pending_orders.c.resolution).where(pending_orders.c.intent_id == intent_id)
    async with runtime.engine.connect() as conn:
        return (await conn.execute(query)).scalar_one_or_none()


async def recorded(runtime, intent_id) -> bool:
    query = sa.select(pending_orders.c.intent_id).where(pending_orders.c.intent_id == intent_id)
    async with runtime.engine.connect() as conn:
        return (await conn.execute(query)).first() is not None


async def test_while_the_venue_is_asked_nothing_is_held_and_an_order_settled_meanwhile_is_not_settled_twice(
    reconciler_runtime,
):
    order = pending_order(uuid.uuid4())
    await publish(reconciler_runtime, order)
    await eventually(lambda: recorded(reconciler_runtime, order.intent_id), what="pending order recorded")
    venue = HeldVenue(NotFound())  # ten minutes on: a release, were nobody else to settle it
    admin = build_admin(reconciler_runtime, venues={c.ExchangeName.BINANCE_USDM.value: venue})
    command = admin_command(AdminCommandName.RESOLVE_PENDING, bot_id=order.bot_id, confirm=True)
    running = asyncio.create_task(handle(reconciler_runtime, admin, command))
    async with asyncio.timeout(15):
        await venue.asked.wait()

    # The executor's own report settles the order meanwhile: no lock of the resolve run stands in its way.
    await publish(
        reconciler_runtime,
        c.OrderRejected(
            intent_id=order.intent_id,
            bot_id=order.bot_id,
            position_id=order.position_id,
            intent=order.intent,
            client_order_id=order.client_order_id,
            exchange_code="-2019",
            reason="margin_insufficient",
        ),
    )
    await eventually(lambda: resolution_of(reconciler_runtime, order.intent_id), what="settled by the executor")
    async with reconciler_runtime.engine.connect() as conn:
        assert await runs.stored(conn, command.request_id) is None  # nothing of the run is written yet
    venue.release.set()
    [reply] = await running

    [line] = reply.report["pending"]
    assert (line["resolution"], line["would_change"], line["changed"]) == ("not_found_after_window", True, False)
    assert await resolution_of(reconciler_runtime, order.intent_id) == "settled_by_executor:OrderRejected"
    assert await _ledger_commands_about(reconciler_runtime, order.intent_id) == []
    async with reconciler_runtime.engine.connect() as conn:
        assert (await runs.stored(conn, command.request_id)).report == reply.report
    assert await handle(reconciler_runtime, admin, command) is None  # redelivered: handled once
    resent = auth.signed(command.model_copy(update={"message_id": uuid.uuid4()}), OPERATOR_KEY)
    again = await handle(reconciler_runtime, admin, resent)
    assert again[0].report == {**reply.report, "repeated_request": True} and venue.calls == 1


async def _ledger_commands_about(runtime, intent_id) -> list:
    outbox = runtime.outbox.table
    query = sa.select(outbox.c.payload).where(outbox.c.topic == LEDGER_COMMANDS.name)
    async with runtime.engine.connect() as conn:
        return [p for p in (await conn.execute(query)).scalars() if str(intent_id).encode() in bytes(p)]


async def test_pending_orders_not_looked_up_in_time_stay_unknown_and_say_why(reconciler_runtime):
    bot_id = uuid.uuid4()
    orders = [pending_order(bot_id) for _ in range(2)]
    await publish(reconciler_runtime, *orders)
    await eventually(lambda: _all_recorded(reconciler_runtime, orders), what="pending orders recorded")
    venue = HeldVenue(NotFound())
    venue.release.set()
    command = admin_command(AdminCommandName.RESOLVE_PENDING, bot_id=bot_id, confirm=True)

    write = await prepare_resolve_pending(
        reconciler_runtime.engine,
        command,
        {c.ExchangeName.BINANCE_USDM.value: venue},
        NotFoundWindows(remote=timedelta(minutes=1), paper=timedelta(minutes=1)),
        ask_for_s=0,
    )
    async with reconciler_runtime.engine.begin() as conn:
        outcome = await write(conn)

    assert venue.calls == 0 and outcome.commands == [] and outcome.report["stopped"] == "run_out_of_time"
    assert [(line["resolution"], line["evidence"]["lookup_cause"]) for line in outcome.report["pending"]] == [
        ("still_unknown", "run_out_of_time")
    ] * 2


async def _all_recorded(runtime, orders) -> bool:
    return all([await recorded(runtime, order.intent_id) for order in orders])
