"""SQL on the executor's own bookkeeping: intents, pending reconciliations, stop orders.

Rows in, domain objects out; no decisions here. (The paper venue's tables
live in `egis_venues.paper.tables`: they are the venue's, not ours.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.bulk import any_of, by_column, insert_many, update_many
from egis_common.contracts import ExchangeAlgoOrderFact, ExchangeName, IntentKind, Side
from egis_common.outbox import Outbox
from egis_venues.port import StopRef
from executor.domain import (
    ALGO_ENDED,
    IN_FLIGHT,
    Decision,
    Intent,
    IntentStatus,
    PendingRecord,
    ResolutionRecord,
)

metadata = sa.MetaData(schema="executor")
_FIELDS = [f.name for f in fields(Intent)]
_ENUMS = {"kind": IntentKind, "side": Side, "exchange": ExchangeName, "status": IntentStatus}
_DECIMALS = {
    "requested_size_usd",
    "take_profit_price",
    "stop_loss_price",
    "take_profit_pct",
    "stop_loss_pct",
    "order_qty",
    "executed_qty",
    "avg_price",
    "fee_usd",
    "realised_pnl_usd",
}


def _column(name: str) -> sa.Column:
    if name in _DECIMALS:
        return sa.Column(name, sa.Numeric(asdecimal=True))
    if name in ("intent_id", "signal_id", "bot_id", "position_id"):
        return sa.Column(name, sa.Uuid, primary_key=name == "intent_id")
    if name in ("filled_at", "first_sent_at", "resend_at", "not_after"):
        return sa.Column(name, sa.DateTime(timezone=True))
    if name == "send_attempts":
        return sa.Column(name, sa.Integer)
    return sa.Column(name, sa.Text)


intents = sa.Table(
    "intents",
    metadata,
    *(_column(name) for name in _FIELDS),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    # When the ledger was last asked again for the reservation; not a state change, so updated_at stays.
    sa.Column("reservation_sent_at", sa.DateTime(timezone=True)),
)
pending = sa.Table(
    "pending_reconciliations",
    metadata,
    sa.Column("intent_id", sa.Uuid, primary_key=True),
    sa.Column("client_order_id", sa.Text),
    sa.Column("cause", sa.Text),
    sa.Column("intent", JSONB),
    sa.Column("exchange_response", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("resolution", sa.Text),
    sa.Column("resolved_by", sa.Text),
    sa.Column("resolution_evidence", JSONB),
)
stop_orders = sa.Table(
    "stop_orders",
    metadata,
    sa.Column("client_algo_id", sa.Text, primary_key=True),
    sa.Column("intent_id", sa.Uuid),
    *(sa.Column(name, sa.Text) for name in ("purpose", "kind", "side", "status", "algo_id", "exchange_code", "detail")),
    sa.Column("trigger_price", sa.Numeric(asdecimal=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


def _row(intent: Intent) -> dict[str, Any]:
    row = {name: getattr(intent, name) for name in _FIELDS}
    row.update({name: getattr(intent, name).value if getattr(intent, name) is not None else None for name in _ENUMS})
    return row


def _intent(row: sa.Row) -> Intent:
    values = {name: getattr(row, name) for name in _FIELDS}
    values.update({name: enum(values[name]) if values[name] is not None else None for name, enum in _ENUMS.items()})
    return Intent(**values)


_INSERT_NEW = insert_many(intents, _FIELDS, "ON CONFLICT DO NOTHING RETURNING intent_id")


async def insert_new(conn: AsyncConnection, new: Sequence[Intent]) -> set[UUID]:
    """Insert intents not seen before; returns the ids inserted now (one row per intent, ever)."""
    if not new:
        return set()
    return set((await conn.execute(_INSERT_NEW, by_column([_row(i) for i in new], _FIELDS))).scalars())


async def load(conn: AsyncConnection, intent_ids: Iterable[UUID], *, lock: bool = False) -> dict[UUID, Intent]:
    query = sa.select(intents).where(any_of(intents.c.intent_id, sorted(set(intent_ids)))).order_by(intents.c.intent_id)
    rows = (await conn.execute(query.with_for_update() if lock else query)).all()
    return {row.intent_id: _intent(row) for row in rows}


_UPDATE = update_many(intents, _FIELDS, ", updated_at = now()")
assert _FIELDS[0] == "intent_id"


async def save(conn: AsyncConnection, changed: Iterable[Intent]) -> None:
    """Every field of each changed intent, in one statement; one changed twice is written as it ended."""
    last = {intent.intent_id: intent for intent in changed}
    if last:
        await conn.execute(_UPDATE, by_column([_row(intent) for intent in last.values()], _FIELDS))


async def symbols_with_recent_orders(
    conn: AsyncConnection, exchange: ExchangeName, account: str, since: datetime
) -> set[str]:
    """Symbols of an account where an order of ours may have traded since `since`.

    A user data stream that starts again knows nothing of what it saw before; these (and the symbols of
    `unfinished_stops`) are the symbols its REST catch-up must look at even when nothing is open there
    now (a stop that closed the position while no stream listened).
    """
    query = (
        sa.select(intents.c.symbol)
        .distinct()
        .where(_of_account(exchange, account), intents.c.client_order_id.is_not(None), intents.c.updated_at >= since)
    )
    return set((await conn.execute(query)).scalars())


async def unfinished_stops(conn: AsyncConnection, exchange: ExchangeName, account: str) -> list[StopRef]:
    """The account's stop orders not known to have ended on the venue: placing, placed, or unknown."""
    query = _unfinished_stops(exchange, account).order_by(stop_orders.c.client_algo_id)
    return [StopRef(row.client_algo_id, row.algo_id, row.symbol) for row in (await conn.execute(query)).all()]


