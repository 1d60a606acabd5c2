"""The reconciler's resolutions of pending orders (RecordResolution), recorded by the executor: the first stands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import consumed, intent_in, intent_row, pending_intent, pending_record, publish, rows

from egis_common import contracts as c
from egis_common.topics import EXECUTOR_COMMANDS
from egis_localinfra.testing import eventually
from executor.flow import COMMANDS_GROUP

pytestmark = pytest.mark.infra
D = Decimal
FILLED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def resolution(
    intent, name: str, resolved_by: str = "auto", fill: c.FoundFill | None = None, **evidence
) -> c.RecordResolution:
    return c.RecordResolution(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        resolution=name,
        resolved_by=resolved_by,
        resolved_at=datetime.now(UTC),
        fill=fill,
        evidence=evidence,
    )


def found_filled(intent) -> c.RecordResolution:
    """As the reconciler states a fill it found by client order id."""
    fill = c.FoundFill(
        exchange_order_id="8000000001",
        executed_qty=D("0.1"),
        avg_price=D("100.5"),
        fee_usd=D("0.00402"),
        filled_at=FILLED_AT,
    )
    return resolution(intent, "found_filled", fill=fill, client_order_id=intent.client_order_id)


async def test_a_pending_order_found_filled_fills_its_intent_and_the_first_resolution_stands(executor, producer, infra):
    intent = await pending_intent(executor)
    found = found_filled(intent)
    await publish(producer, found)
    row = await intent_in(executor.engine, intent.intent_id, "filled")
    assert (row.exchange_order_id, row.executed_qty, row.avg_price, row.fee_usd, row.filled_at) == (
        "8000000001",
        D("0.1"),
        D("100.5"),
        D("0.00402"),
        FILLED_AT,
    )
    record = await pending_record(executor.engine, intent.intent_id)
    assert (record.resolution, record.resolved_by, record.resolved_at, record.resolution_evidence) == (
        "found_filled",
        "auto",
        found.resolved_at,
        found.evidence,
    )
    assert record.cause == "timeout"
    later = resolution(intent, "not_found_after_window", "operator:alice")
    await consumed(infra.kafka_bootstrap, COMMANDS_GROUP, await publish(producer, found, later))
    assert await intent_row(executor.engine, intent.intent_id) == row
    assert await pending_record(executor.engine, intent.intent_id) == record


@pytest.mark.parametrize(
    ("name", "evidence"),
    [
        ("rejected_by_exchange", {"exchange_code": "-2019", "exchange_message": "Margin is insufficient."}),
        ("not_found_after_window", {"window_s": "600.0"}),
    ],
)
async def test_a_pending_order_that_never_filled_rejects_its_intent_with_the_resolution_as_its_reason(
    executor, producer, name, evidence
):
    intent = await pending_intent(executor)
    settled = resolution(intent, name, "operator:alice", **evidence)
    await publish(producer, settled)
    row = await intent_in(executor.engine, intent.intent_id, "rejected")
    assert row.exchange_code == name and "operator:alice" in row.detail
    assert ("-2019" in row.detail) is (name == "rejected_by_exchange")
    record = await pending_record(executor.engine, intent.intent_id)
    assert (record.resolution, record.resolved_by, record.resolved_at) == (name, "operator:alice", settled.resolved_at)


async def test_a_resolution_for_an_intent_unknown_here_changes_nothing_and_is_no_error(executor, producer, infra):
    stranger = c.RecordResolution(
        intent_id=uuid.uuid4(),
        bot_id=uuid.uuid4(),
        resolution="found_filled",
        resolved_by="auto",
        resolved_at=datetime.now(UTC),
    )
    intent = await pending_intent(executor)
    await consumed(
        infra.kafka_bootstrap,
        COMMANDS_GROUP,
        await publish(producer, stranger, resolution(intent, "not_found_after_window")),
    )
    assert await intent_row(executor.engine, stranger.intent_id) is None
    assert (await intent_row(executor.engine, intent.intent_id)).status == "rejected"
    failures = sa.text("SELECT * FROM executor.consumer_failures WHERE topic = :topic")
    assert await rows(executor.engine, failures.bindparams(topic=EXECUTOR_COMMANDS.name)) == []


async def test_a_found_fill_that_states_no_fill_is_recorded_and_the_intent_stays_pending_for_a_person(
    executor, producer
):
    intent = await pending_intent(executor)
    await publish(producer, resolution(intent, "found_filled", client_order_id=intent.client_order_id))

    async def recorded():
        return (await pending_record(executor.engine, intent.intent_id)).resolved_at

    await eventually(recorded, what="the resolution recorded")
    assert (await intent_row(executor.engine, intent.intent_id)).status == "pending_reconciliation"
