"""Queries on the signal_router schema (the engine's search_path): the durable dedup."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.contracts import OrderIntent, SignalReceived, SignalSkipped

SIGNALS = sa.Table(
    "signals",
    sa.MetaData(),
    sa.Column("dedup_key", sa.Text, primary_key=True),
    sa.Column("signal_id", sa.Uuid),
    sa.Column("signal_key", sa.Text),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("outcome", sa.Text),
    sa.Column("intent_id", sa.Uuid),
    sa.Column("skip_reason", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
)


async def claim_signals(
    conn: AsyncConnection, decided: list[tuple[SignalReceived, OrderIntent | SignalSkipped]]
) -> list[bool]:
    """Record each decision under its signal's dedup key, in one statement.

    True where the key was free; False where an earlier batch, or an earlier
    signal of this batch, already took it.
    """
    first = {}
    for index, (signal, _) in enumerate(decided):
        first.setdefault(signal.dedup_key, index)
    rows = [
        _row(signal, decision) for index, (signal, decision) in enumerate(decided) if first[signal.dedup_key] == index
    ]
    statement = insert(SIGNALS).on_conflict_do_nothing().returning(SIGNALS.c.dedup_key)
    taken = set((await conn.execute(statement, rows)).scalars()) if rows else set()
    return [first[signal.dedup_key] == index and signal.dedup_key in taken for index, (signal, _) in enumerate(decided)]


def _row(signal: SignalReceived, decision: OrderIntent | SignalSkipped) -> dict:
    routed = isinstance(decision, OrderIntent)
    return {
        "dedup_key": signal.dedup_key,
        "signal_id": signal.signal_id,
        "signal_key": signal.signal_key,
        "bot_id": signal.bot_id,
        "outcome": "routed" if routed else "skipped",
        "intent_id": decision.intent_id if routed else None,
        "skip_reason": None if routed else decision.reason.value,
        "received_at": signal.occurred_at,
    }


# Whether a signal with this dedup key was decided: one primary-key read, for the gateway (asyncpg's $1).
IS_DECIDED = f"SELECT true FROM {SIGNALS.name} WHERE {SIGNALS.c.dedup_key.name} = $1"


async def decisions_for(conn: AsyncConnection, signal_key: str) -> list[sa.Row]:
    """What was decided for a key's signals, oldest first (for ops and tests)."""
    statement = sa.select(SIGNALS).where(SIGNALS.c.signal_key == signal_key).order_by(SIGNALS.c.decided_at)
    return list((await conn.execute(statement)).all())


async def prune_signals(conn: AsyncConnection, keep: timedelta, batch_rows: int = 5_000) -> int:
    """Delete up to `batch_rows` dedup rows decided before `now - keep`; returns how many."""
    doomed = sa.select(SIGNALS.c.dedup_key).where(SIGNALS.c.decided_at < sa.func.now() - keep).limit(batch_rows)
    return (await conn.execute(SIGNALS.delete().where(SIGNALS.c.dedup_key.in_(doomed)))).rowcount
