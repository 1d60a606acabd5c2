"""SQL on the ledger schema. Rows in, domain objects out; no decisions here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.bulk import any_of, array, by_column, insert_many, update_many
from egis_common.contracts import Side
from ledger.domain import ACTIVE, Bot, Position, PositionStatus

SCHEMA = "ledger"
metadata = sa.MetaData(schema=SCHEMA)

bots = sa.Table(
    "bots",
    metadata,
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
    sa.Column("take_profit_pct", sa.Numeric(asdecimal=True)),
    sa.Column("stop_loss_pct", sa.Numeric(asdecimal=True)),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    sa.Column("version", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)

_POSITION_FIELDS = [f.name for f in fields(Position)]
_DECIMAL_FIELDS = {
    "requested_size_usd",
    "size_usd",
    "executed_qty",
    "avg_entry_price",
    "close_price",
    "realised_pnl_usd",
    "fee_usd",
}
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
    "positions",
    metadata,
    *(_position_column(name) for name in _POSITION_FIELDS),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)

preflight_answers = sa.Table(
    "preflight_answers",
    metadata,
    sa.Column("intent_id", sa.Uuid, primary_key=True),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("outcome", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("answer", sa.LargeBinary),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.Uuid, primary_key=True),
    sa.Column("lookup_key", sa.Text),
    sa.Column("token_hash", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("owner_id", sa.Uuid),
    sa.Column("name", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("actor_token_id", sa.Uuid),
    sa.Column("actor_name", sa.Text),
    sa.Column("actor_role", sa.Text),
    sa.Column("action", sa.Text),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("token_id", sa.Uuid),
    sa.Column("before", JSONB),
    sa.Column("after", JSONB),
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("session_key", sa.Text, primary_key=True),
    sa.Column("token_id", sa.Uuid),
    sa.Column("csrf_token", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
)


# --- positions --------------------------------------------------------------------


_SIDES = {side.value: side for side in Side}
_STATUSES = {status.value: status for status in PositionStatus}
_SIDE_AT, _STATUS_AT = _POSITION_FIELDS.index("side"), _POSITION_FIELDS.index("status")
assert list(positions.c.keys())[: len(_POSITION_FIELDS)] == _POSITION_FIELDS
assert not hasattr(Position, "__post_init__") and not hasattr(Position, "__slots__")


def _to_position(row: sa.Row) -> Position:
    """A row of `select(positions)`: its first columns are the position's fields, in order.

    Batches and the gauges map thousands of rows, so this skips the frozen
    dataclass's __init__ (a guarded setattr per field, three times the cost)
    and fills every field directly; Position has no __post_init__ to miss.
    """
    position = object.__new__(Position)
    position.__dict__.update(zip(_POSITION_FIELDS, row, strict=False))
    position.__dict__["side"] = _SIDES[row[_SIDE_AT]]
    position.__dict__["status"] = _STATUSES[row[_STATUS_AT]]
    return position


def _position_row(position: Position) -> dict[str, Any]:
    row = {name: getattr(position, name) for name in _POSITION_FIELDS}  # shallow: asdict deep-copies
    row["side"] = position.side.value
    row["status"] = position.status.value
    return row


async def active_positions(conn: AsyncConnection, bot_id: UUID) -> list[Position]:
    query = sa.select(positions).where(positions.c.bot_id == bot_id, positions.c.status.in_([s.value for s in ACTIVE]))
    return [_to_position(row) for row in (await conn.execute(query)).all()]


async def account_symbol_holder(
    conn: AsyncConnection, exchange: str, account: str, symbol: str, bot_id: UUID
) -> UUID | None:
    query = sa.select(positions.c.bot_id).where(
        positions.c.exchange == exchange,
        positions.c.exchange_account == account,
        positions.c.symbol == symbol,
        positions.c.bot_id != bot_id,
        positions.c.status.in_([s.value for s in ACTIVE]),
    )
    return await conn.scalar(query.limit(1))


async def position(conn: AsyncConnection, position_id: UUID, *, for_update: bool = True) -> Position | None:
    query = sa.select(positions).where(positions.c.position_id == position_id)
    row = (await conn.execute(query.with_for_update() if for_update else query)).first()
    return _to_position(row) if row else None


async def lock_positions(conn: AsyncConnection, position_ids: Sequence[UUID]) -> list[Position]:
    """The positions that exist among `position_ids`, locked in id order."""
    query = sa.select(positions).where(any_of(positions.c.position_id, position_ids))
    return [
        _to_position(row)
        for row in (await conn.execute(query.order_by(positions.c.position_id).with_for_update())).all()
    ]


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


_INSERT_POSITIONS = insert_many(positions, _POSITION_FIELDS)
_UPDATE_POSITIONS = update_many(positions, _POSITION_FIELDS, ", updated_at = now()")
assert _POSITION_FIELDS[0] == "position_id"


async def insert_positions(conn: AsyncConnection, new: Sequence[Position]) -> None:
    if new:
        await conn.execute(_INSERT_POSITIONS, by_column([_position_row(p) for p in new], _POSITION_FIELDS))


async def update_positions(conn: AsyncConnection, changed: Sequence[Position]) -> None:
    """Every field of each changed position; one changed twice is written once, as it ended."""
    last = {p.position_id: p for p in changed}
    if last:
        await conn.execute(_UPDATE_POSITIONS, by_column([_position_row(p) for p in last.values()], _POSITION_FIELDS))


async def active_positions_of(conn: AsyncConnection, bot_ids: Sequence[UUID]) -> dict[UUID, list[Position]]:
    query = sa.select(positions).where(
        any_of(positions.c.bot_id, bot_ids), positions.c.status.in_([s.value for s in ACTIVE])
    )
    found: dict[UUID, list[Position]] = {bot_id: [] for bot_id in bot_ids}
    for row in (await conn.execute(query)).all():
        found[row.bot_id].append(_to_position(row))
    return found


async def active_holders(
    conn: AsyncConnection, accounts: set[tuple[str, str]], except_bots: Sequence[UUID] = ()
) -> dict[tuple[str, str, str], UUID]:
    """(exchange, account, symbol) -> the bot holding an active position there, leaving out `except_bots`."""
    if not accounts:
        return {}
    # Both lists as arrays in subqueries: Postgres hashes them, where a list of values
    # is compared with every row one by one (a batch brings hundreds of each).
    exchanges, names = zip(*accounts, strict=True)
    wanted = sa.func.unnest(array(positions.c.exchange, exchanges), array(positions.c.exchange_account, names))
    wanted = wanted.table_valued("exchange", "exchange_account").render_derived()
    left_out = sa.select(sa.func.unnest(array(positions.c.bot_id, except_bots)))
    query = sa.select(positions.c.exchange, positions.c.exchange_account, positions.c.symbol, positions.c.bot_id).where(
        sa.tuple_(positions.c.exchange, positions.c.exchange_account).in_(
            sa.select(wanted.c.exchange, wanted.c.exchange_account)
        ),
        positions.c.status.in_([s.value for s in ACTIVE]),
        positions.c.bot_id.not_in(left_out),
    )
    return {(r.exchange, r.exchange_account, r.symbol): r.bot_id for r in (await conn.execute(query)).all()}


# --- bots -------------------------------------------------------------------------


def _to_bot(row: sa.Row) -> Bot:
    return Bot(
        bot_id=row.bot_id,
        initial_budget_usd=row.initial_budget_usd,
        exchange=row.exchange,
        exchange_account=row.exchange_account,
        paused=row.paused,
        deleted=row.deleted_at is not None,
    )


async def lock_bot(conn: AsyncConnection, bot_id: UUID) -> Bot | None:
    """The bot, locked: every change to one bot's positions and budget is serialised here."""
    row = (await conn.execute(sa.select(bots).where(bots.c.bot_id == bot_id).with_for_update())).first()
    return _to_bot(row) if row else None


