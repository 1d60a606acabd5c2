"""Helpers shared by the executor's tests: intents, publishing, reading topics and rows, waiting."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from egis_common import contracts as c
from egis_common.topics import BOTS, Topic, encode, key_for, topic_for
from egis_localinfra.pytest_plugin import admin_options
from egis_localinfra.testing import eventually
from egis_venues.paper import tables as paper
from executor import domain as decisions
from executor.adapters import repository as repo
from executor.domain import Intent
from ledger import repository as ledger_repo


def open_intent(bot, symbol="ETHUSDT", size="10", side=c.Side.LONG, **extra) -> c.OrderIntent:
    return c.OrderIntent(
        intent_id=uuid.uuid4(),
        signal_id=uuid.uuid4(),
        bot_id=bot.bot_id,
        intent=c.IntentKind.OPEN,
        side=side,
        symbol=symbol,
        requested_size_usd=Decimal(size),
        exchange=c.ExchangeName(bot.exchange),
        exchange_account=bot.exchange_account,
        **extra,
    )


def close_intent(bot, symbol="ETHUSDT", side=c.Side.LONG) -> c.OrderIntent:
    return c.OrderIntent(
        intent_id=uuid.uuid4(),
        signal_id=uuid.uuid4(),
        bot_id=bot.bot_id,
        intent=c.IntentKind.CLOSE,
        side=side,
        symbol=symbol,
        exchange=c.ExchangeName(bot.exchange),
        exchange_account=bot.exchange_account,
    )


def bot_of(executor) -> SimpleNamespace:
    """A bot as the intents name it, which the ledger does not know: for tests that never reach the ledger.
    The executor's view of bots knows it, as if the bots topic had said so."""
    bot = SimpleNamespace(bot_id=uuid.uuid4(), exchange="paper", exchange_account=f"acct-{uuid.uuid4().hex[:8]}")
    executor.wiring.bots.view.apply(bot.bot_id, snapshot_of(bot))
    return bot


def snapshot_of(bot, version: int = 1, **changes) -> c.BotSnapshot:
    """A bot's record on the bots topic, as the ledger publishes it."""
    return c.BotSnapshot(
        bot_id=bot.bot_id,
        version=version,
        owner_id=uuid.uuid4(),
        name="executor test bot",
        signal_key=f"key-{bot.bot_id.hex}",
        webhook_secret_hash="not-a-secret",
        exchange=c.ExchangeName(bot.exchange),
        exchange_account=bot.exchange_account,
        initial_budget_usd=Decimal("100"),
        default_order_size_usd=Decimal("10"),
        paused=False,
        deleted=False,
        **changes,
    )


async def on_the_bots_topic(ledger_runtime, bot_id) -> None:
    """Until the ledger has published every record of the bot it wrote so far (its outbox, for the bots topic)."""
    outbox = ledger_runtime.outbox.table

    async def published() -> bool:
        query = (
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(outbox.c.topic == BOTS.name, outbox.c.key == str(bot_id).encode(), outbox.c.published_at.is_(None))
        )
        async with ledger_runtime.engine.connect() as conn:
            return await conn.scalar(query) == 0

    await eventually(published, what=f"bot {bot_id} on the bots topic")


def reserved(intent: c.OrderIntent) -> c.BudgetReserved:
    return c.BudgetReserved(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        position_id=uuid.uuid4(),
        intent=intent.intent,
        side=intent.side,
        symbol=intent.symbol,
        reserved_usd=Decimal("10"),
    )


async def pending_intent(executor, cause: str = "timeout") -> Intent:
    """An open whose outcome is unknown, recorded as the executor records one; nothing about it leaves the
    executor, so neither the ledger nor the reconciler hears of it."""
    message = open_intent(bot_of(executor))
    async with executor.runtime.uow.begin() as conn:
        ((_, received),) = await executor.wiring.executor.receive_intents(conn, [message])
        outbox = executor.runtime.outbox.table
        await conn.execute(outbox.delete().where(outbox.c.message_id.in_([m.message_id for m in received.messages])))
        order = decisions.market_order(received.intent, Decimal("0.1"))
        submitting = decisions.submitting(received.intent, reserved(message), order, datetime.now(UTC)).intent
        decision = decisions.pending(submitting, cause, None)
        await repo.save(conn, [decision.intent])
        await repo.insert_pending(conn, [(decision.pending, decision.intent)])
    return decision.intent


def unique_symbol() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}USDT"


async def publish(producer: AIOKafkaProducer, *messages: c.Message) -> list:
    """Publish and wait for each record's acknowledgement; returns the record metadata (topic, partition, offset)."""
    return [await producer.send_and_wait(topic_for(m).name, encode(m), key=key_for(m)) for m in messages]


async def rows(engine, query) -> list:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def intent_row(engine, intent_id):
    found = await rows(engine, sa.select(repo.intents).where(repo.intents.c.intent_id == intent_id))
    return found[0] if found else None


async def intent_in(engine, intent_id, *statuses: str, timeout: float = 15):
    async def probe():
        row = await intent_row(engine, intent_id)
        return row if row is not None and row.status in statuses else None

    return await eventually(probe, timeout=timeout, what=f"intent {intent_id} in {statuses}")


async def paper_orders(engine, account: str) -> list:
    return await rows(
        engine, sa.select(paper.orders).where(paper.orders.c.account == account).order_by(paper.orders.c.order_id)
    )


async def positions(engine, bot_id) -> list:
    return await rows(engine, sa.select(ledger_repo.positions).where(ledger_repo.positions.c.bot_id == bot_id))


async def position_in(engine, bot_id, status: str):
    async def probe():
        return [p for p in await positions(engine, bot_id) if p.status == status]

    return (await eventually(probe, what=f"a {status} position of bot {bot_id}"))[0]


async def pending_record(engine, intent_id):
    found = await rows(engine, sa.select(repo.pending).where(repo.pending.c.intent_id == intent_id))
    return found[0] if found else None


class Tail:
    """Every message on some topics from the moment it starts: assigned partitions, no consumer group."""

    def __init__(self, bootstrap: str, *topics: Topic, login: dict[str, str] | None = None) -> None:
        self.topics = {t.name: t for t in topics}
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **(login or admin_options())
        )
        self.seen: list[c.Message] = []

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(t.name, p) for t in self.topics.values() for p in range(t.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, before the test publishes anything
            await self.consumer.position(partition)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def matching(self, predicate) -> list[c.Message]:
        for records in (await self.consumer.getmany(timeout_ms=100)).values():
            self.seen.extend(self.topics[r.topic].decode(r.value) for r in records)
        return [m for m in self.seen if predicate(m)]

    async def wait_for(self, predicate, count: int = 1, what: str = "messages") -> list[c.Message]:
        async def probe():
            found = await self.matching(predicate)
            return found if len(found) >= count else None

        return await eventually(probe, what=what)


def of(kind: type, **fields):
    """A predicate: messages of `kind` whose fields have these values."""
    return lambda m: isinstance(m, kind) and all(getattr(m, k, None) == v for k, v in fields.items())


async def consumed(bootstrap: str, group: str, records: list) -> None:
    """Until `group` has committed past every one of `records` (RecordMetadata): they were processed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **admin_options())
    await admin.start()
    try:

        async def probe():
            offsets = await admin.list_consumer_group_offsets(group)
            return all(
                TopicPartition(r.topic, r.partition) in offsets
                and offsets[TopicPartition(r.topic, r.partition)].offset > r.offset
                for r in records
            )

        await eventually(probe, timeout=30, what=f"group {group} past {len(records)} records")
    finally:
        await admin.close()
