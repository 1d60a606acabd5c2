"""Pending orders, from the executor's executions: recorded when pending, looked up until settled, settled once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from reconciler.adapters.repository import metadata
from reconciler.domain import AUTO, Decision, PendingOrder, Resolution, recorded

pending_orders = sa.Table(
    "pending_orders",
    metadata,
    *(sa.Column(name, sa.Uuid, primary_key=name == "intent_id") for name in ("intent_id", "bot_id", "position_id")),
    *(
        sa.Column(name, sa.Text)
        for name in (
            "intent",
            "symbol",
            "client_order_id",
            "exchange",
            "exchange_account",
            "cause",
            "resolution",
            "resolved_by",
        )
    ),
    sa.Column("pending_since", sa.DateTime(timezone=True)),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("evidence", JSONB),
    sa.Column("attempts", sa.Integer),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("last_lookup", JSONB),
    sa.Column("escalated_at", sa.DateTime(timezone=True)),
    sa.Column("not_after", sa.DateTime(timezone=True)),
)
FIELDS = list(PendingOrder.__dataclass_fields__)
ORDER_COLUMNS = [pending_orders.c[name] for name in FIELDS]
# What an OrderPendingReconciliation says; the rest is the look-ups' bookkeeping.
MESSAGE_FIELDS = [name for name in FIELDS if name not in ("pending_since", "attempts", "last_lookup")]
EXECUTOR = "executor"  # resolved_by of the executor's own late report


async def record_executions(conn: AsyncConnection, executions: Sequence[c.Message]) -> int:
    """A pending order is recorded once; a fill or rejection the executor got later settles it."""
    changed = 0
    for execution in executions:
        if isinstance(execution, c.OrderPendingReconciliation):
            row = {name: getattr(execution, name) for name in MESSAGE_FIELDS}
            row |= {
                "intent": execution.intent.value,
                "exchange": execution.exchange.value,
                "pending_since": execution.occurred_at,
            }
            result = await conn.execute(_recorded_once(insert(pending_orders).values(**row)))
        elif isinstance(execution, (c.OrderFilled, c.OrderRejected)):
            result = await settle(
                conn,
                execution.intent_id,
                f"settled_by_executor:{execution.type}",
                {"message_id": str(execution.message_id)},
                execution.occurred_at,
                EXECUTOR,
            )
        else:  # ProtectiveOrdersPlaced and the like settle nothing
            continue
        changed += result.rowcount
    return changed


def _recorded_once(new: Any) -> Any:
    """A pending order is recorded once; only a close the venue never got, which the executor sent again
    (same client order id), is pending again with the outcome of that attempt, to be looked up afresh."""
    again = {name: new.excluded[name] for name in ("cause", "pending_since", "position_id", "not_after")}
    again |= {
        "attempts": 0,
        **{
            name: None
            for name in (
                "resolution",
                "resolved_by",
                "resolved_at",
                "evidence",
                "next_attempt_at",
                "last_lookup",
                "escalated_at",
            )
        },
    }
    sent_again = (pending_orders.c.intent == c.IntentKind.CLOSE.value) & (
        pending_orders.c.resolution == Resolution.NOT_FOUND_AFTER_WINDOW.value
    )
    return new.on_conflict_do_update(index_elements=[pending_orders.c.intent_id], set_=again, where=sent_again)


async def settle(
    conn: AsyncConnection, intent_id: UUID, resolution: str, evidence: dict[str, Any], at: datetime, resolved_by: str
) -> Any:
    """Only an unsettled order is settled: the first resolution stands."""
    return await conn.execute(
        pending_orders.update()
        .where(
            pending_orders.c.intent_id == intent_id,
            pending_orders.c.resolved_at.is_(None),
        )
        .values(resolution=resolution, evidence=evidence, resolved_at=at, resolved_by=resolved_by)
    )


async def settle_decided(
    conn: AsyncConnection, order: PendingOrder, decision: Decision, resolved_by: str, at: datetime
) -> list[c.Message]:
    """Settle an order on a definitive answer, unless something settled it meanwhile.

    Returns what goes out with the settlement, in the caller's transaction: the ledger's command and the
    executor's record of it; nothing when the answer settles nothing or the order was settled already.
    """
    if not decision.settles:
        return []
    result = await settle(conn, order.intent_id, decision.resolution.value, decision.evidence, at, resolved_by)
    if result.rowcount != 1:
        return []
    return [m for m in (decision.command, recorded(order, decision, resolved_by, at)) if m is not None]


async def unresolved(conn: AsyncConnection, bot_id: UUID | None = None) -> list[PendingOrder]:
    """Unsettled pending orders, oldest first. Not locked: `settle` settles an order once, whoever comes first."""
    query = (
        sa.select(*ORDER_COLUMNS).where(pending_orders.c.resolved_at.is_(None)).order_by(pending_orders.c.pending_since)
    )
    if bot_id is not None:
        query = query.where(pending_orders.c.bot_id == bot_id)
    return [PendingOrder(*row) for row in (await conn.execute(query)).all()]


async def claim_due(
    conn: AsyncConnection, now: datetime, limit: int, next_attempt: Callable[[PendingOrder, datetime], datetime]
) -> list[PendingOrder]:
    """Up to `limit` unsettled orders due for a look-up, each with its next attempt pushed out (`next_attempt`).

    Claimed before the venue is asked, in a transaction of its own: another reconciler skips what this one
    holds, and after the commit neither asks about these orders again until their wait has passed.
    """
    due = sa.or_(pending_orders.c.next_attempt_at.is_(None), pending_orders.c.next_attempt_at <= now)
    query = (
        sa.select(*ORDER_COLUMNS)
        .where(pending_orders.c.resolved_at.is_(None), due)
        .order_by(pending_orders.c.next_attempt_at.nulls_first(), pending_orders.c.pending_since)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    orders = [PendingOrder(*row) for row in (await conn.execute(query)).all()]
    if orders:
        attempted = [replace(o, attempts=o.attempts + 1) for o in orders]
        await conn.execute(
            pending_orders.update()
            .where(pending_orders.c.intent_id == sa.bindparam("id"))
            .values(attempts=sa.bindparam("n"), next_attempt_at=sa.bindparam("next")),
            [{"id": o.intent_id, "n": o.attempts, "next": next_attempt(o, now)} for o in attempted],
        )
        return attempted
    return []


async def note_lookups(conn: AsyncConnection, decisions: Sequence[tuple[PendingOrder, Decision]]) -> None:
    """What the venue said about orders it did not settle, for the escalation and the drift report."""
    rows = [
        {"id": order.intent_id, "lookup": {"resolution": decision.resolution.value, **decision.evidence}}
        for order, decision in decisions
    ]
    if rows:
        await conn.execute(
            pending_orders.update()
            .where(
                pending_orders.c.intent_id == sa.bindparam("id"),
                pending_orders.c.resolved_at.is_(None),
            )
            .values(last_lookup=sa.bindparam("lookup")),
            rows,
        )


async def escalate(conn: AsyncConnection, pending_before: datetime, now: datetime) -> list[PendingOrder]:
    """Unsettled orders pending since before `pending_before` and not escalated yet: marked, once, and returned."""
    marked = (
        pending_orders.update()
        .where(
            pending_orders.c.resolved_at.is_(None),
            pending_orders.c.escalated_at.is_(None),
            pending_orders.c.pending_since < pending_before,
        )
        .values(escalated_at=now)
        .returning(*ORDER_COLUMNS)
    )
    return [PendingOrder(*row) for row in (await conn.execute(marked)).all()]


async def unresolved_since(conn: AsyncConnection) -> list[datetime]:
    """When each unsettled order went pending (from the index of unsettled orders alone)."""
    query = sa.select(pending_orders.c.pending_since).where(pending_orders.c.resolved_at.is_(None))
    return list((await conn.execute(query)).scalars().all())


async def resolved_automatically(
    conn: AsyncConnection, bot_id: UUID | None, since: datetime, limit: int
) -> list[dict[str, Any]]:
    """The periodic job's latest settlements since `since`, newest first, at most `limit`."""
    query = (
        sa.select(
            pending_orders.c.intent_id,
            pending_orders.c.bot_id,
            pending_orders.c.resolution,
            pending_orders.c.resolved_at,
            pending_orders.c.attempts,
            pending_orders.c.evidence,
        )
        .where(pending_orders.c.resolved_by == AUTO, pending_orders.c.resolved_at >= since)
        .order_by(pending_orders.c.resolved_at.desc())
        .limit(limit)
    )
    if bot_id is not None:
        query = query.where(pending_orders.c.bot_id == bot_id)
    return [
        {
            "intent_id": str(row.intent_id),
            "bot_id": str(row.bot_id),
            "resolution": row.resolution,
            "resolved_at": row.resolved_at.isoformat(),
            "attempts": row.attempts,
            "evidence": row.evidence,
        }
        for row in (await conn.execute(query)).all()
    ]
