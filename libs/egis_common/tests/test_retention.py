"""Pruning the messaging tables: old published rows and old claims go; unpublished rows never do."""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from egis_common.db import make_engine
from egis_common.retention import prune_messaging

sys.path.insert(0, str(Path(__file__).parent))
from probe import SCHEMA, ProbeSettings, create_schema, metadata  # noqa: E402

pytestmark = pytest.mark.infra
OUTBOX, INBOX = metadata.tables[f"{SCHEMA}.outbox"], metadata.tables[f"{SCHEMA}.inbox"]
FAILURES = metadata.tables[f"{SCHEMA}.consumer_failures"]


@pytest.fixture
async def engine(test_database):
    engine = make_engine(ProbeSettings())
    await create_schema(engine)
    async with engine.begin() as conn:
        await conn.execute(OUTBOX.delete())
        await conn.execute(INBOX.delete())
        await conn.execute(FAILURES.delete())
    yield engine
    await engine.dispose()


def _outbox_row(created_hours_ago: float, published_hours_ago: float | None) -> dict:
    now = sa.func.now()
    return {
        "message_id": uuid.uuid4(),
        "topic": "t",
        "key": None,
        "payload": b"{}",
        "headers": {},
        "created_at": now - timedelta(hours=created_hours_ago),
        "published_at": None if published_hours_ago is None else now - timedelta(hours=published_hours_ago),
    }


async def test_old_published_rows_and_old_claims_are_pruned_and_nothing_else(engine):
    rows = {
        "old published": _outbox_row(100, 99),
        "recent published": _outbox_row(2, 1),
        "old unpublished": _outbox_row(500, None),
        "new unpublished": _outbox_row(0, None),
    }
    claims = {"old": (uuid.uuid4(), 31), "recent": (uuid.uuid4(), 29)}
    failures = {"old": (1, 31), "recent": (2, 29)}  # offset, days since the last failure
    async with engine.begin() as conn:
        for offset, days_ago in failures.values():
            await conn.execute(
                FAILURES.insert().values(
                    topic="t",
                    partition_no=0,
                    record_offset=offset,
                    attempts=1,
                    error="e",
                    last_failed_at=sa.func.now() - timedelta(days=days_ago),
                )
            )
        for row in rows.values():
            await conn.execute(OUTBOX.insert().values(**row))
        for message_id, days_ago in claims.values():
            await conn.execute(
                INBOX.insert().values(
                    consumer="c", message_id=message_id, processed_at=sa.func.now() - timedelta(days=days_ago)
                )
            )

    pruned = await prune_messaging(
        engine, SCHEMA, outbox_keep=timedelta(hours=72), inbox_keep=timedelta(days=30), batch_rows=1
    )  # one row per batch: the loop, not one lucky statement

    assert pruned == {"outbox": 1, "inbox": 1, "consumer_failures": 1}
    async with engine.connect() as conn:
        kept_outbox = set((await conn.execute(sa.select(OUTBOX.c.message_id))).scalars())
        kept_inbox = set((await conn.execute(sa.select(INBOX.c.message_id))).scalars())
        kept_failures = set((await conn.execute(sa.select(FAILURES.c.record_offset))).scalars())
    assert kept_outbox == {
        rows[name]["message_id"] for name in ("recent published", "old unpublished", "new unpublished")
    }
    assert kept_inbox == {claims["recent"][0]}
    assert kept_failures == {failures["recent"][0]}
    assert await prune_messaging(engine, SCHEMA, outbox_keep=timedelta(hours=72), inbox_keep=timedelta(days=30)) == {
        "outbox": 0,
        "inbox": 0,
        "consumer_failures": 0,
    }
