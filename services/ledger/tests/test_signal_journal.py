"""The ledger's signal journal: SignalJournaled from Kafka into `ledger.signal_journal`, read back through
`GET /v1/signals/{signal_id}` and on the console's bot page. Real Kafka (the ledger's login reads the topic) and
Postgres; the router's side is in tests/e2e/test_signal_journal.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from test_console import log_in

from egis_common.contracts import ExchangeName, SignalAction, SignalJournaled, SignalOutcome
from egis_common.topics import SIGNAL_JOURNAL, encode, key_for
from egis_localinfra.testing import eventually
from ledger import bots
from ledger.journal import signal_journal

pytestmark = pytest.mark.infra


@pytest.fixture
async def producer(infra):
    sender = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all", **infra.kafka_options())
    await sender.start()
    yield sender
    await sender.stop()


async def bot_with_secret(runtime, owner_id: uuid.UUID):
    spec = bots.NewBot(
        name="journal bot",
        signal_key=f"key-{uuid.uuid4().hex}",
        exchange=ExchangeName.PAPER,
        exchange_account=f"acct-{uuid.uuid4().hex[:8]}",
        initial_budget_usd=Decimal("100"),
        default_order_size_usd=Decimal("10"),
    )
    async with runtime.uow.begin() as conn:
        return await bots.create_bot(conn, runtime.outbox, owner_id, spec)


async def rows_of(runtime, bot_id) -> list[sa.Row]:
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(sa.select(signal_journal).where(signal_journal.c.bot_id == bot_id))).all())


async def test_journal_entries_are_kept_once_and_read_by_the_bots_secret_or_owner_and_shown_on_its_page(
    ledger_runtime, producer, api, issue, browser_like
):
    caller = await issue()
    bot, secret = await bot_with_secret(ledger_runtime, uuid.UUID(caller["owner_id"]))
    signal_id = uuid.uuid4()
    skipped = SignalJournaled(
        outcome=SignalOutcome.SKIPPED,
        signal_id=signal_id,
        bot_id=bot.bot_id,
        reason="stale_signal",
        detail="older than 60s",
        action=SignalAction.CLOSE,
        symbol="BTCUSDT",
        received_at=datetime.now(UTC),
    )
    refused = SignalJournaled(
        outcome=SignalOutcome.REJECTED, bot_id=bot.bot_id, reason="unauthorized", received_at=datetime.now(UTC)
    )
    for entry in (skipped, refused, skipped):  # the second skipped is a redelivery: one row
        await producer.send_and_wait(SIGNAL_JOURNAL.name, encode(entry), key=key_for(entry))

    async def both():
        found = await rows_of(ledger_runtime, bot.bot_id)
        return found if len(found) >= 2 else None

    await eventually(both, timeout=30, what="the entries in the journal")
    rows = await rows_of(ledger_runtime, bot.bot_id)
    assert sorted((r.outcome, r.reason) for r in rows) == [("rejected", "unauthorized"), ("skipped", "stale_signal")]

    by_secret = await api.get(f"/v1/signals/{signal_id}", headers={"Authorization": f"Bearer {secret}"})
    assert by_secret.status_code == 200, by_secret.text
    fate = by_secret.json()
    assert (fate["status"], fate["outcome"], fate["reason"], fate["detail"]) == (
        "accepted",
        "skipped",
        "stale_signal",
        "older than 60s",
    )
    assert (
        await api.get(f"/v1/signals/{signal_id}", headers={"Authorization": caller["Authorization"]})
    ).status_code == 200
    stranger = await issue()
    assert (
        await api.get(f"/v1/signals/{signal_id}", headers={"Authorization": stranger["Authorization"]})
    ).status_code == 404
    assert (
        await api.get(f"/v1/signals/{uuid.uuid4()}", headers={"Authorization": f"Bearer {secret}"})
    ).status_code == 404

    client = browser_like()
    await log_in(client, caller)
    page = (await client.get(f"/console/bots/{bot.bot_id}")).text
    section = page[page.index("Recent signals") :]
    assert "skipped" in section and "stale_signal: older than 60s" in section
    assert "rejected" in section and "unauthorized" in section
    assert secret not in page
