"""Outbox, inbox, redelivery and dead letters against real Kafka and Postgres."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import anyio
import anyio.to_thread
import asyncpg
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from egis_common import subscriber as subscriber_module
from egis_common.broker import (
    IDLE_WAIT_MS,
    KafkaRecords,
    batch_subscriber,
    batch_subscriber_options,
    subscriber_options,
)
from egis_common.contracts import MarkPrice, SignalSkipped
from egis_common.db import make_engine
from egis_common.logs import current_correlation
from egis_common.outbox import OutboxRelay
from egis_common.runtime import build_runtime
from egis_common.topics import DEAD_LETTER_TOPIC, MARK_PRICES, encode
from egis_localinfra.testing import eventually, stop_service

sys.path.insert(0, str(Path(__file__).parent))
from probe import ProbeSettings, count_effects, create_schema, record_effect  # noqa: E402

pytestmark = pytest.mark.infra


@pytest.fixture
async def runtime(test_database):
    runtime = build_runtime(ProbeSettings())
    await create_schema(runtime.engine)
    yield runtime
    await stop_service(runtime)


def unique_symbol() -> str:
    return f"T{uuid.uuid4().hex[:10].upper()}USDT"


def consume_mark_prices_into_effects(runtime, group: str, symbol: str) -> None:
    """A consumer in the house style: parse, claim in the inbox, effect, commit."""
    inbox = runtime.inbox("probe-consumer")

    @runtime.broker.subscriber(MARK_PRICES.name, **subscriber_options(group))
    async def on_mark_price(msg: KafkaRecords) -> None:
        message = MARK_PRICES.decode(msg.body)
        if message.symbol != symbol:
            return
        async with runtime.uow.begin() as conn:
            if not await inbox.claim(conn, message.message_id):
                return
            await record_effect(conn, message.message_id, "consumed")


async def test_outbox_message_is_consumed_once_and_a_redelivery_has_no_effect(runtime):
    symbol = unique_symbol()
    consume_mark_prices_into_effects(runtime, f"g-{uuid.uuid4()}", symbol)
    await runtime.broker.start()
    await runtime.start_relay()

    message = MarkPrice(symbol=symbol, price=Decimal("101.5"))
    async with runtime.uow.begin() as conn:
        await runtime.outbox.add(conn, message)

    await eventually(lambda: count_effects(runtime.engine, message.message_id), what="consumed once")
    # Deliver the very same record again, as Kafka may after a rebalance.
    await runtime.broker.publish(encode(message), MARK_PRICES.name, key=symbol.encode())
    marker = MarkPrice(symbol=symbol, price=Decimal("1"))
    await runtime.broker.publish(encode(marker), MARK_PRICES.name, key=symbol.encode())
    # The marker is on the same partition, after the duplicate: once it is in, the duplicate was seen.
    await eventually(lambda: count_effects(runtime.engine, marker.message_id), what="marker consumed")
    assert await count_effects(runtime.engine, message.message_id) == 1
    async with runtime.engine.connect() as conn:
        published = await conn.scalar(
            sa.select(runtime.outbox.table.c.published_at).where(
                runtime.outbox.table.c.message_id == message.message_id
            )
        )
    assert published is not None


async def test_correlation_ids_reach_the_consumer_through_headers(runtime):
    signal_id, bot_id = uuid.uuid4(), uuid.uuid4()
    seen: list[dict[str, str]] = []
    from egis_common.topics import SIGNALS_SKIPPED

    @runtime.broker.subscriber(SIGNALS_SKIPPED.name, **subscriber_options(f"g-{uuid.uuid4()}"))
    async def on_skip(msg: KafkaRecords) -> None:
        if SIGNALS_SKIPPED.decode(msg.body).signal_id == signal_id:
            seen.append(current_correlation())

    await runtime.broker.start()
    await runtime.start_relay()
    skipped = SignalSkipped(signal_id=signal_id, signal_key="k", bot_id=bot_id, reason="bot_paused")
    async with runtime.uow.begin() as conn:
        await runtime.outbox.add(conn, skipped)

    async def arrived():
        return seen

    await eventually(arrived, what="skip consumed")
    assert seen == [{"signal_id": str(signal_id), "bot_id": str(bot_id)}]


async def test_a_process_killed_after_commit_loses_nothing(runtime, infra):
    symbol = unique_symbol()
    script = Path(__file__).parent / "probe_process.py"
    died = subprocess.run(
        [sys.executable, str(script), "write-and-die", symbol], capture_output=True, text=True, timeout=60
    )
    assert died.returncode == -9, died.stderr
    message_id = uuid.UUID(died.stdout.strip())
    table = runtime.outbox.table
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(sa.select(table.c.published_at).where(table.c.message_id == message_id))).one()
    assert row.published_at is None, "the killed process must not have published"

    consumer = AIOKafkaConsumer(
        MARK_PRICES.name,
        bootstrap_servers=infra.kafka_bootstrap,
        **infra.kafka_options(),
        group_id=f"g-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        restarted = subprocess.run([sys.executable, str(script), "relay"], capture_output=True, text=True, timeout=60)
        assert restarted.returncode == 0, restarted.stderr
        assert int(restarted.stdout.strip().splitlines()[-1]) >= 1
        received = await _read_until(consumer, lambda record: MARK_PRICES.decode(record.value).message_id == message_id)
        assert MARK_PRICES.decode(received.value).symbol == symbol
    finally:
        await consumer.stop()
    async with runtime.engine.connect() as conn:
        published = await conn.scalar(sa.select(table.c.published_at).where(table.c.message_id == message_id))
    assert published is not None


async def _read_until(consumer: AIOKafkaConsumer, match, timeout: float = 20.0):
    async def next_match():
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            for record in records:
                if match(record):
                    return record
        return None

    return await eventually(next_match, timeout=timeout, interval=0, what="record on topic")


@pytest.fixture
async def scratch_topic(infra):
    """A one-partition topic of the test's own, so offsets are predictable.

    A test that subscribes to it asks for it before `runtime`: the service then stops (and sends
    its last commits) before the topic is deleted, not after.
    """
    name = f"egis.test.{uuid.uuid4().hex[:12]}.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap, **infra.kafka_options())
    await admin.start()
    await admin.create_topics([NewTopic(name, 1, 1)])
    yield name, admin
    await admin.delete_topics([name])
    await admin.close()


async def _committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    committed = offsets.get(TopicPartition(topic, 0))
    return committed.offset if committed else -1


async def test_a_failing_handler_leaves_the_offset_uncommitted_and_gets_the_message_again(runtime, scratch_topic):
    topic, admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    seen: list[tuple[int, int]] = []  # (offset, committed offset when the handler started)

    @runtime.broker.subscriber(topic, **subscriber_options(group))
    async def flaky(msg: KafkaRecords) -> None:
        seen.append((msg.raw_message.offset, await _committed(admin, group, topic)))
        if len(seen) == 1:
            raise RuntimeError("database unavailable")

    await runtime.broker.start()
    await runtime.broker.publish(b'{"n": 1}', topic)

    async def processed_and_committed():
        return len(seen) == 2 and await _committed(admin, group, topic) == 1

    await eventually(processed_and_committed, what="retried then committed")
    (first_offset, committed_before), (second_offset, committed_after_failure) = seen
    assert first_offset == second_offset == 0, "the same record came again"
    assert committed_before == -1 and committed_after_failure == -1, "nothing was committed after the failure"


async def test_after_n_failures_the_message_lands_in_the_dead_letter_topic_and_the_partition_moves_on(
    runtime, scratch_topic, infra
):
    topic, admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    attempts: dict[bytes, int] = {}

    @runtime.broker.subscriber(topic, **subscriber_options(group))
    async def always_fails_on_poison(msg: KafkaRecords) -> None:
        attempts[msg.body] = attempts.get(msg.body, 0) + 1
        if msg.body == b'{"poison": true}':
            raise RuntimeError("cannot handle this one")

    dead_letters = AIOKafkaConsumer(
        DEAD_LETTER_TOPIC,
        bootstrap_servers=infra.kafka_bootstrap,
        **infra.kafka_options(),
        group_id=f"dlq-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await dead_letters.start()
    try:
        await runtime.broker.start()
        await runtime.start_relay()  # dead letters travel through the service's outbox
        await runtime.broker.publish(b'{"poison": true}', topic, key=b"k1")
        await runtime.broker.publish(b'{"fine": true}', topic, key=b"k1")

        async def both_done():
            return attempts.get(b'{"fine": true}') == 1 and await _committed(admin, group, topic) == 2

        await eventually(both_done, what="poison dead-lettered and the next message processed")
        assert attempts[b'{"poison": true}'] == ProbeSettings().consumer_max_attempts == 3
        record = await _read_until(dead_letters, lambda r: dict(r.headers).get("x-dlq-topic") == topic.encode())
        headers = dict(record.headers)
        assert record.value == b'{"poison": true}' and record.key == b"k1"
        assert headers["x-dlq-offset"] == b"0" and headers["x-dlq-attempts"] == b"3"
        assert b"cannot handle this one" in headers["x-dlq-error"]
    finally:
        await dead_letters.stop()


async def test_an_unparseable_message_is_dead_lettered_at_once(runtime, scratch_topic, infra):
    topic, admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    calls = 0

    @runtime.broker.subscriber(topic, **subscriber_options(group))
    async def strict(msg: KafkaRecords) -> None:
        nonlocal calls
        calls += 1
        MARK_PRICES.decode(msg.body)

    dead_letters = AIOKafkaConsumer(
        DEAD_LETTER_TOPIC,
        bootstrap_servers=infra.kafka_bootstrap,
        **infra.kafka_options(),
        group_id=f"dlq-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await dead_letters.start()
    try:
        await runtime.broker.start()
        await runtime.start_relay()  # dead letters travel through the service's outbox
        float_price = b'{"type": "MarkPrice", "symbol": "X", "price": 0.1}'
        await runtime.broker.publish(float_price, topic)

        async def committed_past_it():
            return await _committed(admin, group, topic) == 1

        await eventually(committed_past_it, what="committed past the unparseable message")
        record = await _read_until(dead_letters, lambda r: dict(r.headers).get("x-dlq-topic") == topic.encode())
        assert calls == 1, "a message that cannot parse is not retried"
        assert record.value == float_price
        assert dict(record.headers)["x-dlq-attempts"] == b"1"
        assert b"ValidationError" in dict(record.headers)["x-dlq-error"]
    finally:
        await dead_letters.stop()


async def _unpublished(runtime, message_ids) -> int:
    table = runtime.outbox.table
    async with runtime.engine.connect() as conn:
        return await conn.scalar(
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.message_id.in_(message_ids), table.c.published_at.is_(None))
        )


async def test_the_relay_publishes_batch_after_batch_and_waits_its_turn_behind_another_relay(runtime, infra):
    relay = OutboxRelay(
        runtime.engine, infra.kafka_bootstrap, runtime.outbox, batch_size=2, kafka_options=infra.kafka_options()
    )
    messages = [MarkPrice(symbol=unique_symbol(), price=Decimal(n)) for n in range(1, 6)]
    async with runtime.uow.begin() as conn:
        await runtime.outbox.add(conn, *messages)
    ids = [m.message_id for m in messages]
    try:
        # Another relay of the same schema (another process) is publishing: this one finds nothing to do.
        async with runtime.engine.begin() as other:
            await other.execute(sa.select(sa.func.pg_advisory_xact_lock(relay._lock_id)))
            assert await relay.publish_pending() == 0
        assert await _unpublished(runtime, ids) == 5
        assert await relay.publish_pending() >= 5  # three batches: 2, 2 and a short one that ends the round
        assert await _unpublished(runtime, ids) == 0
    finally:
        await relay.close()


async def test_a_relay_whose_connection_was_cut_publishes_on_a_new_one(runtime, infra):
    # The relay talks to asyncpg itself, so SQLAlchemy's pool does not see its connection fail.
    engine = make_engine(runtime.settings, pool_size=1)
    relay = OutboxRelay(engine, infra.kafka_bootstrap, runtime.outbox, kafka_options=infra.kafka_options())
    message = MarkPrice(symbol=unique_symbol(), price=Decimal(1))
    try:
        assert await relay.publish_pending() == 0  # the pool's one connection is open
        async with engine.connect() as conn:
            relays_pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
        async with runtime.uow.begin() as conn:
            await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": relays_pid})
            await runtime.outbox.add(conn, message)
        with pytest.raises((asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)):
            await relay.publish_pending()
        assert await relay.publish_pending() == 1
        assert await _unpublished(runtime, [message.message_id]) == 0
    finally:
        await relay.close()
        await engine.dispose()


async def test_only_a_commit_that_wrote_outbox_rows_wakes_the_relay(runtime):
    wake = runtime.relay._wake
    async with runtime.uow.begin() as conn:
        await record_effect(conn, uuid.uuid4(), "no message")
    assert not wake.is_set()
    with pytest.raises(RuntimeError):
        async with runtime.uow.begin() as conn:
            await runtime.outbox.add(conn, MarkPrice(symbol=unique_symbol(), price=Decimal("1")))
            raise RuntimeError("rolled back")
    assert not wake.is_set(), "a rolled back write wakes nobody"
    async with runtime.uow.begin() as conn:
        await record_effect(conn, uuid.uuid4(), "still no message on this connection")
    assert not wake.is_set(), "a failed transaction's write does not leak into the next one"
    async with runtime.uow.begin() as conn:
        await runtime.outbox.add(conn, MarkPrice(symbol=unique_symbol(), price=Decimal("1")))
    assert wake.is_set()


async def test_a_read_connection_runs_each_statement_in_a_transaction_of_its_own(runtime):
    current = sa.text("SELECT pg_current_xact_id()::text")
    async with runtime.uow.read() as conn:
        first, second = await conn.scalar(current), await conn.scalar(current)
    assert first != second, "no transaction spans two statements"
    async with runtime.uow.begin() as conn:
        first, second = await conn.scalar(current), await conn.scalar(current)
    assert first == second, "the unit of work's statements share one transaction"


def faststream_batch_subscriber(broker, topic: str, group_id: str):
    return broker.subscriber(topic, **batch_subscriber_options(group_id))


@pytest.mark.parametrize(
    "subscribe, hops_to_a_thread", [(batch_subscriber, False), (faststream_batch_subscriber, True)]
)
async def test_a_batch_handler_gets_its_message_without_a_trip_to_a_worker_thread(
    runtime, scratch_topic, monkeypatch, subscribe, hops_to_a_thread
):
    # FastStream's own batch subscriber is the control: fast_depends resolves the message in a worker thread.
    topic, _ = scratch_topic
    to_threads: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(func, *args, **kwargs):
        to_threads.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    offsets: list[int] = []

    async def handler(msg: KafkaRecords) -> None:
        offsets.extend(record.offset for record in msg.raw_message)

    subscribe(runtime.broker, topic, f"g-{uuid.uuid4()}")(handler)
    await runtime.broker.start()
    for n in range(3):
        await runtime.broker.publish(b'{"n": %d}' % n, topic)

    async def handled() -> bool:
        return offsets == [0, 1, 2]

    await eventually(handled, what="every record handled once, in order")
    assert bool(to_threads) is hops_to_a_thread, to_threads


@pytest.mark.parametrize("subscribe, sleeps", [(batch_subscriber, False), (faststream_batch_subscriber, True)])
async def test_an_idle_batch_subscriber_goes_straight_back_to_kafka_without_sleeping(
    scratch_topic, runtime, monkeypatch, subscribe, sleeps
):
    # FastStream's own batch subscriber is the control: after every wait that ends empty it sleeps
    # batch_timeout_ms, and a record that arrives meanwhile waits the sleep out.
    topic, _ = scratch_topic
    blind = batch_subscriber_options("g")["batch_timeout_ms"] / 1000
    slept: list[float] = []
    sleep = anyio.sleep

    async def counting_sleep(delay, *args, **kwargs):
        if delay == blind:
            slept.append(delay)
        return await sleep(delay, *args, **kwargs)

    monkeypatch.setattr(anyio, "sleep", counting_sleep)
    offsets: list[int] = []

    async def handler(msg: KafkaRecords) -> None:
        offsets.extend(record.offset for record in msg.raw_message)

    subscribe(runtime.broker, topic, f"g-{uuid.uuid4()}")(handler)
    await runtime.broker.start()
    await asyncio.sleep(2.5 * IDLE_WAIT_MS / 1000)  # idle: at least two waits for records end empty
    for n in range(2):
        await runtime.broker.publish(b'{"n": %d}' % n, topic)

    async def handled() -> bool:
        return offsets == [0, 1]

    await eventually(handled, what="both records handled once, in order")
    assert bool(slept) is sleeps, slept


async def test_a_service_connects_to_postgres_under_its_own_name(runtime):
    # pg_stat_activity and the server's log lines (%a) tell the services apart by it.
    async with runtime.uow.read() as conn:
        names = set(
            (
                await conn.execute(
                    sa.text(
                        "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid() "
                        "UNION ALL SELECT current_setting('application_name')"
                    )
                )
            ).scalars()
        )
    assert names == {"probe"}


class GatedCommits:
    """aiokafka's commit, held until `gate` is set; records every commit with what was handled before it."""

    def __init__(self, monkeypatch, handled: list[int]) -> None:
        self.gate = asyncio.Event()
        self.calls: list[tuple[dict, list[int]]] = []  # (offsets, the offsets handled when the commit was sent)
        real = AIOKafkaConsumer.commit

        async def commit(consumer, offsets=None):
            self.calls.append(({tp.partition: o for tp, o in (offsets or {}).items()}, list(handled)))
            await self.gate.wait()
            return await real(consumer, offsets)

        monkeypatch.setattr(AIOKafkaConsumer, "commit", commit)

    def never_past_what_was_handled(self) -> bool:
        return all(offset <= max(done, default=-1) + 1 for offsets, done in self.calls for offset in offsets.values())


