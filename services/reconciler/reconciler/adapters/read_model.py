"""The reconciler's read model of ledger positions, kept from ledger events.

The reconciler never reads the ledger's tables: what it knows of a position is
what the ledger announced. Each event sets only the columns it knows about.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from reconciler.adapters.repository import metadata
from reconciler.domain import PositionView

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("position_id", sa.Uuid, primary_key=True),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("symbol", sa.Text),
    sa.Column("side", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("open_intent_id", sa.Uuid),
    sa.Column("close_intent_id", sa.Uuid),
    sa.Column("executed_qty", sa.Numeric(asdecimal=True)),
    sa.Column("avg_entry_price", sa.Numeric(asdecimal=True)),
    sa.Column("opened_at", sa.DateTime(timezone=True)),
    sa.Column("close_exchange_order_id", sa.Text),
    sa.Column("close_price", sa.Numeric(asdecimal=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("realised_pnl_usd", sa.Numeric(asdecimal=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
VIEW_FIELDS = [f for f in PositionView.__dataclass_fields__]
VIEW_COLUMNS = [positions.c[name] for name in VIEW_FIELDS]  # in the order of PositionView's fields
# The statuses an event may move a position from: a repeated or late event never moves it back.
MOVES_FROM: dict[type, tuple[str, ...]] = {
    c.BudgetReserved: ("open",),  # a close reservation; a repeated open answer changes no status
    c.PositionOpened: ("opening",),
    c.PositionClosed: ("opening", "open", "closing", "closed"),
    c.PositionFailed: ("opening",),
    c.CloseRejected: ("closing",),
    c.PositionReduced: ("closing",),  # a partial close: the rest is open again
}


def changes_for(event: c.Message) -> dict[str, Any] | None:
    """The read-model columns an event sets; None for events that say nothing about a position."""
    if isinstance(event, c.BudgetReserved):
        if event.intent is c.IntentKind.OPEN:
            return {
                "status": "opening",
                "open_intent_id": event.intent_id,
                "symbol": event.symbol,
                "side": event.side.value,
            }
        return {"status": "closing", "close_intent_id": event.intent_id}
    if isinstance(event, c.PositionOpened):
        return {
            "status": "open",
            "symbol": event.symbol,
            "side": event.side.value,
            "executed_qty": event.executed_qty,
            "avg_entry_price": event.avg_entry_price,
            "opened_at": event.opened_at,
        }
    if isinstance(event, c.PositionClosed):
        return {
            "status": "closed",
            "close_exchange_order_id": event.close_exchange_order_id,
            "close_price": event.close_price,
            "closed_at": event.closed_at,
            "realised_pnl_usd": event.realised_pnl_usd,
        }
    if isinstance(event, c.PositionReduced):
        return {"status": "open", "symbol": event.symbol, "executed_qty": event.remaining_qty, "close_intent_id": None}
    if isinstance(event, c.PositionFailed):
        return {"status": "failed"}
    if isinstance(event, c.CloseRejected):
        return {"status": "open"}
    return None


async def apply_events(conn: AsyncConnection, events: Sequence[c.Message]) -> int:
    """Upsert every position an event speaks of, in the events' order; returns how many changed."""
    applied = 0
    for event in events:
        changes = changes_for(event)
        if changes is None:
            continue
        row = {"position_id": event.position_id, "bot_id": event.bot_id, **changes}
        statement = insert(positions).values(**row, updated_at=sa.func.now())
        update = {**changes, "status": _guarded_status(event, changes), "updated_at": sa.func.now()}
        await conn.execute(statement.on_conflict_do_update(index_elements=[positions.c.position_id], set_=update))
        applied += 1
    return applied


async def load(
    conn: AsyncConnection,
    bot_id: UUID | None = None,
    statuses: Sequence[str] = (),
    open_intents: set[UUID] | None = None,
    position_ids: set[UUID] | None = None,
) -> list[PositionView]:
    query = sa.select(*VIEW_COLUMNS).order_by(positions.c.updated_at, positions.c.position_id)
    if position_ids is not None:
        query = query.where(positions.c.position_id.in_(position_ids))
    if open_intents is not None:
        query = query.where(positions.c.open_intent_id.in_(open_intents))
    if bot_id is not None:
        query = query.where(positions.c.bot_id == bot_id)
    if statuses:
        query = query.where(positions.c.status.in_(list(statuses)))
    return [PositionView(*row) for row in await conn.execute(query)]


def _guarded_status(event: c.Message, changes: dict[str, Any]) -> Any:
    current = positions.c.status
    if "status" not in changes:
        return current
    return sa.case((current.in_(MOVES_FROM.get(type(event), ())), changes["status"]), else_=current)
