"""What only an admin reads or does: the API tokens (listed without their secrets, created, revoked) and the
audit trail. A token's secret is in the answer to its creation only; each creation and revocation is audited
with the admin's token as its actor."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from ledger import audit, auth
from ledger.adapters import management
from ledger.adapters.access import Admin, runtime_of
from ledger.adapters.schemas import AuditEntryOut, Problem, TokenCreate, TokenCreated, TokenOut, TokenRevoked

router = APIRouter(prefix="/v1", tags=["admin"])


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(caller: Admin, request: Request) -> list[TokenOut]:
    """Every token, revoked and expired ones too, oldest first."""
    async with runtime_of(request).engine.connect() as conn:
        return [TokenOut.model_validate(row) for row in await auth.list_tokens(conn)]


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses={
        422: {"model": Problem, "description": "invalid_token_request: a viewer without owner_id, a bad expiry"}
    },
)
async def create_token(body: TokenCreate, caller: Admin, request: Request) -> TokenCreated:
    """A new token; `token` is shown in this answer only."""
    row, token = await management.create_token(
        runtime_of(request), caller, body.role, body.name, body.owner_id, body.expires_in
    )
    return TokenCreated.model_validate({**row._mapping, "token": token})


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenRevoked,
    responses={404: {"model": Problem, "description": "token_not_found"}},
)
async def revoke_token(token_id: UUID, caller: Admin, request: Request) -> TokenRevoked:
    """Refused from now on, and its console sessions end; revoking a revoked token changes nothing."""
    row, revoked_now = await management.revoke_token(runtime_of(request), caller, token_id)
    return TokenRevoked.model_validate({**row._mapping, "revoked_now": revoked_now})


@router.get("/audit", response_model=list[AuditEntryOut])
async def list_audit(
    caller: Admin,
    request: Request,
    bot_id: Annotated[UUID | None, Query(description="only this bot's changes")] = None,
    before_id: Annotated[int | None, Query(ge=1, description="the last audit_id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = 50,
) -> list[AuditEntryOut]:
    """Newest first. The next page: `before_id` = the last `audit_id` of this one."""
    async with runtime_of(request).engine.connect() as conn:
        rows = await audit.entries(conn, bot_id=bot_id, before_id=before_id, limit=limit)
    return [AuditEntryOut.model_validate(row) for row in rows]