async def until_committed(admin: AIOKafkaAdminClient, group: str, topic: str, offset: int, what: str) -> None:
    async def reached() -> bool:
        return await _committed(admin, group, topic) == offset

    await eventually(reached, what=what)


async def start_recording(runtime, topic: str, group: str, handled: list[int]) -> None:
    """A batch_subscriber whose handler adds each record's offset to `handled`; the broker started."""

    async def handler(msg: KafkaRecords) -> None:
        handled.extend(record.offset for record in msg.raw_message)

    batch_subscriber(runtime.broker, topic, group)(handler)
    await runtime.broker.start()


async def test_a_batch_subscriber_fetches_its_next_batch_while_the_last_ones_commit_is_on_its_way(
    scratch_topic, runtime, monkeypatch
):
    # FastStream awaits each batch's commit before it fetches the next; batch_subscriber sends it in the background.
    topic, admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    handled: list[int] = []
    commits = GatedCommits(monkeypatch, handled)
    await start_recording(runtime, topic, group, handled)
    await runtime.broker.publish(b'{"n": 0}', topic)
    await eventually(lambda: _true_when(commits.calls), what="the first batch's commit sent (and held)")
    await runtime.broker.publish(b'{"n": 1}', topic)
    await eventually(lambda: _true_when(handled == [0, 1]), what="the next batch handled while the commit is held")
    assert await _committed(admin, group, topic) == -1

    commits.gate.set()

    await until_committed(admin, group, topic, 2, "the second batch committed after the first")
    assert [offsets for offsets, _ in commits.calls] == [{0: 1}, {0: 2}], "one commit in flight at a time, in order"


