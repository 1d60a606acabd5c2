"""`GET /v1/signals/{signal_id}`: what became of a signal, for its sender or its bot's owner.

Readable with an API token (an admin's reads every signal, a user's or a viewer's those of their own
bots) or with the webhook secret of the signal's own bot, so whoever sends TradingView's alerts can ask.
Anything else, including another bot's secret or another owner's token, is the same 404 as an unknown id,
so signal ids do not leak. Its parts: the journal (`ledger.journal`); the intent, orders and position come
from the ledger's own tables by the intent the router derived.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.secrets import verify_token
from ledger import auth, journal
from ledger import repository as repo
from ledger.adapters.access import Refused, Unauthorized, runtime_of
from ledger.adapters.schemas import PositionOut, Problem


class SignalNotFound(Refused):
    code = "signal_not_found"


class EntryOut(BaseModel):
    model_config = {"from_attributes": True}
    outcome: str  # routed | skipped | duplicate | rejected
    reason: str | None
    detail: str
    received_at: datetime


class IntentOut(BaseModel):
    intent_id: UUID
    intent: str | None  # open | close
    preflight: str | None  # reserved | rejected, once the ledger answered
    preflight_reason: str | None


class OrderOut(BaseModel):
    purpose: str  # entry | take_profit | stop_loss
    client_order_id: str
    exchange_order_id: str | None
    status: str  # filled | pending | failed | placed


class SignalFateOut(BaseModel):
    signal_id: UUID
    bot_id: UUID | None
    status: str  # accepted | duplicate (only duplicates journalled) | rejected
    outcome: str | None  # routed | skipped: the router's decision
    reason: str | None  # the skip's reason
    detail: str
    action: str | None
    symbol: str | None
    received_at: datetime | None
    duplicates: int  # posts of this signal after the first, answered or skipped as duplicates
    entries: list[EntryOut]
    intent: IntentOut | None
    orders: list[OrderOut]
    position: PositionOut | None


_bearer = HTTPBearer(auto_error=False, description="an API token, or the webhook secret of the signal's bot")
router = APIRouter(prefix="/v1/signals", tags=["signals"])
NOT_FOUND = {404: {"model": Problem, "description": "no such signal that this token or secret may read"}}


@router.get("/{signal_id}", response_model=SignalFateOut, responses={401: {"model": Problem}, **NOT_FOUND})
async def get_signal(
    signal_id: UUID,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> SignalFateOut:
    if credentials is None:
        raise Unauthorized("a valid bearer token, or the bot's webhook secret, is required")
    async with runtime_of(request).engine.begin() as conn:  # begin: a token's use may be noted
        fate = await journal.fate_of(conn, signal_id)
        if fate is None or not await _may_read(conn, credentials.credentials, fate.bot_id):
            raise SignalNotFound(f"no signal {signal_id}")
    return _out(fate)


async def _may_read(conn: AsyncConnection, credential: str, bot_id: UUID | None) -> bool:
    principal = await auth.authenticate(conn, credential)
    bot = await repo.bot_row(conn, bot_id) if bot_id is not None else None
    if principal is not None:
        return principal.role is auth.Role.ADMIN or (bot is not None and principal.may_manage(bot.owner_id))
    return bot is not None and verify_token(credential, bot.webhook_secret_hash)


def _out(fate: journal.Fate) -> SignalFateOut:
    decision = fate.decision
    first = decision or fate.entries[0]
    intent = None
    if decision is not None and decision.intent_id is not None:
        intent = IntentOut(
            intent_id=decision.intent_id,
            intent=decision.intent,
            preflight=fate.preflight.outcome if fate.preflight else None,
            preflight_reason=fate.preflight.reason if fate.preflight else None,
        )
    return SignalFateOut(
        signal_id=fate.signal_id,
        bot_id=fate.bot_id,
        status=fate.status,
        outcome=decision.outcome if decision else None,
        reason=first.reason,
        detail=first.detail,
        action=first.action,
        symbol=first.symbol,
        received_at=first.received_at,
        duplicates=fate.duplicates,
        entries=[EntryOut.model_validate(entry) for entry in fate.entries],
        intent=intent,
        orders=[OrderOut(**vars(order)) for order in fate.orders],
        position=PositionOut.model_validate(fate.position) if fate.position else None,
    )
