"""The audit trail: who changed what through the management API or the command line, and when.

One row per write, in the write's own transaction, so a change and its row
commit or roll back together. `before` and `after` are the bot's (or the
token's) state as JSON, never a secret: no webhook secret hash, no token hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.repository import audit_log


class Action(str, Enum):
    """What a change was; the database's audit_log_action_known lists the same."""

    BOT_CREATE = "bot.create"
    BOT_UPDATE = "bot.update"
    BOT_PAUSE = "bot.pause"
    BOT_RESUME = "bot.resume"
    BOT_DELETE = "bot.delete"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"


_SECRET_COLUMNS = frozenset({"webhook_secret_hash", "token_hash", "lookup_key"})
MAX_LIMIT = 500


@dataclass(frozen=True)
class Actor:
    """Who made a change: a token (its id, name and role), or the command line, which holds none."""

    token_id: UUID | None
    name: str
    role: str | None


CLI = Actor(None, "cli", None)


def bot_edit_action(changes: dict[str, Any]) -> Action:
    """An edit of `paused` alone is a pause or a resume; anything else is an update."""
    if set(changes) == {"paused"}:
        return Action.BOT_PAUSE if changes["paused"] else Action.BOT_RESUME
    return Action.BOT_UPDATE


# Changed by every write; a description of a change names what the caller changed.
_BOOKKEEPING = frozenset({"version", "updated_at", "last_used_at"})


def describe_change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """`name: old -> new` for each field the change set, for a person reading the trail."""
    if before is None or after is None:
        return "created" if before is None else "removed"
    changed = [key for key in after if key not in _BOOKKEEPING and before.get(key) != after[key]]
    return ", ".join(f"{key}: {before.get(key)} -> {after[key]}" for key in changed) or "no field changed"


def state(row: sa.Row | None) -> dict[str, Any] | None:
    """A bot's or a token's row as JSON, without its secret columns."""
    if row is None:
        return None
    return {key: _json(value) for key, value in row._mapping.items() if key not in _SECRET_COLUMNS}


def _json(value: Any) -> Any:
    if isinstance(value, (UUID, Decimal)):
        return str(value)  # money stays an exact decimal string
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: Action,
    *,
    bot_id: UUID | None = None,
    token_id: UUID | None = None,
    before: sa.Row | None = None,
    after: sa.Row | None = None,
) -> None:
    await conn.execute(
        audit_log.insert().values(
            actor_token_id=actor.token_id,
            actor_name=actor.name,
            actor_role=actor.role,
            action=action.value,
            bot_id=bot_id,
            token_id=token_id,
            before=state(before),
            after=state(after),
        )
    )


async def entries(
    conn: AsyncConnection, *, bot_id: UUID | None = None, before_id: int | None = None, limit: int = 50
) -> list[sa.Row]:
    """Newest first; `before_id` (the last audit_id of a page) gives the next page."""
    query = sa.select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(min(limit, MAX_LIMIT))
    if bot_id is not None:
        query = query.where(audit_log.c.bot_id == bot_id)
    if before_id is not None:
        query = query.where(audit_log.c.audit_id < before_id)
    return list((await conn.execute(query)).all())
