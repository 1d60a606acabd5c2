"""What only an admin reads: the API tokens (never their secrets) and the audit trail."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from ledger import audit, auth
from ledger.adapters.access import Admin, runtime_of
from ledger.adapters.schemas import AuditEntryOut, TokenOut

router = APIRouter(prefix="/v1", tags=["admin"])


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(caller: Admin, request: Request) -> list[TokenOut]:
    """Every token, revoked and expired ones too, oldest first."""
    async with runtime_of(request).engine.connect() as conn:
        return [TokenOut.model_validate(row) for row in await auth.list_tokens(conn)]


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
