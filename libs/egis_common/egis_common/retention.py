"""Pruning of the messaging tables, so outbox and inbox do not grow without bound.

Outbox: a row is only needed until it is published; it is kept a while longer
for debugging (`outbox_retention_hours`). An unpublished row is never pruned,
however old.

Inbox: a claim only matters while Kafka can still deliver that message again,
that is while it is within the topic's retention (7 days by default). Claims
are kept for `inbox_retention_days`, which must stay longer than every
consumed topic's retention.

Deletes go in bounded batches, so a backlog never holds one long lock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from egis_common.failures import failure_columns
from egis_common.logs import get_logger
from egis_common.metrics import MESSAGING_ROWS_PRUNED
from egis_common.outbox import inbox_columns, outbox_columns

log = get_logger(__name__)


async def prune_messaging(
    engine: AsyncEngine, schema: str, *, outbox_keep: timedelta, inbox_keep: timedelta, batch_rows: int = 5_000
) -> dict[str, int]:
    """Delete outbox rows published before `now - outbox_keep` and inbox claims older than `inbox_keep`."""
    metadata = sa.MetaData(schema=schema)
    outbox = sa.Table("outbox", metadata, *outbox_columns())
    inbox = sa.Table("inbox", metadata, *inbox_columns())
    failures = sa.Table("consumer_failures", metadata, *failure_columns())
    published_long_ago = sa.and_(
        outbox.c.published_at.is_not(None), outbox.c.published_at < sa.func.now() - outbox_keep
    )
    pruned = {
        "outbox": await _delete_in_batches(engine, outbox, [outbox.c.id], published_long_ago, batch_rows),
        "inbox": await _delete_in_batches(
            engine,
            inbox,
            [inbox.c.consumer, inbox.c.message_id],
            inbox.c.processed_at < sa.func.now() - inbox_keep,
            batch_rows,
        ),
        # A record's failures matter as long as Kafka can deliver it again, like an inbox claim.
        "consumer_failures": await _delete_in_batches(
            engine,
            failures,
            [failures.c.topic, failures.c.partition_no, failures.c.record_offset],
            failures.c.last_failed_at < sa.func.now() - inbox_keep,
            batch_rows,
        ),
    }
    for table, count in pruned.items():
        MESSAGING_ROWS_PRUNED.labels(schema, table).inc(count)
    if any(pruned.values()):
        log.info("messaging_rows_pruned", schema=schema, **pruned)
    return pruned


async def _delete_in_batches(
    engine: AsyncEngine, table: sa.Table, key: list[sa.Column[Any]], old: sa.ColumnElement[bool], batch_rows: int
) -> int:
    doomed = sa.select(*key).where(old).limit(batch_rows)
    statement = table.delete().where(sa.tuple_(*key).in_(doomed))
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = (await conn.execute(statement)).rowcount
        total += deleted
        if deleted < batch_rows:
            return total