async def lock_bots(conn: AsyncConnection, bot_ids: Sequence[UUID]) -> dict[UUID, Bot]:
    """Several bots, locked in id order so two batches never deadlock on each other."""
    query = sa.select(bots).where(any_of(bots.c.bot_id, bot_ids)).order_by(bots.c.bot_id).with_for_update()
    return {row.bot_id: _to_bot(row) for row in (await conn.execute(query)).all()}


async def bot_row(conn: AsyncConnection, bot_id: UUID, *, for_update: bool = False) -> sa.Row | None:
    query = sa.select(bots).where(bots.c.bot_id == bot_id)
    return (await conn.execute(query.with_for_update() if for_update else query)).first()


async def initial_budget(conn: AsyncConnection, bot_id: UUID) -> Any:
    return await conn.scalar(sa.select(bots.c.initial_budget_usd).where(bots.c.bot_id == bot_id))


async def live_bots_with_active_positions(conn: AsyncConnection) -> list[tuple[Bot, list[Position]]]:
    live = {
        row.bot_id: (_to_bot(row), [])
        for row in (await conn.execute(sa.select(bots).where(bots.c.deleted_at.is_(None)))).all()
    }
    for row in (
        await conn.execute(
            sa.select(positions).where(
                positions.c.status.in_([s.value for s in ACTIVE]), any_of(positions.c.bot_id, live)
            )
        )
    ).all():
        live[row.bot_id][1].append(_to_position(row))
    return list(live.values())


