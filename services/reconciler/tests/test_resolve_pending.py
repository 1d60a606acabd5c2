"""resolve-pending: every pending order is looked up on the exchange by its client order id."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from reconciler_helpers import (
    BINANCE_ACCOUNT,
    BINANCE_KEY,
    BINANCE_SECRET,
    admin_command,
    ask,
    publish,
)

from egis_binance_local import local_async_client
from egis_common import contracts as c
from egis_common.contracts import AdminCommandName, utc_now
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually
from reconciler.adapters import pending

pytestmark = pytest.mark.infra


def pending_order(bot_id, minutes_ago: int) -> c.OrderPendingReconciliation:
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


async def place_on_exchange(server, order: c.OrderPendingReconciliation) -> None:
    """The order did reach the exchange before the executor lost track of it."""
    client = local_async_client(server.base_url, BINANCE_KEY, BINANCE_SECRET)
    try:
        await client.futures_create_order(
            symbol="ETHUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.01",
            newClientOrderId=order.client_order_id,
            newOrderRespType="RESULT",
        )
    finally:
        await client.close_connection()


async def unresolved_of(runtime, bot_id) -> list:
    async with runtime.engine.connect() as conn:
        return await pending.unresolved(conn, bot_id)


async def test_pending_orders_are_resolved_by_exchange_evidence_and_released_once(
    reconciler_runtime, binance_server, messages
):
    bot_id = uuid.uuid4()
    placed, absent, recent = pending_order(bot_id, 10), pending_order(bot_id, 10), pending_order(bot_id, 0)
    await place_on_exchange(binance_server, placed)
    await publish(reconciler_runtime, placed, absent, recent)
    await eventually(lambda: _count(reconciler_runtime, bot_id, 3), what="pending orders recorded")

    dry = await ask(reconciler_runtime, messages, admin_command(AdminCommandName.RESOLVE_PENDING, bot_id=bot_id))
    by_intent = {line["intent_id"]: line for line in dry.report["pending"]}
    assert by_intent[str(placed.intent_id)]["resolution"] == "found_filled"
    assert Decimal(by_intent[str(placed.intent_id)]["evidence"]["executed_qty"]) == Decimal("0.01")
    assert by_intent[str(absent.intent_id)]["resolution"] == "not_found_after_window"
    assert by_intent[str(recent.intent_id)]["resolution"] == "not_found_within_window"
    assert (dry.report["would_change"], dry.report["changed"]) == (2, 0)
    assert len(await unresolved_of(reconciler_runtime, bot_id)) == 3

    confirmed = await ask(
        reconciler_runtime, messages, admin_command(AdminCommandName.RESOLVE_PENDING, bot_id=bot_id, confirm=True)
    )
    assert confirmed.report["changed"] == 2
    assert {p.intent_id for p in await unresolved_of(reconciler_runtime, bot_id)} == {recent.intent_id}
    again = await ask(
        reconciler_runtime, messages, admin_command(AdminCommandName.RESOLVE_PENDING, bot_id=bot_id, confirm=True)
    )
    assert (again.report["examined"], again.report["changed"]) == (1, 0)
    fills = await eventually(
        lambda: messages.matching(lambda m: isinstance(m, c.ApplyFoundFill) and m.bot_id == bot_id),
        what="found fill sent",
    )
    assert [(f.intent_id, f.executed_qty) for f in fills] == [(placed.intent_id, Decimal("0.01"))]  # exactly once
    releases = await eventually(
        lambda: messages.matching(lambda m: isinstance(m, c.ReleaseReservation) and m.bot_id == bot_id),
        what="release sent",
    )
    assert [(r.intent_id, r.reason) for r in releases] == [(absent.intent_id, "not_found_after_window")]
    assert releases[0].evidence["client_order_id"] == absent.client_order_id
    drift = await ask(reconciler_runtime, messages, admin_command(AdminCommandName.DRIFT_REPORT, bot_id=bot_id))
    assert drift.report["pending_by_age"] == {"under_1m": 1, "1m_to_10m": 0, "10m_to_1h": 0, "over_1h": 0}


async def test_a_pending_order_the_executor_settles_itself_is_not_looked_up(reconciler_runtime):
    bot_id = uuid.uuid4()
    order = pending_order(bot_id, 10)
    await publish(reconciler_runtime, order)
    await eventually(lambda: _count(reconciler_runtime, bot_id, 1), what="pending recorded")
    await publish(
        reconciler_runtime,
        c.OrderRejected(
            intent_id=order.intent_id,
            bot_id=bot_id,
            position_id=order.position_id,
            intent=c.IntentKind.OPEN,
            client_order_id=order.client_order_id,
            exchange_code="-2019",
            reason="margin is insufficient",
        ),
    )
    await eventually(lambda: _count(reconciler_runtime, bot_id, 0, settled=True), what="settled by the executor")


async def _count(runtime, bot_id, expected: int, settled: bool = False) -> bool:
    found = await unresolved_of(runtime, bot_id)
    return len(found) == expected and (not settled or not found)
