"""API tokens: created and revoked from the command line, verified on every HTTP request.

A token is shown once, when it is created; the database keeps an unsalted
SHA-256 `lookup_key` (an index to find the row) and the salted `token_hash`
that is actually verified. `admin` manages every bot; `user` only the bots
whose owner_id is its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.secrets import hash_token, lookup_key, new_token, verify_token
from ledger.repository import api_tokens

TOKEN_PREFIX = "egt_"


class Role(str, Enum):
    ADMIN = "admin"
    USER = "user"


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    token_id: UUID
    role: Role
    owner_id: UUID

    def may_manage(self, bot_owner_id: UUID) -> bool:
        return self.role is Role.ADMIN or bot_owner_id == self.owner_id

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


async def create_token(conn: AsyncConnection, role: Role, owner_id: UUID, name: str) -> IssuedToken:
    token = new_token(TOKEN_PREFIX)
    issued = IssuedToken(uuid4(), role, owner_id, name, token)
    await conn.execute(api_tokens.insert().values(
        token_id=issued.token_id, lookup_key=lookup_key(token), token_hash=hash_token(token),
        role=role.value, owner_id=owner_id, name=name,
    ))
    return issued


async def revoke_token(conn: AsyncConnection, token_id: UUID) -> bool:
    """True when a live token was revoked now; revoking twice changes nothing."""
    statement = api_tokens.update().where(
        api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None)
    ).values(revoked_at=datetime.now(UTC))
    return (await conn.execute(statement)).rowcount == 1


async def authenticate(conn: AsyncConnection, token: str) -> Principal | None:
    """The principal of a live token, or None for an unknown, wrong or revoked one."""
    query = sa.select(api_tokens).where(api_tokens.c.lookup_key == lookup_key(token))
    row = (await conn.execute(query)).first()
    if row is None or row.revoked_at is not None or not verify_token(token, row.token_hash):
        return None
    return Principal(row.token_id, Role(row.role), row.owner_id)
