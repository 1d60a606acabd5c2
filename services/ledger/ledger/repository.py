"""SQL on the ledger schema. Rows in, domain objects out; no decisions here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.contracts import Side
from ledger.domain import ACTIVE, Bot, Position, PositionStatus

SCHEMA = "ledger"
metadata = sa.MetaData(schema=SCHEMA)

bots = sa.Table(
    "bots", metadata,
    sa.Column("bot_id", sa.Uuid, primary_key=True),
    sa.Column("owner_id", sa.Uuid),
    sa.Column("name", sa.Text),
    sa.Column("strategy", sa.Text),
    sa.Column("signal_key", sa.Text),
    sa.Column("webhook_secret_hash", sa.Text),
    sa.Column("exchange", sa.Text),
    sa.Column("exchange_account", sa.Text),
    sa.Column("initial_budget_usd", sa.Numeric(asdecimal=True)),
    sa.Column("default_order_size_usd", sa.Numeric(asdecimal=True)),
    sa.Column("paused", sa.Boolean),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    sa.Column("version", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)

_POSITION_FIELDS = [f.name for f in fields(Position)]
_DECIMAL_FIELDS = {"requested_size_usd", "size_usd", "executed_qty", "avg_entry_price", "close_price",
                   "realised_pnl_usd", "fee_usd"}
_TIME_FIELDS = {"opened_at", "closed_at"}
_UUID_FIELDS = {"position_id", "bot_id", "open_intent_id", "close_intent_id"}


def _position_column(name: str) -> sa.Column:
    if name in _DECIMAL_FIELDS:
        return sa.Column(name, sa.Numeric(asdecimal=True))
    if name in _TIME_FIELDS:
        return sa.Column(name, sa.DateTime(timezone=True))
    if name in _UUID_FIELDS:
        return sa.Column(name, sa.Uuid, primary_key=name == "position_id")
    return sa.Column(name, sa.Text)


positions = sa.Table(
    "positions", metadata,
    *(_position_column(name) for name in _POSITION_FIELDS),
    sa.Column("tp_order_id", sa.Text),
    sa.Column("sl_order_id", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)

preflight_answers = sa.Table(
    "preflight_answers", metadata,
    sa.Column("intent_id", sa.Uuid, primary_key=True),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("outcome", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("answer", sa.LargeBinary),
)

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("token_id", sa.Uuid, primary_key=True),
    sa.Column("lookup_key", sa.Text),
    sa.Column("token_hash", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("owner_id", sa.Uuid),
    sa.Column("name", sa.Text),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)


# --- positions --------------------------------------------------------------------


def _to_position(row: sa.Row) -> Position:
    values = {name: getattr(row, name) for name in _POSITION_FIELDS}
    values["side"] = Side(values["side"])
    values["status"] = PositionStatus(values["status"])
    return Position(**values)


def _position_row(position: Position) -> dict[str, Any]:
    row = {name: getattr(position, name) for name in _POSITION_FIELDS}  # shallow: asdict deep-copies
    row["side"] = position.side.value
    row["status"] = position.status.value
    return row


async def active_positions(conn: AsyncConnection, bot_id: UUID) -> list[Position]:
    query = sa.select(positions).where(
        positions.c.bot_id == bot_id, positions.c.status.in_([s.value for s in ACTIVE])
    )
    return [_to_position(row) for row in (await conn.execute(query)).all()]


async def account_symbol_holder(
    conn: AsyncConnection, exchange: str, account: str, symbol: str, bot_id: UUID
) -> UUID | None:
    query = sa.select(positions.c.bot_id).where(
        positions.c.exchange == exchange, positions.c.exchange_account == account,
        positions.c.symbol == symbol, positions.c.bot_id != bot_id,
        positions.c.status.in_([s.value for s in ACTIVE]),
    )
    return await conn.scalar(query.limit(1))


async def position(conn: AsyncConnection, position_id: UUID, *, for_update: bool = True) -> Position | None:
    query = sa.select(positions).where(positions.c.position_id == position_id)
    row = (await conn.execute(query.with_for_update() if for_update else query)).first()
    return _to_position(row) if row else None


async def position_holding_intent(conn: AsyncConnection, intent_id: UUID) -> Position | None:
    """The position an intent opened or is closing, locked."""
    query = sa.select(positions).where(
        sa.or_(positions.c.open_intent_id == intent_id, positions.c.close_intent_id == intent_id)
    )
    row = (await conn.execute(query.with_for_update())).first()
    return _to_position(row) if row else None


async def positions_of_bot(conn: AsyncConnection, bot_id: UUID) -> list[Position]:
    query = sa.select(positions).where(positions.c.bot_id == bot_id).order_by(positions.c.opened_at.nulls_last())
    return [_to_position(row) for row in (await conn.execute(query)).all()]


async def insert_positions(conn: AsyncConnection, new: Sequence[Position]) -> None:
    if new:
        await conn.execute(positions.insert(), [_position_row(p) for p in new])


async def update_positions(conn: AsyncConnection, changed: Sequence[Position]) -> None:
    for p in changed:
        row = _position_row(p)
        row.pop("position_id")
        await conn.execute(
            positions.update().where(positions.c.position_id == p.position_id).values(**row, updated_at=sa.func.now())
        )


async def active_positions_of(conn: AsyncConnection, bot_ids: Sequence[UUID]) -> dict[UUID, list[Position]]:
    query = sa.select(positions).where(
        positions.c.bot_id.in_(bot_ids), positions.c.status.in_([s.value for s in ACTIVE])
    )
    found: dict[UUID, list[Position]] = {bot_id: [] for bot_id in bot_ids}
    for row in (await conn.execute(query)).all():
        found[row.bot_id].append(_to_position(row))
    return found


async def active_holders(conn: AsyncConnection, accounts: set[tuple[str, str]]) -> dict[tuple[str, str, str], UUID]:
    """(exchange, account, symbol) -> the bot holding an active position there."""
    if not accounts:
        return {}
    query = sa.select(positions.c.exchange, positions.c.exchange_account, positions.c.symbol, positions.c.bot_id).where(
        sa.tuple_(positions.c.exchange, positions.c.exchange_account).in_(list(accounts)),
        positions.c.status.in_([s.value for s in ACTIVE]),
    )
    return {(r.exchange, r.exchange_account, r.symbol): r.bot_id for r in (await conn.execute(query)).all()}


# --- bots -------------------------------------------------------------------------


def _to_bot(row: sa.Row) -> Bot:
    return Bot(
        bot_id=row.bot_id, initial_budget_usd=row.initial_budget_usd, exchange=row.exchange,
        exchange_account=row.exchange_account, paused=row.paused, deleted=row.deleted_at is not None,
    )


async def lock_bot(conn: AsyncConnection, bot_id: UUID) -> Bot | None:
    """The bot, locked: every change to one bot's positions and budget is serialised here."""
    row = (await conn.execute(sa.select(bots).where(bots.c.bot_id == bot_id).with_for_update())).first()
    return _to_bot(row) if row else None


