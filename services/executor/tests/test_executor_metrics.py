"""The executor's metrics count orders by outcome, skips by reason, exchange latency, pending orders, the
intents in each intermediate state and the time of every handler; its consumer lag and dead letters are shown
from the start."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import intent_in, open_intent, pending_intent, publish, rows
from prometheus_client import REGISTRY

from egis_common import topics as t
from egis_common.contracts import ExchangeName, MarkPrice
from egis_localinfra.testing import eventually
from executor.adapters import repository as repo
from executor.flow import ANSWERS_GROUP, COMMANDS_GROUP, INTENTS_GROUP, MARKS_GROUP
from executor.metrics import refresh_gauges

pytestmark = pytest.mark.infra


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_orders_skips_latency_and_pending_are_measured(executor, producer, make_bot):
    filled_before = sample("egis_executor_orders_total", exchange="paper", outcome="filled", code="")
    skipped_before = sample("egis_executor_intents_skipped_total", reason="insufficient_budget")
    calls_before = sample("egis_executor_exchange_seconds_count", exchange="paper", operation="place_market_order")
    await executor.paper.set_mark_price("ETHUSDT", Decimal("2942.67"))
    rich, poor = await make_bot("100"), await make_bot("5")
    filled, skipped = open_intent(rich), open_intent(poor)
    await publish(producer, filled, skipped)
    await intent_in(executor.engine, filled.intent_id, "filled")
    await intent_in(executor.engine, skipped.intent_id, "skipped")
    assert sample("egis_executor_orders_total", exchange="paper", outcome="filled", code="") == filled_before + 1
    assert sample("egis_executor_intents_skipped_total", reason="insufficient_budget") == skipped_before + 1
    assert (
        sample("egis_executor_exchange_seconds_count", exchange="paper", operation="place_market_order")
        == calls_before + 1
    )
    await refresh_gauges(executor.engine)
    async with executor.engine.connect() as conn:
        assert sample("egis_executor_pending_reconciliation") == await repo.unresolved_pending(conn)
    assert ExchangeName.PAPER in executor.wiring.exchanges


IN_FLIGHT = ("preflight_requested", "reserved", "submitting", "pending_reconciliation")


async def test_every_intermediate_state_has_a_count_and_the_age_of_its_oldest_intent(executor):
    assert all(
        REGISTRY.get_sample_value("egis_executor_intents_in_flight", {"state": s}) is not None for s in IN_FLIGHT
    )  # from the start, before any refresh
    stuck = await pending_intent(executor)
    async with executor.runtime.uow.begin() as conn:
        await conn.execute(
            sa.update(repo.intents)
            .where(repo.intents.c.intent_id == stuck.intent_id)
            .values(updated_at=sa.func.now() - timedelta(days=30))
        )
    await refresh_gauges(executor.engine)
    counted = dict(
        await rows(
            executor.engine,
            sa.select(repo.intents.c.status, sa.func.count())
            .where(repo.intents.c.status.in_(IN_FLIGHT))
            .group_by(repo.intents.c.status),
        )
    )
    assert {s: sample("egis_executor_intents_in_flight", state=s) for s in IN_FLIGHT} == {
        s: counted.get(s, 0) for s in IN_FLIGHT
    }
    oldest = sample("egis_executor_intents_in_flight_oldest_age_seconds", state="pending_reconciliation")
    assert 30 * 86400 <= oldest < 30 * 86400 + 60
    empty = [s for s in IN_FLIGHT if not counted.get(s)]  # `reserved` at least: never a resting state
    assert "reserved" in empty
    assert [sample("egis_executor_intents_in_flight_oldest_age_seconds", state=s) for s in empty] == [0] * len(empty)


async def test_the_mark_price_handler_records_its_time(executor, producer):
    labels = {"service": "executor", "handler": "mark_prices_batch"}
    before = sample("egis_handler_seconds_count", **labels)
    await publish(producer, MarkPrice(symbol="ETHUSDT", price=Decimal("2942.67")))

    async def timed():
        return sample("egis_handler_seconds_count", **labels) > before

    await eventually(timed, what="the mark prices' handler timed")


SUBSCRIBED = {
    INTENTS_GROUP: t.INTENTS,
    ANSWERS_GROUP: t.LEDGER_EVENTS,
    COMMANDS_GROUP: t.EXECUTOR_COMMANDS,
    MARKS_GROUP: t.MARK_PRICES,
}


async def test_lag_is_shown_for_every_group_and_partition_and_dead_letters_count_from_0(executor):
    lag = await eventually(executor.runtime.show_lag, what="a lag measurement")
    every = {(group, topic.name, p) for group, topic in SUBSCRIBED.items() for p in range(topic.partitions)}
    assert set(lag) == every
    shown = {
        key: REGISTRY.get_sample_value(
            "egis_consumer_lag", {"group": key[0], "topic": key[1], "partition": str(key[2])}
        )
        for key in every
    }
    assert shown == lag and all(records >= 0 for records in lag.values())
    dead = {
        topic.name: REGISTRY.get_sample_value("egis_messages_dead_lettered_total", {"topic": topic.name})
        for topic in SUBSCRIBED.values()
    }
    assert None not in dead.values(), dead


def test_counters_with_known_labels_start_at_0(executor):
    def made(name: str, **labels) -> bool:
        return REGISTRY.get_sample_value(name, labels) is not None

    assert made("egis_executor_orders_total", exchange="binance_usdm", outcome="unknown", code="")
    assert made("egis_executor_close_resends_total", exchange="binance_usdm", outcome="rejected")
    assert made("egis_executor_resolutions_recorded_total", resolution="not_found_after_window")