async def test_a_batch_subscriber_never_commits_a_batch_still_being_handled_or_one_that_failed(
    scratch_topic, runtime, monkeypatch
):
    topic, admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    handled: list[int] = []
    commits = GatedCommits(monkeypatch, handled)
    commits.gate.set()
    in_handler, release = asyncio.Event(), asyncio.Event()
    failed: list[int] = []

    async def handler(msg: KafkaRecords) -> None:
        offsets = [record.offset for record in msg.raw_message]
        if 1 in offsets and not failed:
            failed.append(1)
            raise RuntimeError("the first attempt at offset 1 fails")
        if 2 in offsets:
            in_handler.set()
            await release.wait()
        handled.extend(offsets)

    batch_subscriber(runtime.broker, topic, group)(handler)
    await runtime.broker.start()
    await runtime.broker.publish(b'{"n": 0}', topic)

    await until_committed(admin, group, topic, 1, "offset 0 handled and committed")
    await runtime.broker.publish(b'{"n": 1}', topic)

    await until_committed(admin, group, topic, 2, "offset 1 failed once, came again, was handled and committed")
    assert failed == [1] and handled == [0, 1]
    await runtime.broker.publish(b'{"n": 2}', topic)
    await asyncio.wait_for(in_handler.wait(), 15)
    assert await _committed(admin, group, topic) == 2, "nothing past offset 1 while offset 2 is being handled"

    release.set()

    await until_committed(admin, group, topic, 3, "offset 2 handled and committed")
    assert commits.never_past_what_was_handled(), commits.calls


