"""The signal journal: what became of each webhook post, kept from the router's `SignalJournaled`.

One row per journal entry. A signal has its decision (routed or skipped), any
number of duplicates after it, and the gateway's refusals of posts that never
became a signal. What happened after the decision is not copied here: it is
read from the ledger's own tables by the intent the router derived (the
preflight answer, the position opened or closed by that intent, and its
orders, whose client ids are the intent's, egis_common.ids.client_order_id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.contracts import SignalJournaled, SignalOutcome
from egis_common.ids import OrderPurpose, client_order_id
from ledger import repository as repo
from ledger.domain import Position, PositionStatus

# Journal rows older than this are pruned as entries arrive: the journal answers "what became of my recent
# alerts", and positions keep their own history.
RETENTION = timedelta(days=30)
PRUNE_ROWS = 1_000

signal_journal = sa.Table(
    "signal_journal",
    repo.metadata,
    sa.Column("entry_id", sa.Uuid, primary_key=True),
    sa.Column("signal_id", sa.Uuid),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("outcome", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Column("intent_id", sa.Uuid),
    sa.Column("intent", sa.Text),
    sa.Column("action", sa.Text),
    sa.Column("symbol", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True)),
    sa.Column("recorded_at", sa.DateTime(timezone=True)),
)


async def record(conn: AsyncConnection, entries: Sequence[SignalJournaled]) -> None:
    """Keep the entries (a redelivered one is already there), and prune a slice of the oldest."""
    if entries:
        rows = [_row(entry) for entry in entries]
        await conn.execute(insert(signal_journal).on_conflict_do_nothing(), rows)
    doomed = (
        sa.select(signal_journal.c.entry_id)
        .where(signal_journal.c.recorded_at < sa.func.now() - RETENTION)
        .limit(PRUNE_ROWS)
    )
    await conn.execute(signal_journal.delete().where(signal_journal.c.entry_id.in_(doomed)))


def _row(entry: SignalJournaled) -> dict[str, Any]:
    return {
        "entry_id": entry.message_id,
        "signal_id": entry.signal_id,
        "bot_id": entry.bot_id,
        "outcome": entry.outcome.value,
        "reason": entry.reason,
        "detail": entry.detail,
        "intent_id": entry.intent_id,
        "intent": entry.intent.value if entry.intent else None,
        "action": entry.action.value if entry.action else None,
        "symbol": entry.symbol,
        "received_at": entry.received_at,
    }


async def entries_of_signal(conn: AsyncConnection, signal_id: UUID) -> list[sa.Row]:
    query = sa.select(signal_journal).where(signal_journal.c.signal_id == signal_id)
    return list((await conn.execute(query.order_by(signal_journal.c.received_at, signal_journal.c.recorded_at))).all())


async def recent_of_bot(conn: AsyncConnection, bot_id: UUID, limit: int = 20) -> list[sa.Row]:
    """The bot's latest journal entries, newest first."""
    query = (
        sa.select(signal_journal)
        .where(signal_journal.c.bot_id == bot_id)
        .order_by(signal_journal.c.received_at.desc(), signal_journal.c.recorded_at.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


@dataclass(frozen=True)
class Order:
    purpose: str  # entry | take_profit | stop_loss
    client_order_id: str
    exchange_order_id: str | None
    status: str  # filled | pending | failed (entry); placed (take profit, stop loss)


@dataclass(frozen=True)
class Fate:
    """A signal's whole story: its entries, and after a routing, the intent's answer, orders and position."""

    signal_id: UUID
    bot_id: UUID | None
    status: str  # accepted (routed or skipped once) | duplicate (only duplicates known) | rejected
    decision: sa.Row | None  # the routed or skipped entry
    entries: list[sa.Row]
    preflight: sa.Row | None = None
    position: Position | None = None
    orders: list[Order] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return sum(entry.outcome == SignalOutcome.DUPLICATE.value for entry in self.entries)


async def fate_of(conn: AsyncConnection, signal_id: UUID) -> Fate | None:
    """None when the journal has no entry of this signal (never sent, refused before it had an id, or pruned)."""
    entries = await entries_of_signal(conn, signal_id)
    if not entries:
        return None
    decision = next(
        (e for e in entries if e.outcome in (SignalOutcome.ROUTED.value, SignalOutcome.SKIPPED.value)), None
    )
    bot_id = next((e.bot_id for e in entries if e.bot_id is not None), None)
    outcomes = {e.outcome for e in entries}
    status = "accepted" if decision else ("duplicate" if SignalOutcome.DUPLICATE.value in outcomes else "rejected")
    if decision is None or decision.intent_id is None:
        return Fate(signal_id, bot_id, status, decision, entries)
    intent_id = decision.intent_id
    preflight = (
        await conn.execute(sa.select(repo.preflight_answers).where(repo.preflight_answers.c.intent_id == intent_id))
    ).first()
    position = await _position_of_intent(conn, intent_id)
    return Fate(signal_id, bot_id, status, decision, entries, preflight, position, _orders(intent_id, position))


async def _position_of_intent(conn: AsyncConnection, intent_id: UUID) -> Position | None:
    positions = repo.positions
    query = sa.select(positions).where(
        sa.or_(positions.c.open_intent_id == intent_id, positions.c.close_intent_id == intent_id)
    )
    row = (await conn.execute(query)).first()
    return repo._to_position(row) if row is not None else None


def _orders(intent_id: UUID, position: Position | None) -> list[Order]:
    """The intent's orders as the ledger knows them: the entry (market) order, and an open's protective ones."""
    if position is None:
        return []
    opening = position.open_intent_id == intent_id
    exchange_order_id = position.open_exchange_order_id if opening else position.close_exchange_order_id
    if exchange_order_id:
        status = "filled"
    elif opening and position.status is PositionStatus.FAILED:
        status = "failed"
    elif not opening and position.close_intent_id != intent_id:
        status = "failed"
    else:
        status = "pending"
    orders = [Order("entry", client_order_id(intent_id, OrderPurpose.ENTRY), exchange_order_id, status)]
    if opening:
        for purpose, algo_id in (("take_profit", position.tp_order_id), ("stop_loss", position.sl_order_id)):
            if algo_id:
                orders.append(Order(purpose, algo_id, None, "placed"))
    return orders
