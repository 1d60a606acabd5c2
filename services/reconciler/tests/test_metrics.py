"""The reconciler's metrics move with what it does: facts, repairs, its handlers' time; its consumer lag and dead
letters are shown from the start."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY
from reconciler_helpers import admin_command, publish, trade_fact, unique_id

from egis_common import contracts as c
from egis_common import topics as t
from egis_localinfra.testing import eventually

pytestmark = pytest.mark.infra


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_facts_ingested_are_counted_as_new_or_replayed(reconciler_runtime):
    new_before = sample("egis_reconciler_facts_ingested_total", table="trade_facts", outcome="new")
    replayed_before = sample("egis_reconciler_facts_ingested_total", table="trade_facts", outcome="replayed")
    fact = trade_fact(f"acct-{unique_id()}", unique_id(), unique_id(), "3000", "0.003")
    await publish(reconciler_runtime, fact)
    await eventually(lambda: _at_least("new", new_before + 1), what="new fact counted")
    await publish(reconciler_runtime, fact.model_copy(update={"message_id": uuid.uuid4()}))
    await eventually(lambda: _at_least("replayed", replayed_before + 1), what="replayed fact counted")


async def _at_least(outcome: str, value: float) -> bool:
    return sample("egis_reconciler_facts_ingested_total", table="trade_facts", outcome=outcome) >= value


async def test_repair_runs_are_counted_by_command_and_outcome(reconciler_runtime):
    labels = {"command": "drift-report", "outcome": "refused"}
    before = sample("egis_reconciler_repair_runs_total", **labels)
    await publish(reconciler_runtime, admin_command(c.AdminCommandName.DRIFT_REPORT, key=None))

    async def counted():
        return sample("egis_reconciler_repair_runs_total", **labels) >= before + 1

    await eventually(counted, what="refused run counted")


async def test_every_handler_records_its_time_after_a_message(reconciler_runtime):
    facts = {"service": "reconciler", "handler": "exchange_facts_batch"}
    commands = {"service": "reconciler", "handler": "admin_command"}
    facts_before, commands_before = (
        sample("egis_handler_seconds_count", **facts),
        sample("egis_handler_seconds_count", **commands),
    )
    await publish(reconciler_runtime, trade_fact(f"acct-{unique_id()}", unique_id(), unique_id(), "3000", "0.003"))
    await publish(reconciler_runtime, admin_command(c.AdminCommandName.DRIFT_REPORT, key=None))

    async def timed():
        return (
            sample("egis_handler_seconds_count", **facts) > facts_before
            and sample("egis_handler_seconds_count", **commands) > commands_before
        )

    await eventually(timed, what="both handlers timed")
    assert sample("egis_handler_seconds_sum", **facts) > 0


# Each subscriber in a consumer group of its own.
SUBSCRIBED = {
    "reconciler.exchange-facts": t.EXCHANGE_FACTS,
    "reconciler.ledger-events": t.LEDGER_EVENTS,
    "reconciler.executions": t.EXECUTIONS,
    "reconciler.admin": t.ADMIN_COMMANDS,
    "reconciler.paper-repairs": t.PAPER_REPAIRS,
}


async def test_lag_is_shown_for_every_partition_it_consumes_and_dead_letters_count_from_0(reconciler_runtime):
    lag = await eventually(reconciler_runtime.show_lag, what="a lag measurement")
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


def test_counters_with_known_labels_start_at_0(reconciler_runtime):
    def made(name: str, **labels) -> bool:
        return REGISTRY.get_sample_value(name, labels) is not None

    assert made("egis_reconciler_facts_ingested_total", table="algo_facts", outcome="replayed")
    assert all(
        made("egis_reconciler_pending_settled_total", resolved_by=by, resolution=resolution)
        for by in ("auto", "operator")
        for resolution in ("found_filled", "rejected_by_exchange", "not_found_after_window")
    )