async def stops_finished(conn: AsyncConnection, facts: Iterable[Any]) -> None:
    """Our stops whose algo order these facts say has ended (FINISHED, CANCELED, ...) are `finished`."""
    ended = {
        f.client_algo_id: f.status for f in facts if isinstance(f, ExchangeAlgoOrderFact) and f.status in ALGO_ENDED
    }
    if ended:
        await conn.execute(_STOPS_FINISHED, {"ids": list(ended), "statuses": list(ended.values())})


_UNFINISHED = ("placing", "placed", "unknown")
_STOPS_FINISHED = sa.text(
    "UPDATE executor.stop_orders AS s SET status = 'finished', detail = f.status, updated_at = now() "
    "FROM unnest(CAST(:ids AS TEXT[]), CAST(:statuses AS TEXT[])) AS f(client_algo_id, status) "
    f"WHERE s.client_algo_id = f.client_algo_id AND s.status IN ({', '.join(repr(s) for s in _UNFINISHED)})"
)


def _of_account(exchange: ExchangeName, account: str) -> sa.ColumnElement[bool]:
    return (intents.c.exchange == exchange.value) & (intents.c.exchange_account == account)


def _unfinished_stops(exchange: ExchangeName, account: str) -> sa.Select:
    return (
        sa.select(stop_orders.c.client_algo_id, stop_orders.c.algo_id, intents.c.symbol)
        .join(intents, stop_orders.c.intent_id == intents.c.intent_id)
        .where(_of_account(exchange, account), stop_orders.c.status.in_(_UNFINISHED))
    )


async def stale_submissions(conn: AsyncConnection, older_than_seconds: float) -> list[Intent]:
    """Intents `submitting` for longer than any exchange call may take, locked (skipping any in use)."""
    query = (
        sa.select(intents)
        .where(
            intents.c.status == IntentStatus.SUBMITTING.value,
            intents.c.updated_at < _ago(older_than_seconds),
        )
        .order_by(intents.c.intent_id)
        .limit(500)
        .with_for_update(skip_locked=True)
    )
    return [_intent(row) for row in (await conn.execute(query)).all()]