# --- preflight answers ----------------------------------------------------------


async def stored_answers(conn: AsyncConnection, intent_ids: Sequence[UUID]) -> dict[UUID, bytes]:
    query = sa.select(preflight_answers.c.intent_id, preflight_answers.c.answer).where(
        any_of(preflight_answers.c.intent_id, intent_ids)
    )
    return {row.intent_id: row.answer for row in (await conn.execute(query)).all()}


_ANSWER_COLUMNS = ["intent_id", "bot_id", "outcome", "reason", "answer"]
_INSERT_ANSWERS = insert_many(preflight_answers, _ANSWER_COLUMNS)


async def store_answers(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: intent_id, bot_id, outcome ('reserved' | 'rejected'), reason, answer (the encoded message)."""
    if rows:
        await conn.execute(_INSERT_ANSWERS, by_column(rows, _ANSWER_COLUMNS))


# --- reservations waiting behind an order in flight ------------------------------

waiting_reservations = sa.Table(
    "waiting_reservations",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("intent_id", sa.Uuid),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("symbol", sa.Text),
    sa.Column("command", sa.LargeBinary),
    sa.Column("waiting_since", sa.DateTime(timezone=True)),
)


async def waiting_of_bots(conn: AsyncConnection, bot_ids: Sequence[UUID]) -> list[sa.Row]:
    """(intent_id, bot_id, symbol) of every reservation waiting for these bots."""
    w = waiting_reservations
    query = sa.select(w.c.intent_id, w.c.bot_id, w.c.symbol).where(any_of(w.c.bot_id, bot_ids))
    return list((await conn.execute(query)).all())


async def lock_waiting(conn: AsyncConnection, keys: Sequence[tuple[UUID, str]]) -> list[sa.Row]:
    """The reservations waiting on these (bot, symbol) keys, locked, in arrival order."""
    w = waiting_reservations
    query = (
        sa.select(w.c.intent_id, w.c.bot_id, w.c.symbol, w.c.command)
        .where(sa.tuple_(w.c.bot_id, w.c.symbol).in_(list(keys)))
        .order_by(w.c.seq)
        .with_for_update()
    )
    return list((await conn.execute(query)).all())


async def lock_waiting_since(conn: AsyncConnection, older_than_seconds: float, limit: int) -> list[sa.Row]:
    """Reservations waiting longer than `older_than_seconds`, oldest first; ones another transaction holds are
    skipped."""
    w = waiting_reservations
    age = sa.func.extract("epoch", sa.func.now() - w.c.waiting_since)
    query = (
        sa.select(w.c.intent_id, w.c.command, age.label("waited_seconds"))
        .where(
            w.c.waiting_since < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
        )
        .order_by(w.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await conn.execute(query)).all())


async def start_waiting(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """rows: intent_id, bot_id, symbol, command (the encoded ReserveBudget); an intent already waiting is kept."""
    if rows:
        await conn.execute(
            insert(waiting_reservations).values(list(rows)).on_conflict_do_nothing(index_elements=["intent_id"])
        )


async def stop_waiting(conn: AsyncConnection, intent_ids: Sequence[UUID]) -> None:
    if intent_ids:
        await conn.execute(waiting_reservations.delete().where(any_of(waiting_reservations.c.intent_id, intent_ids)))


async def waiting_gauge(conn: AsyncConnection) -> tuple[int, float]:
    """How many reservations wait, and the oldest one's age in seconds (0 when none)."""
    w = waiting_reservations
    row = (
        await conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.extract("epoch", sa.func.now() - sa.func.min(w.c.waiting_since)), 0),
            )
        )
    ).one()
    return int(row[0]), float(row[1])


