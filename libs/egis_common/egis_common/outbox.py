"""Transactional outbox and inbox.

Outbox: a handler writes the messages it produces into its schema's `outbox`
table in the same transaction as its state change. After the commit it wakes
the relay, which publishes unpublished rows in id order (acks=all) and marks
them published. A crash between commit and publish leaves rows unpublished;
the relay's periodic sweep publishes them after restart. Delivery is
therefore at least once, and the inbox makes it effectively once.

Inbox: every consumer claims each `message_id` in its schema's `inbox` table
in the same transaction as the effect; a claim that already exists means the
message was processed before, and the handler does nothing.

Backlog: `egis_outbox_unpublished` and `egis_outbox_oldest_unpublished_age_seconds`, refreshed
periodically (`Outbox.show_backlog`), say whether the relay keeps up: a row that waits long means
Kafka does not take it, or no relay runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from egis_common.bulk import insert_many
from egis_common.contracts import Message
from egis_common.logs import correlation_headers, get_logger
from egis_common.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PUBLISHED, OUTBOX_UNPUBLISHED
from egis_common.topics import encode, key_for, topic_for

if TYPE_CHECKING:
    from alembic.operations import Operations

log = get_logger(__name__)
# Set on a connection by Outbox.add; whoever commits its transaction wakes the relay (see `committed`).
WROTE_OUTBOX = "egis_wrote_outbox"


def outbox_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("message_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", BYTEA, nullable=True),
        sa.Column("payload", BYTEA, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    ]


def inbox_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("message_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def create_messaging_tables(op: Operations, schema: str) -> None:
    """For a service's Alembic migration: its outbox and inbox tables."""
    op.create_table("outbox", *outbox_columns(), schema=schema)
    op.create_index(
        "outbox_unpublished",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table("inbox", *inbox_columns(), schema=schema)


def index_inbox_by_age(op: Operations, schema: str) -> None:
    """For a service's Alembic migration: the index that pruning old claims reads (egis_common.retention)."""
    op.create_index("inbox_processed_at", "inbox", ["processed_at"], schema=schema)


def drop_inbox_age_index(op: Operations, schema: str) -> None:
    op.drop_index("inbox_processed_at", "inbox", schema=schema)


def drop_messaging_tables(op: Operations, schema: str) -> None:
    op.drop_table("inbox", schema=schema)
    op.drop_table("outbox", schema=schema)


class Outbox:
    """Writes outgoing messages in the caller's transaction."""

    def __init__(self, schema: str) -> None:
        self.table = sa.Table("outbox", sa.MetaData(), *outbox_columns(), schema=schema)
        self.schema = schema
        OUTBOX_UNPUBLISHED.labels(schema).set(0)
        OUTBOX_OLDEST_AGE.labels(schema).set(0)

    async def add(self, conn: AsyncConnection, *messages: Message) -> None:
        if not messages:
            return
        conn.info[WROTE_OUTBOX] = True  # the unit of work wakes the relay only after such a commit
        await conn.execute(
            self._insert,
            {
                "message_id": [message.message_id for message in messages],
                "topic": [topic_for(message).name for message in messages],
                "key": [key_for(message) for message in messages],
                "payload": [encode(message) for message in messages],
                # jsonb[] travels as text: asyncpg's jsonb codec takes a string
                "headers": [json.dumps(correlation_headers(message)) for message in messages],
            },
        )

    async def add_raw(
        self,
        conn: AsyncConnection,
        *,
        message_id: UUID,
        topic: str,
        key: bytes | None,
        payload: bytes,
        headers: dict[str, str],
    ) -> None:
        """A record that is not a contract message (a dead letter); a row with its id already there is kept."""
        conn.info[WROTE_OUTBOX] = True
        await conn.execute(
            insert(self.table)
            .values(
                message_id=message_id,
                topic=topic,
                key=key,
                payload=payload,
                headers=headers,
            )
            .on_conflict_do_nothing(index_elements=[self.table.c.message_id])
        )

    @functools.cached_property
    def _insert(self) -> sa.TextClause:
        return insert_many(self.table, ("message_id", "topic", "key", "payload", "headers"))

    async def backlog(self, conn: AsyncConnection) -> tuple[int, float]:
        """How many rows wait to be published, and how long the oldest has waited (seconds; 0 when none)."""
        count, age_s = (
            await conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.extract("epoch", sa.func.now() - sa.func.min(self.table.c.created_at)),
                ).where(self.table.c.published_at.is_(None))
            )
        ).one()
        return int(count), max(float(age_s or 0), 0.0)

    async def show_backlog(self, engine: AsyncEngine) -> None:
        """Periodic: the backlog onto its gauges."""
        async with engine.connect() as conn:
            count, age_s = await self.backlog(conn)
        OUTBOX_UNPUBLISHED.labels(self.schema).set(count)
        OUTBOX_OLDEST_AGE.labels(self.schema).set(age_s)


class Inbox:
    """Claims incoming message ids for one consumer, in the caller's transaction."""

    def __init__(self, schema: str, consumer: str) -> None:
        self.consumer = consumer
        self.table = sa.Table("inbox", sa.MetaData(), *inbox_columns(), schema=schema)

    async def claim(self, conn: AsyncConnection, message_id: UUID) -> bool:
        """True the first time; False when this consumer already processed the message."""
        statement = (
            insert(self.table)
            .values(consumer=self.consumer, message_id=message_id)
            .on_conflict_do_nothing()
            .returning(self.table.c.message_id)
        )
        return (await conn.execute(statement)).first() is not None

    async def claim_many(self, conn: AsyncConnection, message_ids: Sequence[UUID]) -> set[UUID]:
        """The ids claimed now; ids this consumer processed before are left out."""
        if not message_ids:
            return set()
        rows = {"consumer": [self.consumer] * len(message_ids), "message_id": list(message_ids)}
        return set((await conn.execute(self._claim_many, rows)).scalars())

    @functools.cached_property
    def _claim_many(self) -> sa.TextClause:
        return insert_many(self.table, ("consumer", "message_id"), "ON CONFLICT DO NOTHING RETURNING message_id")


