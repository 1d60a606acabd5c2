"""No identity from a message: the executor takes a bot's exchange and account from the bots topic, and refuses
an intent its bot does not back before any reservation. On real Kafka with ACLs on: the forged intents are
written with the signal router's own login, the one principal allowed to write intents."""

from __future__ import annotations

import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from executor_helpers import (
    intent_in,
    of,
    on_the_bots_topic,
    open_intent,
    paper_orders,
    positions,
    publish,
    rows,
    snapshot_of,
)
from prometheus_client import REGISTRY

from egis_common import contracts as c
from egis_common.topics import BOTS, encode, key_for
from egis_localinfra.pytest_plugin import admin_publish
from ledger import bots

pytestmark = pytest.mark.infra
REASONS = ("unknown_bot", "bot_deleted", "account_mismatch")


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("egis_executor_intents_refused_total", {"reason": reason})


@pytest.fixture
async def router_login(infra, test_database):
    """A producer logged in as the signal router: what a compromised router could write."""
    sender = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        **infra.kafka_options("signal_router"),
    )
    await sender.start()
    yield sender
    await sender.stop()


async def reservations_asked(executor, intent_id) -> list:
    """ReserveBudget commands the executor wrote for the intent (its outbox: what it would ever send)."""
    outbox = executor.runtime.outbox.table
    found = await rows(executor.engine, sa.select(outbox.c.payload).where(outbox.c.topic == "egis.ledger.commands.v1"))
    return [m for r in found if (m := c.ReserveBudget.model_validate_json(bytes(r.payload))).intent_id == intent_id]


async def assert_refused(executor, tail, intent: c.OrderIntent, reason: str, before: float, *accounts: str):
    row = await intent_in(executor.engine, intent.intent_id, "skipped", "preflight_requested", "filled")
    assert (row.status, row.skip_reason) == ("skipped", reason), row.detail
    assert await reservations_asked(executor, intent.intent_id) == []
    assert await tail.matching(of(c.ReserveBudget, intent_id=intent.intent_id)) == []
    for account in accounts:
        assert await paper_orders(executor.engine, account) == []
    assert refused(reason) == before + 1


async def test_every_refusal_reason_is_a_series_from_the_start(executor):
    assert all(refused(reason) is not None for reason in REASONS)


async def test_a_forged_intent_for_bot_b_on_bot_as_account_is_refused_and_nothing_trades(
    executor, router_login, make_bot, tail
):
    a, b = await make_bot("100"), await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", Decimal("2942.67"))
    before = refused("account_mismatch")
    forged = open_intent(b).model_copy(update={"exchange_account": a.exchange_account})
    await publish(router_login, forged)
    await assert_refused(executor, tail, forged, "account_mismatch", before, a.exchange_account, b.exchange_account)
    assert await positions(executor.engine, b.bot_id) == [] and await positions(executor.engine, a.bot_id) == []
    # The same bot's own account still trades: the refusal is the forgery's, not the bot's.
    honest = open_intent(b)
    await publish(router_login, honest)
    await intent_in(executor.engine, honest.intent_id, "filled")
    (order,) = await paper_orders(executor.engine, b.exchange_account)
    assert order.status == "FILLED" and await paper_orders(executor.engine, a.exchange_account) == []


async def test_an_intent_for_a_bot_nobody_created_is_refused_unknown_bot(executor, router_login, tail):
    before = refused("unknown_bot")
    nobody = open_intent(_bot())
    await publish(router_login, nobody)
    await assert_refused(executor, tail, nobody, "unknown_bot", before, nobody.exchange_account)


async def test_an_intent_for_a_deleted_bot_is_refused_bot_deleted(
    executor, ledger_runtime, router_login, make_bot, tail
):
    bot = await make_bot("100")
    async with ledger_runtime.uow.begin() as conn:
        await bots.delete_bot(conn, ledger_runtime.outbox, bot.bot_id)
    await on_the_bots_topic(ledger_runtime, bot.bot_id)
    before = refused("bot_deleted")
    late = open_intent(bot)
    await publish(router_login, late)
    await assert_refused(executor, tail, late, "bot_deleted", before, bot.exchange_account)
    assert await positions(executor.engine, bot.bot_id) == []


async def test_a_bot_named_on_the_topic_a_moment_before_its_intent_is_not_refused(executor, router_login):
    """The router routes only to a bot it has read on the topic: the executor reads the topic to its end
    before it concludes that a bot does not exist."""
    before = {reason: refused(reason) for reason in REASONS}
    bot = _bot()
    snapshot = snapshot_of(bot)
    await admin_publish(BOTS.name, encode(snapshot), key_for(snapshot))  # as the ledger publishes a new bot
    intent = open_intent(snapshot)
    await publish(router_login, intent)
    await intent_in(executor.engine, intent.intent_id, "preflight_requested", "skipped")
    (asked,) = await reservations_asked(executor, intent.intent_id)
    assert asked.exchange_account == bot.exchange_account
    assert {reason: refused(reason) for reason in REASONS} == before


def _bot() -> SimpleNamespace:
    """A bot the ledger never created."""
    return SimpleNamespace(bot_id=uuid.uuid4(), exchange="paper", exchange_account=f"acct-{uuid.uuid4().hex[:8]}")
