"""Bot management: create, edit, list, soft-delete. Every change publishes a snapshot.

Used by the HTTP API and the command line alike; each function runs in the
caller's transaction and writes the `BotSnapshot` to the outbox in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.contracts import BotSnapshot, ExchangeName
from egis_common.outbox import Outbox
from egis_common.secrets import hash_token, new_token
from ledger import domain
from ledger import repository as repo
from ledger.repository import bots

EDITABLE = frozenset(
    {
        "name",
        "signal_key",
        "exchange",
        "exchange_account",
        "initial_budget_usd",
        "default_order_size_usd",
        "paused",
        "take_profit_pct",
        "stop_loss_pct",
    }
)


class BotError(Exception):
    code = "bot_error"


class BotNotFound(BotError):
    code = "bot_not_found"


class DuplicateSignalKey(BotError):
    code = "duplicate_signal_key"


class BotHasActivePositions(BotError):
    code = "bot_has_active_positions"


@dataclass(frozen=True)
class NewBot:
    name: str
    signal_key: str
    exchange: ExchangeName
    exchange_account: str
    initial_budget_usd: Decimal
    default_order_size_usd: Decimal
    paused: bool = False
    # Percentages from the entry for the stops of every open whose signal names no price; None: no such stop.
    take_profit_pct: Decimal | None = None
    stop_loss_pct: Decimal | None = None


def snapshot(row: sa.Row) -> BotSnapshot:
    return BotSnapshot(
        bot_id=row.bot_id,
        version=row.version,
        owner_id=row.owner_id,
        name=row.name,
        signal_key=row.signal_key,
        webhook_secret_hash=row.webhook_secret_hash,
        exchange=row.exchange,
        exchange_account=row.exchange_account,
        initial_budget_usd=row.initial_budget_usd,
        default_order_size_usd=row.default_order_size_usd,
        paused=row.paused,
        deleted=row.deleted_at is not None,
        take_profit_pct=row.take_profit_pct,
        stop_loss_pct=row.stop_loss_pct,
    )


async def _write(conn: AsyncConnection, outbox: Outbox, statement: sa.Executable) -> sa.Row:
    """Insert or update one bot, translating the live signal_key index into a domain error."""
    try:
        async with conn.begin_nested():
            row = (await conn.execute(statement.returning(*bots.c))).one()
    except IntegrityError as error:
        if "bots_live_signal_key" in str(error.orig):
            raise DuplicateSignalKey("signal_key is already used by a live bot") from error
        raise
    await outbox.add(conn, snapshot(row))
    return row


async def create_bot(conn: AsyncConnection, outbox: Outbox, owner_id: UUID, spec: NewBot) -> tuple[sa.Row, str]:
    """Returns the bot and its webhook secret: shown this once, stored only hashed."""
    secret = new_token("whk_")
    values = {**spec.__dict__, "exchange": spec.exchange.value}
    statement = bots.insert().values(
        bot_id=uuid4(), owner_id=owner_id, strategy="signal_hook", webhook_secret_hash=hash_token(secret), **values
    )
    return await _write(conn, outbox, statement), secret


async def get_live_bot(conn: AsyncConnection, bot_id: UUID, *, for_update: bool = False) -> sa.Row:
    row = await repo.bot_row(conn, bot_id, for_update=for_update)
    if row is None or row.deleted_at is not None:
        raise BotNotFound(f"no bot {bot_id}")
    return row


async def edit_bot(conn: AsyncConnection, outbox: Outbox, bot_id: UUID, changes: dict[str, Any]) -> sa.Row:
    unknown = set(changes) - EDITABLE
    if unknown:
        raise BotError(f"not editable: {sorted(unknown)}")
    await get_live_bot(conn, bot_id, for_update=True)
    if isinstance(changes.get("exchange"), ExchangeName):
        changes = {**changes, "exchange": changes["exchange"].value}
    statement = (
        bots.update()
        .where(bots.c.bot_id == bot_id)
        .values(**changes, version=bots.c.version + 1, updated_at=sa.func.now())
    )
    return await _write(conn, outbox, statement)


async def delete_bot(conn: AsyncConnection, outbox: Outbox, bot_id: UUID) -> sa.Row:
    await get_live_bot(conn, bot_id, for_update=True)  # the same lock preflight takes
    refusal = domain.deletion_refusal(await repo.active_positions(conn, bot_id))
    if refusal:
        raise BotHasActivePositions(refusal)
    statement = (
        bots.update()
        .where(bots.c.bot_id == bot_id)
        .values(deleted_at=datetime.now(UTC), version=bots.c.version + 1, updated_at=sa.func.now())
    )
    return await _write(conn, outbox, statement)


async def list_bots(
    conn: AsyncConnection, owner_id: UUID | None = None, *, include_deleted: bool = False
) -> list[sa.Row]:
    """Live bots, oldest first; deleted ones too when asked (a deleted bot's history stays in the database)."""
    query = sa.select(bots).order_by(bots.c.created_at)
    if not include_deleted:
        query = query.where(bots.c.deleted_at.is_(None))
    if owner_id is not None:
        query = query.where(bots.c.owner_id == owner_id)
    return list((await conn.execute(query)).all())
