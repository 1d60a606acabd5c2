"""The management use cases, one function each, called by the API (`http`) and the console alike.

Each write runs in one `uow` transaction with its `BotSnapshot` in the outbox and
its audit row, so a change made from the console is the same change, in the same
trail, as one made through the API. Who may do what is decided here and in
`access`, never by what a page chose to show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.logs import get_logger
from egis_common.runtime import Runtime
from ledger import audit, auth, bots, domain
from ledger import repository as repo
from ledger.adapters.access import AdminOnly, OwnerNotAllowed, Refused
from ledger.auth import Principal

log = get_logger(__name__)


async def owned(conn: AsyncConnection, caller: Principal, bot_id: UUID, *, for_update: bool = False) -> sa.Row:
    row = await bots.get_live_bot(conn, bot_id, for_update=for_update)
    if not caller.may_manage(row.owner_id):
        raise bots.BotNotFound(f"no bot {bot_id}")  # the same answer as a missing bot, so ids do not leak
    return row


async def create_bot(
    runtime: Runtime, caller: Principal, owner_id: UUID | None, spec: bots.NewBot
) -> tuple[sa.Row, str]:
    """The bot and its webhook secret, which the caller shows once."""
    if owner_id not in (None, caller.owner_id) and caller.role is not auth.Role.ADMIN:
        raise OwnerNotAllowed("a user token creates bots for its own owner only")
    async with runtime.uow.begin() as conn:
        row, secret = await bots.create_bot(conn, runtime.outbox, owner_id or caller.owner_id, spec)
        await audit.record(conn, caller.actor, audit.Action.BOT_CREATE, bot_id=row.bot_id, after=row)
    log.info("bot_created", bot_id=str(row.bot_id), caller=str(caller.token_id))
    return row, secret


async def edit_bot(runtime: Runtime, caller: Principal, bot_id: UUID, changes: dict[str, Any]) -> sa.Row:
    async with runtime.uow.begin() as conn:
        before = await owned(conn, caller, bot_id, for_update=True)
        row = await bots.edit_bot(conn, runtime.outbox, bot_id, changes)
        await audit.record(conn, caller.actor, audit.bot_edit_action(changes), bot_id=bot_id, before=before, after=row)
    log.info("bot_edited", bot_id=str(bot_id), fields=sorted(changes), caller=str(caller.token_id))
    return row


async def delete_bot(runtime: Runtime, caller: Principal, bot_id: UUID) -> sa.Row:
    async with runtime.uow.begin() as conn:
        before = await owned(conn, caller, bot_id, for_update=True)
        row = await bots.delete_bot(conn, runtime.outbox, bot_id)
        await audit.record(conn, caller.actor, audit.Action.BOT_DELETE, bot_id=bot_id, before=before, after=row)
    log.info("bot_deleted", bot_id=str(bot_id), caller=str(caller.token_id))
    return row


class TokenNotFound(Refused):
    code = "token_not_found"


class InvalidTokenRequest(Refused):
    code = "invalid_token_request"


async def create_token(
    runtime: Runtime, caller: Principal, role: auth.Role, name: str, owner_id: UUID | None, expires_in: str | None
) -> tuple[sa.Row, str]:
    """The new token's row and its secret, to be shown once; audited as made by `caller` (an admin).

    A viewer reads an existing owner's bots, so it names that owner; a user or an admin without one starts a
    new owner, as `egis-ledger-admin create-token` does."""
    if caller.role is not auth.Role.ADMIN:
        raise AdminOnly("an admin token is required")
    if role is auth.Role.VIEWER and owner_id is None:
        raise InvalidTokenRequest("a viewer token reads an owner's bots: give that owner's owner_id")
    try:
        expires_at = auth.expiry(expires_in, datetime.now(UTC)) if expires_in else None
    except auth.InvalidExpiry as error:
        raise InvalidTokenRequest(f"expires_in: {error}") from None
    async with runtime.engine.begin() as conn:
        issued = await auth.create_token(
            conn, role, owner_id or uuid4(), name, expires_at=expires_at, actor=caller.actor
        )
        row = await auth.token_row(conn, issued.token_id)
    assert row is not None  # inserted in this transaction
    log.info("token_created", token_id=str(issued.token_id), role=role.value, caller=str(caller.token_id))
    return row, issued.token


async def revoke_token(runtime: Runtime, caller: Principal, token_id: UUID) -> tuple[sa.Row, bool]:
    """The token as it is now, and whether this call revoked it (a revoked one stays as it was, unaudited)."""
    if caller.role is not auth.Role.ADMIN:
        raise AdminOnly("an admin token is required")
    async with runtime.engine.begin() as conn:
        if await auth.token_row(conn, token_id) is None:
            raise TokenNotFound(f"no token {token_id}")
        revoked = await auth.revoke_token(conn, token_id, actor=caller.actor)
        row = await auth.token_row(conn, token_id)
    assert row is not None  # tokens are revoked, never deleted
    if revoked:
        log.info("token_revoked", token_id=str(token_id), caller=str(caller.token_id))
    return row, revoked


async def budgets_and_open_counts(conn: AsyncConnection, rows: list[sa.Row]) -> dict[UUID, tuple[domain.Budget, int]]:
    """Each bot's budget, by the one budget function, and its count of open (and closing) positions."""
    active = await repo.active_positions_of(conn, [row.bot_id for row in rows])
    return {
        row.bot_id: (
            domain.compute_budget(row.initial_budget_usd, active[row.bot_id]),
            sum(p.status is not domain.PositionStatus.OPENING for p in active[row.bot_id]),
        )
        for row in rows
    }