async def lock_bots(conn: AsyncConnection, bot_ids: Sequence[UUID]) -> dict[UUID, Bot]:
    """Several bots, locked in id order so two batches never deadlock on each other."""
    query = sa.select(bots).where(bots.c.bot_id.in_(sorted(bot_ids))).order_by(bots.c.bot_id).with_for_update()
    return {row.bot_id: _to_bot(row) for row in (await conn.execute(query)).all()}


async def bot_row(conn: AsyncConnection, bot_id: UUID, *, for_update: bool = False) -> sa.Row | None:
    query = sa.select(bots).where(bots.c.bot_id == bot_id)
    return (await conn.execute(query.with_for_update() if for_update else query)).first()


async def initial_budget(conn: AsyncConnection, bot_id: UUID) -> Any:
    return await conn.scalar(sa.select(bots.c.initial_budget_usd).where(bots.c.bot_id == bot_id))


async def live_bots_with_active_positions(conn: AsyncConnection) -> list[tuple[Bot, list[Position]]]:
    live = {row.bot_id: (_to_bot(row), []) for row in (await conn.execute(
        sa.select(bots).where(bots.c.deleted_at.is_(None)))).all()}
    for row in (await conn.execute(sa.select(positions).where(
            positions.c.status.in_([s.value for s in ACTIVE]), positions.c.bot_id.in_(list(live))))).all():
        live[row.bot_id][1].append(_to_position(row))
    return list(live.values())


# --- preflight answers ----------------------------------------------------------


async def stored_answers(conn: AsyncConnection, intent_ids: Sequence[UUID]) -> dict[UUID, bytes]:
    query = sa.select(preflight_answers.c.intent_id, preflight_answers.c.answer).where(
        preflight_answers.c.intent_id.in_(intent_ids)
    )
    return {row.intent_id: row.answer for row in (await conn.execute(query)).all()}


async def store_answers(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: intent_id, bot_id, outcome ('reserved' | 'rejected'), reason, answer (the encoded message)."""
    if rows:
        await conn.execute(insert(preflight_answers), list(rows))
