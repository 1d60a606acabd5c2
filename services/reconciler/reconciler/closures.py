"""Closures the exchange made on its own: a triggered take-profit or stop-loss, or a liquidation, that filled.

Nobody else reports them (the executor placed the algo order, not the fill),
so as soon as the facts prove one, its backfill goes to the ledger, once.
Closes of our own orders are the executor's to report; when that fails, the
sync-wrong-closed-positions command repairs them from the same evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from egis_common import contracts as c
from egis_common.ids import OrderPurpose
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciler.adapters import read_model
from reconciler.domain import LIQUIDATION_PREFIX, closure, intents_of, made_by_exchange, order_ids_touched
from reconciler.adapters.repository import algo_facts, facts_for, metadata, order_facts

ENTRY_PREFIX = f"eg{OrderPurpose.ENTRY.value}-"
backfills_sent = sa.Table(
    "backfills_sent", metadata,
    sa.Column("position_id", sa.Uuid, primary_key=True), sa.Column("close_exchange_order_id", sa.Text, primary_key=True),
    sa.Column("message_id", sa.Uuid), sa.Column("evidence", sa.JSON),
)


async def exchange_closures(conn: AsyncConnection, new_facts: Sequence[c.Message]) -> list[c.BackfillClosure]:
    """The backfills these facts complete, each recorded as sent; the caller puts them in the outbox."""
    return await backfills_for(conn, await _positions_touched(conn, new_facts))


async def after_ledger_events(conn: AsyncConnection, events: Sequence[c.Message]) -> list[c.BackfillClosure]:
    """A position the ledger opened after the exchange had already closed it: the facts were waiting."""
    opened = {e.position_id for e in events if isinstance(e, c.PositionOpened)}
    return await backfills_for(conn, await read_model.load(conn, position_ids=opened)) if opened else []


async def backfills_for(conn: AsyncConnection, positions: list) -> list[c.BackfillClosure]:
    positions = [p for p in positions if p.status in ("open", "closing", "closed")]
    facts = await facts_for(conn, positions)
    found = [b for b in (closure(p, facts) for p in positions) if isinstance(b, c.BackfillClosure)
             and made_by_exchange(b)]
    return [b for b in found if await _first_time(conn, b)]


async def _positions_touched(conn: AsyncConnection, new_facts: Sequence[c.Message]):
    order_ids = order_ids_touched(new_facts)
    if not order_ids:
        return []
    client_ids = (await conn.execute(sa.select(algo_facts.c.client_algo_id).where(
        algo_facts.c.spawned_order_id.in_(order_ids)).distinct())).scalars().all()
    intents = intents_of([*client_ids, *await _entries_of_liquidated(conn, order_ids)])
    return await read_model.load(conn, open_intents=intents) if intents else []


async def _entries_of_liquidated(conn: AsyncConnection, order_ids: set[str]) -> list[str]:
    """Client ids of our entry orders on the accounts and symbols where these orders liquidated something."""
    columns = (order_facts.c.exchange, order_facts.c.exchange_account, order_facts.c.symbol)
    venue = sa.tuple_(*columns)
    liquidated = sa.select(*columns).where(order_facts.c.exchange_order_id.in_(order_ids),
                                        order_facts.c.client_order_id.startswith(LIQUIDATION_PREFIX))
    entries = sa.select(order_facts.c.client_order_id).where(
        venue.in_(liquidated), order_facts.c.client_order_id.startswith(ENTRY_PREFIX)).distinct()
    return list((await conn.execute(entries)).scalars().all())


async def _first_time(conn: AsyncConnection, backfill: c.BackfillClosure) -> bool:
    statement = insert(backfills_sent).values(
        position_id=backfill.position_id, close_exchange_order_id=backfill.close_exchange_order_id,
        message_id=backfill.message_id, evidence=backfill.evidence,
    ).on_conflict_do_nothing().returning(backfills_sent.c.position_id)
    return (await conn.execute(statement)).first() is not None
