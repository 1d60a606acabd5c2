"""The ledger's Prometheus metrics show what the ledger holds; its consumer lag and its counters are shown from
the start."""

from __future__ import annotations

import pytest
from ledger_helpers import reserve
from prometheus_client import REGISTRY

from egis_common import topics as t
from egis_localinfra.testing import eventually
from ledger import bots
from ledger.metrics import count_preflight, refresh_bot_gauges, show_budgets

pytestmark = pytest.mark.infra


def sample(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_gauges_show_positions_and_available_budget_per_bot_and_drop_deleted_bots(
    ledger_runtime, ledger, make_bot
):
    bot = await make_bot("75")
    async with ledger_runtime.uow.begin() as conn:
        outcome = await ledger.reserve(conn, reserve(bot.bot_id, "ETHUSDT", "10", account=bot.exchange_account))
    await refresh_bot_gauges(ledger_runtime.engine)
    assert sample("egis_ledger_available_budget_usd", bot_id=str(bot.bot_id)) == 65.0
    assert sample("egis_ledger_open_positions", bot_id=str(bot.bot_id)) == 0.0  # opening is not open yet
    other = await make_bot("5")
    async with ledger_runtime.uow.begin() as conn:
        await bots.delete_bot(conn, ledger_runtime.outbox, other.bot_id)
    await refresh_bot_gauges(ledger_runtime.engine)
    assert sample("egis_ledger_available_budget_usd", bot_id=str(other.bot_id)) is None
    assert outcome.rejection is None


async def test_preflight_decisions_are_counted_by_outcome_and_reason(ledger_runtime, ledger, make_bot):
    bot = await make_bot("5")
    before = sample("egis_ledger_preflight_decisions_total", outcome="rejected", reason="insufficient_budget") or 0
    async with ledger_runtime.uow.begin() as conn:
        outcome = await ledger.reserve(conn, reserve(bot.bot_id, "ETHUSDT", "10", account=bot.exchange_account))
    count_preflight(outcome)
    after = sample("egis_ledger_preflight_decisions_total", outcome="rejected", reason="insufficient_budget")
    assert after == before + 1


async def test_a_budget_change_reaches_the_gauge_without_waiting_for_the_refresh(ledger_runtime, ledger, make_bot):
    bot = await make_bot("100")
    async with ledger_runtime.uow.begin() as conn:
        outcome = await ledger.reserve(conn, reserve(bot.bot_id, "ETHUSDT", "12.5", account=bot.exchange_account))
    show_budgets([outcome])
    assert sample("egis_ledger_available_budget_usd", bot_id=str(bot.bot_id)) == 87.5


async def test_lag_is_shown_for_every_partition_it_consumes_and_counters_start_at_0(ledger_runtime):
    lag = await eventually(ledger_runtime.show_lag, what="a lag measurement")
    subscribed = (t.LEDGER_COMMANDS, t.EXECUTIONS)
    assert set(lag) >= {("ledger", topic.name, p) for topic in subscribed for p in range(topic.partitions)}
    shown = {key: sample("egis_consumer_lag", group=key[0], topic=key[1], partition=str(key[2])) for key in lag}
    assert shown == lag and all(records >= 0 for records in lag.values())
    assert [sample("egis_messages_dead_lettered_total", topic=topic.name) for topic in subscribed] == [0, 0]
    assert sample("egis_ledger_preflight_decisions_total", outcome="reserved", reason="") is not None
