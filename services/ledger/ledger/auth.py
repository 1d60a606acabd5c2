"""API tokens: created and revoked from the command line (the first one) or by an admin through the API,
verified on every HTTP request.

A token is shown once, when it is created; the database keeps an unsalted
SHA-256 `lookup_key` (an index to find the row) and the salted `token_hash`
that is actually verified. `admin` manages every bot; `user` only the bots
whose owner_id is its own; `viewer` reads what a `user` reads and changes
nothing. A token may expire: from then on it is refused as a revoked one is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.secrets import hash_token, lookup_key, new_token, verify_token
from ledger import audit
from ledger.audit import CLI, Actor
from ledger.repository import api_tokens, console_sessions

TOKEN_PREFIX = "egt_"
# `last_used_at` is written at most this often per token, so reading does not mean a write per request.
LAST_USED_EVERY = timedelta(minutes=1)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Role(str, Enum):
    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    token_id: UUID
    role: Role
    owner_id: UUID
    name: str

    def may_manage(self, bot_owner_id: UUID) -> bool:
        """May see this owner's bot (and change it, unless read-only)."""
        return self.role is Role.ADMIN or bot_owner_id == self.owner_id

    @property
    def read_only(self) -> bool:
        return self.role is Role.VIEWER

    @property
    def actor(self) -> Actor:
        return Actor(self.token_id, self.name, self.role.value)

    @property
    def owner_scope(self) -> UUID | None:
        """The owner whose bots this principal sees; None means every bot."""
        return None if self.role is Role.ADMIN else self.owner_id


@dataclass(frozen=True)
class IssuedToken:
    token_id: UUID
    role: Role
    owner_id: UUID
    name: str
    token: str  # the only copy outside the caller's screen: never log it
    expires_at: datetime | None = None


class InvalidExpiry(ValueError):
    pass


def expiry(text: str, now: datetime) -> datetime:
    """`30d`, `12h`, `90m`, `2w` from now, or an ISO 8601 time (UTC unless it says otherwise)."""
    if match := re.fullmatch(r"(\d+)([mhdw])", text.strip()):
        at = now + timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        try:
            at = datetime.fromisoformat(text.strip())
        except ValueError as error:
            raise InvalidExpiry(f"not a duration (30d, 12h, 90m, 2w) nor an ISO time: {text!r}") from error
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if at <= now:
        raise InvalidExpiry(f"already past: {at.isoformat()}")
    return at


def is_live(row: sa.Row, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


async def create_token(
    conn: AsyncConnection,
    role: Role,
    owner_id: UUID,
    name: str,
    *,
    expires_at: datetime | None = None,
    actor: Actor = CLI,
) -> IssuedToken:
    """`actor`: who asked; the default is the command line, the one way in without a token."""
    token = new_token(TOKEN_PREFIX)
    issued = IssuedToken(uuid4(), role, owner_id, name, token, expires_at)
    await conn.execute(
        api_tokens.insert().values(
            token_id=issued.token_id,
            lookup_key=lookup_key(token),
            token_hash=hash_token(token),
            role=role.value,
            owner_id=owner_id,
            name=name,
            expires_at=expires_at,
        )
    )
    after = await token_row(conn, issued.token_id)
    await audit.record(conn, actor, audit.Action.TOKEN_CREATE, token_id=issued.token_id, after=after)
    return issued


async def revoke_token(conn: AsyncConnection, token_id: UUID, *, actor: Actor = CLI) -> bool:
    """True when a live token was revoked now; revoking twice changes nothing (and is not audited)."""
    before = await token_row(conn, token_id, for_update=True)
    statement = (
        api_tokens.update()
        .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    if (await conn.execute(statement)).rowcount != 1:
        return False
    # The console's sessions of the token end with it (each request checks the token as well).
    await conn.execute(console_sessions.delete().where(console_sessions.c.token_id == token_id))
    await audit.record(
        conn, actor, audit.Action.TOKEN_REVOKE, token_id=token_id, before=before, after=await token_row(conn, token_id)
    )
    return True


async def authenticate(conn: AsyncConnection, token: str) -> Principal | None:
    """The principal of a live token, or None for an unknown, wrong, revoked or expired one.

    Notes the token's use when the last note is older than LAST_USED_EVERY: commit `conn` after.
    """
    query = sa.select(api_tokens).where(api_tokens.c.lookup_key == lookup_key(token))
    row = (await conn.execute(query)).first()
    now = datetime.now(UTC)
    if row is None or not is_live(row, now) or not verify_token(token, row.token_hash):
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        await _note_use(conn, row.token_id, now)
    return Principal(row.token_id, Role(row.role), row.owner_id, row.name)


async def _note_use(conn: AsyncConnection, token_id: UUID, now: datetime) -> None:
    # The condition again in SQL: of concurrent first requests in a minute, one writes.
    await conn.execute(
        api_tokens.update()
        .where(
            api_tokens.c.token_id == token_id,
            sa.or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at <= now - LAST_USED_EVERY),
        )
        .values(last_used_at=now)
    )


# Every read of tokens leaves out what would let someone use or test one.
_LISTED = [c for c in api_tokens.c if c.name not in ("token_hash", "lookup_key")]


async def token_row(conn: AsyncConnection, token_id: UUID, *, for_update: bool = False) -> sa.Row | None:
    query = sa.select(*_LISTED).where(api_tokens.c.token_id == token_id)
    return (await conn.execute(query.with_for_update() if for_update else query)).first()


async def list_tokens(conn: AsyncConnection) -> list[sa.Row]:
    """Every token, revoked and expired ones too, oldest first."""
    return list((await conn.execute(sa.select(*_LISTED).order_by(api_tokens.c.created_at))).all())
