"""The reconciler's metrics move with what it does."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY
from reconciler_helpers import admin_command, publish, trade_fact, unique_id

from egis_common import contracts as c
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