# --- orders pending reconciliation ----------------------------------------------

pending_reconciliations = sa.Table(
    "pending_reconciliations",
    metadata,
    sa.Column("intent_id", sa.Uuid, primary_key=True),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("symbol", sa.Text),
    sa.Column("intent", sa.Text),
    sa.Column("position_id", sa.Uuid),
    sa.Column("client_order_id", sa.Text),
    sa.Column("exchange", sa.Text),
    sa.Column("exchange_account", sa.Text),
    sa.Column("cause", sa.Text),
    sa.Column("pending_since", sa.DateTime(timezone=True)),
    sa.Column("settled_at", sa.DateTime(timezone=True)),
    sa.Column("settled_by", sa.Text),
    sa.Column("settled_detail", sa.Text),
)


async def record_pending(conn: AsyncConnection, events: Sequence[c.OrderPendingReconciliation]) -> None:
    """One row per intent: an intent already recorded (pending or settled) is kept as it is."""
    if events:
        rows = [
            {
                "intent_id": e.intent_id,
                "bot_id": e.bot_id,
                "symbol": e.symbol,
                "intent": e.intent.value,
                "position_id": e.position_id,
                "client_order_id": e.client_order_id,
                "exchange": e.exchange.value,
                "exchange_account": e.exchange_account,
                "cause": e.cause,
                "pending_since": e.occurred_at,
            }
            for e in events
        ]
        await conn.execute(insert(pending_reconciliations).on_conflict_do_nothing(), rows)


def _settled_detail(message: c.Message) -> str:
    if isinstance(message, c.ReleaseReservation):
        return message.reason
    if isinstance(message, c.OrderRejected):
        return f"{message.exchange_code}: {message.reason}"
    if isinstance(message, (c.OrderFilled, c.ApplyFoundFill)):
        return f"exchange order {message.exchange_order_id}"
    return ""


_SETTLE_FIELDS = ("intent_id", "settled_by", "settled_detail")
_SETTLE_PENDING = update_many(
    pending_reconciliations, _SETTLE_FIELDS, ", settled_at = now()", only="t.settled_at IS NULL"
)


async def settle_pending(conn: AsyncConnection, messages: Sequence[c.Message]) -> None:
    """The intents of these messages (see domain.settles_reservation) are no longer pending; settled once.

    One statement per batch, since nearly every batch settles nothing that is pending; an intent
    settled twice in one batch keeps the first message's account, as two batches would.
    """
    first: dict[UUID, dict[str, object]] = {}
    for m in messages:
        first.setdefault(
            m.intent_id, {"intent_id": m.intent_id, "settled_by": m.type, "settled_detail": _settled_detail(m)}
        )
    if first:
        await conn.execute(_SETTLE_PENDING, by_column(list(first.values()), _SETTLE_FIELDS))


async def unsettled_of_bot(conn: AsyncConnection, bot_id: UUID) -> list[sa.Row]:
    """The bot's orders still pending reconciliation, oldest first."""
    p = pending_reconciliations
    query = sa.select(p).where(p.c.bot_id == bot_id, p.c.settled_at.is_(None)).order_by(p.c.pending_since)
    return list((await conn.execute(query)).all())
