"""Pending orders, from the executor's executions: recorded when pending, settled once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from egis_common import contracts as c
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciler.repository import metadata
from reconciler.resolution import PendingOrder

pending_orders = sa.Table(
    "pending_orders", metadata,
    *(sa.Column(name, sa.Uuid, primary_key=name == "intent_id") for name in ("intent_id", "bot_id", "position_id")),
    *(sa.Column(name, sa.Text) for name in ("intent", "symbol", "client_order_id", "exchange", "exchange_account",
                                            "cause", "resolution")),
    sa.Column("pending_since", sa.DateTime(timezone=True)), sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("evidence", JSONB),
)
FIELDS = list(PendingOrder.__dataclass_fields__)


async def record_executions(conn: AsyncConnection, executions: Sequence[c.Message]) -> int:
    """A pending order is recorded once; a fill or rejection the executor got later settles it."""
    changed = 0
    for execution in executions:
        if isinstance(execution, c.OrderPendingReconciliation):
            row = {name: getattr(execution, name) for name in FIELDS if name != "pending_since"}
            row |= {"intent": execution.intent.value, "exchange": execution.exchange.value,
                    "pending_since": execution.occurred_at}
            result = await conn.execute(insert(pending_orders).values(**row).on_conflict_do_nothing())
        elif isinstance(execution, (c.OrderFilled, c.OrderRejected)):
            result = await settle(conn, execution.intent_id, f"settled_by_executor:{execution.type}",
                                  {"message_id": str(execution.message_id)}, execution.occurred_at)
        else:  # ProtectiveOrdersPlaced and the like settle nothing
            continue
        changed += result.rowcount
    return changed


async def settle(conn: AsyncConnection, intent_id: UUID, resolution: str, evidence: dict[str, Any],
                 at: datetime) -> Any:
    """Only an unsettled order is settled: the first resolution stands."""
    return await conn.execute(pending_orders.update().where(
        pending_orders.c.intent_id == intent_id, pending_orders.c.resolved_at.is_(None),
    ).values(resolution=resolution, evidence=evidence, resolved_at=at))


async def unresolved(conn: AsyncConnection, bot_id: UUID | None = None) -> list[PendingOrder]:
    """Unsettled pending orders, oldest first. Not locked: `settle` settles an order once, whoever comes first."""
    query = sa.select(pending_orders).where(pending_orders.c.resolved_at.is_(None)).order_by(
        pending_orders.c.pending_since)
    if bot_id is not None:
        query = query.where(pending_orders.c.bot_id == bot_id)
    return [PendingOrder(**{name: getattr(row, name) for name in FIELDS}) for row in (await conn.execute(query)).all()]