async def test_a_batch_subscriber_commits_at_once_after_a_quiet_spell_then_at_most_once_per_interval(
    scratch_topic, runtime, monkeypatch
):
    topic, admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    monkeypatch.setattr(subscriber_module, "COMMIT_INTERVAL_SECONDS", 3.0)
    handled: list[int] = []
    commits = GatedCommits(monkeypatch, handled)
    commits.gate.set()
    await start_recording(runtime, topic, group, handled)
    started = asyncio.get_running_loop().time()
    for n in range(5):  # five batches of one record each
        await runtime.broker.publish(b'{"n": %d}' % n, topic)
        await eventually(lambda n=n: _true_when(handled == list(range(n + 1))), what=f"offset {n} handled")
    assert asyncio.get_running_loop().time() - started < 3.0, "the test needs the five batches within the interval"
    assert [offsets for offsets, _ in commits.calls] == [{0: 1}], "the first batch at once, the others wait"

    await until_committed(admin, group, topic, 5, "the other four batches in one commit after the interval")
    assert [offsets for offsets, _ in commits.calls] == [{0: 1}, {0: 5}]


async def test_a_batch_subscriber_that_stops_commits_what_it_handled_first(scratch_topic, runtime, monkeypatch):
    topic, admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    monkeypatch.setattr(subscriber_module, "COMMIT_INTERVAL_SECONDS", 600.0)
    handled: list[int] = []
    commits = GatedCommits(monkeypatch, handled)
    await start_recording(runtime, topic, group, handled)
    await runtime.broker.publish(b'{"n": 0}', topic)
    await eventually(lambda: _true_when(commits.calls), what="the first batch's commit sent (and held)")
    await runtime.broker.publish(b'{"n": 1}', topic)
    await eventually(lambda: _true_when(handled == [0, 1]), what="the second batch handled; its commit waits")
    stopping = asyncio.create_task(runtime.broker.stop())
    await asyncio.sleep(0.5)
    assert not stopping.done(), "the stop waits for the commit on its way"

    commits.gate.set()
    await asyncio.wait_for(stopping, 30)  # not the 600 s interval
    assert await _committed(admin, group, topic) == 2


async def test_a_batch_subscriber_whose_last_commit_cannot_go_through_still_stops(scratch_topic, runtime, monkeypatch):
    # aiokafka retries a commit for as long as its error is retriable (no coordinator, a topic gone).
    topic, admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    monkeypatch.setattr(subscriber_module, "STOP_COMMIT_TIMEOUT_SECONDS", 1.0)
    handled: list[int] = []
    commits = GatedCommits(monkeypatch, handled)  # the gate stays shut
    await start_recording(runtime, topic, group, handled)
    await runtime.broker.publish(b'{"n": 0}', topic)
    await eventually(lambda: _true_when(commits.calls), what="the batch's commit sent (and held for good)")
    await asyncio.wait_for(runtime.broker.stop(), 20)
    assert handled == [0]
    assert await _committed(admin, group, topic) == -1, "offset 0 comes again after a restart"


async def _true_when(value) -> bool:
    return bool(value)