class OutboxRelay:
    """Publishes committed outbox rows, in order, one relay per schema at a time.

    It has a producer of its own (acks=all, idempotent): the rows are already
    encoded, so FastStream's per-message publish machinery would only cost CPU.
    It does not linger: each round hands the producer all its rows at once and
    waits for their acknowledgements, so lingering could batch nothing more and
    would only delay every crossing.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        bootstrap_servers: str,
        outbox: Outbox,
        *,
        client_id: str = "egis-outbox-relay",
        kafka_options: Mapping[str, Any] | None = None,  # the service's login (egis_common.kafka_login)
        poll_interval_seconds: float = 1.0,
        batch_size: int = 500,
    ) -> None:
        self.engine = engine
        self._producer_options = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 0,
            **(kafka_options or {}),
        }
        self.producer: AIOKafkaProducer | None = None  # aiokafka wants a running loop to build one
        self.table = outbox.table
        self.poll_interval_seconds = poll_interval_seconds
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        # Relays of the same schema in other processes take turns on this lock.
        self._lock_id = zlib.crc32(f"{outbox.table.schema}.outbox".encode())
        OUTBOX_PUBLISHED.labels(outbox.schema)  # nothing published yet is a 0, not a missing series

    def notify(self) -> None:
        """Called right after a commit that wrote outbox rows."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish every unpublished row; returns how many were published."""
        total = 0
        while True:
            published = await self._publish_batch()
            total += published
            if published < self.batch_size:  # a short batch was the last one: no empty round to find out
                return total

    async def _publish_batch(self) -> int:
        # Through asyncpg itself, not SQLAlchemy: a round is four statements (BEGIN, the read, the
        # mark, COMMIT), and through SQLAlchemy each costs the relay several times the CPU
        # (bench/executor/statement_cost.py measures it).
        async with self.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's, never None here
            try:
                async with driver.transaction():
                    # Relays of the same schema take turns: the lock is tried in the same statement that reads
                    # the rows, and no rows come back while another relay holds it.
                    rows = await driver.fetch(self._pending, self._lock_id, self.batch_size)
                    if rows:
                        await self._send(rows)
                        await driver.execute(self._mark_published, [row["id"] for row in rows])
            except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError):
                # SQLAlchemy did not see this connection fail: the pool must not hand it out again.
                await conn.invalidate()
                raise
        if rows:
            OUTBOX_PUBLISHED.labels(self.table.schema).inc(len(rows))
        return len(rows)

    @functools.cached_property
    def _pending(self) -> str:
        # headers as text: what a jsonb value decodes to depends on the codecs set on the connection
        return (
            f"WITH turn AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($1) AS ours) "
            f"SELECT id, topic, key, payload, headers::text AS headers FROM {self._table_name}, turn "
            f"WHERE turn.ours AND published_at IS NULL ORDER BY id LIMIT $2"
        )

    @functools.cached_property
    def _mark_published(self) -> str:
        return f"UPDATE {self._table_name} SET published_at = now() WHERE id = ANY($1::bigint[])"

    @property
    def _table_name(self) -> str:
        return f"{self.table.schema}.{self.table.name}"

    async def _send(self, rows: Sequence[asyncpg.Record]) -> None:
        # Enqueue in id order, then wait for every acknowledgement: the
        # idempotent producer keeps that order within each partition.
        if self.producer is None:
            producer = AIOKafkaProducer(**self._producer_options)
            await producer.start()
            self.producer = producer
        futures = [
            await self.producer.send(
                row["topic"],
                row["payload"],
                key=row["key"],
                headers=[
                    ("content-type", b"application/json"),
                    *((k, v.encode()) for k, v in json.loads(row["headers"]).items()),
                ],
            )
            for row in rows
        ]
        await asyncio.gather(*futures)

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def run(self) -> None:
        """Publish on every wake-up and on every poll interval, until cancelled."""
        while True:
            try:
                await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next sweep retries; rows stay unpublished meanwhile
                log.exception("outbox_relay_failed", schema=self.table.schema)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that lands as the wake-up fires, and the relay never stops.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval_seconds):
                    await self._wake.wait()
            self._wake.clear()


class UnitOfWork:
    """One database transaction of a handler; the relay wakes right after it commits."""

    def __init__(self, engine: AsyncEngine, relay: OutboxRelay) -> None:
        self.engine = engine
        self.relay = relay

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            conn.info.pop(WROTE_OUTBOX, None)  # left over from a transaction that failed on this connection
            yield conn
            wrote = conn.info.pop(WROTE_OUTBOX, False)
        if wrote:  # committed
            self.relay.notify()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection with no transaction around its statements (autocommit): each reads on its own.

        For a read that is one statement: it saves the BEGIN and ROLLBACK round trips a transaction
        would cost. Two statements read this way may see different snapshots.
        """
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    def committed(self, conn: AsyncConnection) -> None:
        """Right after a commit on `conn` made without `begin`: wake the relay if it wrote outbox rows."""
        if conn.info.pop(WROTE_OUTBOX, False):
            self.relay.notify()