async def reservations_due_again(conn: AsyncConnection, older_than_seconds: float, limit: int) -> list[Intent]:
    """At most `limit` intents `preflight_requested` whose reservation was last asked for (or first, when they
    were recorded) more than `older_than_seconds` ago, longest waiting first; marked as asked now.

    Rows in use elsewhere are skipped: the answer being handled right now needs no second question.
    """
    asked = sa.func.coalesce(intents.c.reservation_sent_at, intents.c.updated_at)
    due = (
        sa.select(intents.c.intent_id)
        .where(intents.c.status == IntentStatus.PREFLIGHT_REQUESTED.value, asked < _ago(older_than_seconds))
        .order_by(asked, intents.c.intent_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    marked = (
        intents.update()
        .where(intents.c.intent_id.in_(due.scalar_subquery()))
        .values(reservation_sent_at=sa.func.now())
        .returning(*(intents.c[name] for name in _FIELDS))
    )
    return sorted((_intent(row) for row in (await conn.execute(marked)).all()), key=lambda i: i.intent_id)


async def resends_due(conn: AsyncConnection, limit: int) -> list[Intent]:
    """At most `limit` intents `resend_due` whose time has come, longest due first, locked; rows another
    transaction holds are skipped (another executor is sending them)."""
    query = (
        sa.select(intents)
        .where(intents.c.status == IntentStatus.RESEND_DUE.value, intents.c.resend_at <= sa.func.now())
        .order_by(intents.c.resend_at, intents.c.intent_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_intent(row) for row in (await conn.execute(query)).all()]


def _ago(seconds: float) -> sa.ColumnElement:
    return sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


async def persist(conn: AsyncConnection, outbox: Outbox, made: Sequence[Decision]) -> None:
    """The new intent states, pending records and outgoing messages of some decisions, in the caller's transaction."""
    await save(conn, [d.intent for d in made if d.intent is not None])
    await insert_pending(conn, [(d.pending, d.intent) for d in made if d.pending is not None])
    await record_resolutions(conn, [d.resolved for d in made if d.resolved is not None])
    await outbox.add(conn, *(m for d in made for m in d.messages))


async def insert_pending(conn: AsyncConnection, records: Iterable[tuple[PendingRecord, Intent]]) -> None:
    """One pending record per intent. A resolved one belongs to an earlier attempt of a close sent again (the
    venue never got it): this attempt's unknown outcome opens it again, to be resolved like any other."""
    rows = [
        {
            "intent_id": record.intent_id,
            "client_order_id": record.client_order_id,
            "cause": record.cause,
            "intent": json.loads(json.dumps(_row(intent), default=str)),
            "exchange_response": record.exchange_response,
        }
        for record, intent in records
    ]
    if rows:
        new = insert(pending)
        reopened = {name: new.excluded[name] for name in ("cause", "intent", "exchange_response")}
        reopened |= {"created_at": sa.func.now(), **{name: None for name in _RESOLUTION}}
        await conn.execute(
            new.on_conflict_do_update(
                index_elements=[pending.c.intent_id], set_=reopened, where=pending.c.resolved_at.is_not(None)
            ),
            rows,
        )


_RESOLUTION = ("resolved_at", "resolution", "resolved_by", "resolution_evidence")


async def unresolved_pending_of(conn: AsyncConnection, intent_ids: Iterable[UUID]) -> set[UUID]:
    """Which of these intents have a pending record not resolved yet; locked until the caller commits."""
    query = (
        sa.select(pending.c.intent_id)
        .where(any_of(pending.c.intent_id, sorted(set(intent_ids))), pending.c.resolved_at.is_(None))
        .order_by(pending.c.intent_id)
        .with_for_update()
    )
    return set((await conn.execute(query)).scalars())


_RESOLVE = pending.update().where(pending.c.intent_id == sa.bindparam("b_intent_id"), pending.c.resolved_at.is_(None))


async def record_resolutions(conn: AsyncConnection, records: Sequence[ResolutionRecord]) -> None:
    """Each resolution on its pending record, unless one is there already: the first stands."""
    if records:
        await conn.execute(
            _RESOLVE.values(
                resolution=sa.bindparam("b_resolution"),
                resolved_by=sa.bindparam("b_resolved_by"),
                resolved_at=sa.bindparam("b_resolved_at"),
                resolution_evidence=sa.bindparam("b_evidence"),
            ),
            [
                {
                    "b_intent_id": r.intent_id,
                    "b_resolution": r.resolution,
                    "b_resolved_by": r.resolved_by,
                    "b_resolved_at": r.resolved_at,
                    "b_evidence": r.evidence,
                }
                for r in records
            ],
        )


async def in_flight(conn: AsyncConnection) -> dict[IntentStatus, tuple[int, float]]:
    """For each intermediate state holding any intent: how many, and how long ago the oldest entered it (s)."""
    query = (
        sa.select(
            intents.c.status,
            sa.func.count(),
            sa.func.extract("epoch", sa.func.now() - sa.func.min(intents.c.updated_at)),
        )
        .where(intents.c.status.in_([s.value for s in IN_FLIGHT]))
        .group_by(intents.c.status)
    )
    return {IntentStatus(status): (count, max(float(age), 0.0)) for status, count, age in await conn.execute(query)}


async def unresolved_pending(conn: AsyncConnection) -> int:
    return await conn.scalar(sa.select(sa.func.count()).select_from(pending).where(pending.c.resolved_at.is_(None)))


async def insert_stops(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(stop_orders).on_conflict_do_nothing(), list(rows))


async def stop_placed(conn: AsyncConnection, client_algo_id: str, **values: Any) -> None:
    """values: status ('placed' | 'rejected' | 'unknown'), algo_id, exchange_code, detail.

    A stop whose algo order already ended (its fact came first: it fired at once) stays `finished`,
    with the venue's word; it only gains its algo id.
    """
    ended = stop_orders.c.status == "finished"
    for kept in ("status", "detail"):
        if kept in values:
            values[kept] = sa.case((ended, stop_orders.c[kept]), else_=sa.literal(values[kept], sa.Text))
    await conn.execute(
        stop_orders.update()
        .where(stop_orders.c.client_algo_id == client_algo_id)
        .values(**values, updated_at=sa.func.now())
    )
