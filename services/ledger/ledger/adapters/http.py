"""The ledger's management API: bots, their budgets and positions, behind bearer tokens.

Every change goes through `adapters.management` (which the web console, in
`adapters.console`, calls too) inside one `uow` transaction, so the
`BotSnapshot` reaches the outbox with it, and so does its audit row. Who may
call what is `adapters.access`; the admins' reads (tokens, audit) are
`adapters.admin_api`. Refusals are `{"reason", "detail"}`: 401 (no valid
token, with `WWW-Authenticate: Bearer`), 404 (no such bot, or another
owner's: the two look the same so bot ids do not leak), 403, 409. Money is a
decimal string both ways; a JSON number is a 422.
"""

from __future__ import annotations

from dataclasses import asdict
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from egis_common.logs import get_logger
from egis_common.runtime import Runtime
from ledger import bots
from ledger import repository as repo
from ledger.adapters import admin_api, console, management, signals_api
from ledger.adapters.access import (
    AdminOnly,
    Caller,
    OwnerNotAllowed,
    ReadOnlyToken,
    Refused,
    Unauthorized,
)
from ledger.adapters.access import runtime_of as _runtime
from ledger.adapters.schemas import (
    BotCreate,
    BotCreated,
    BotEdit,
    BotOut,
    BudgetOut,
    PositionOut,
    Problem,
)
from ledger.flow import build_ledger

log = get_logger(__name__)

STATUS: dict[type[Exception], int] = {
    Unauthorized: 401,
    OwnerNotAllowed: 403,
    ReadOnlyToken: 403,
    AdminOnly: 403,
    bots.BotNotFound: 404,
    signals_api.SignalNotFound: 404,
    bots.DuplicateSignalKey: 409,
    bots.BotHasActivePositions: 409,
    management.TokenNotFound: 404,
}  # any other BotError: 422


_PROBLEM = {"model": Problem}
UNAUTHORIZED = {401: {**_PROBLEM, "description": "no valid token (unknown, revoked or expired: the same answer)"}}
FORBIDDEN = {403: {**_PROBLEM, "description": "read_only_token (a viewer's write), owner_not_allowed or admin_only"}}
router = APIRouter(prefix="/v1/bots", tags=["bots"], responses=UNAUTHORIZED)
_NOT_FOUND = {404: {**_PROBLEM, "description": "no such live bot of yours"}}


def _bot(row: sa.Row) -> BotOut:
    return BotOut.model_validate(dict(row._mapping))


@router.post(
    "",
    status_code=201,
    response_model=BotCreated,
    responses={**FORBIDDEN, 409: {**_PROBLEM, "description": "duplicate_signal_key"}},
)
async def create_bot(body: BotCreate, caller: Caller, request: Request) -> BotCreated:
    row, secret = await management.create_bot(_runtime(request), caller, body.owner_id, body.spec())
    return BotCreated.model_validate({**row._mapping, "webhook_secret": secret})


@router.get("", response_model=list[BotOut])
async def list_bots(caller: Caller, request: Request) -> list[BotOut]:
    async with _runtime(request).engine.connect() as conn:
        return [_bot(row) for row in await bots.list_bots(conn, caller.owner_scope)]


@router.get("/{bot_id}", response_model=BotOut, responses=_NOT_FOUND)
async def get_bot(bot_id: UUID, caller: Caller, request: Request) -> BotOut:
    async with _runtime(request).engine.connect() as conn:
        return _bot(await management.owned(conn, caller, bot_id))


@router.patch(
    "/{bot_id}",
    response_model=BotOut,
    responses={**_NOT_FOUND, **FORBIDDEN, 409: {**_PROBLEM, "description": "duplicate_signal_key"}},
)
async def edit_bot(bot_id: UUID, body: BotEdit, caller: Caller, request: Request) -> BotOut:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return _bot(await management.edit_bot(_runtime(request), caller, bot_id, changes))


@router.delete(
    "/{bot_id}",
    status_code=204,
    response_class=Response,
    responses={**_NOT_FOUND, **FORBIDDEN, 409: {**_PROBLEM, "description": "bot_has_active_positions"}},
)
async def delete_bot(bot_id: UUID, caller: Caller, request: Request) -> Response:
    await management.delete_bot(_runtime(request), caller, bot_id)
    return Response(status_code=204)


@router.get("/{bot_id}/budget", response_model=BudgetOut, responses=_NOT_FOUND)
async def get_budget(bot_id: UUID, caller: Caller, request: Request) -> BudgetOut:
    async with _runtime(request).engine.connect() as conn:
        await management.owned(conn, caller, bot_id)
        budget = await request.app.state.ledger.budget(conn, bot_id)
    return BudgetOut(bot_id=bot_id, **asdict(budget))


@router.get("/{bot_id}/positions", response_model=list[PositionOut], responses=_NOT_FOUND)
async def list_positions(bot_id: UUID, caller: Caller, request: Request) -> list[PositionOut]:
    async with _runtime(request).engine.connect() as conn:
        await management.owned(conn, caller, bot_id)
        return [PositionOut.model_validate(p) for p in await repo.positions_of_bot(conn, bot_id)]


async def _refuse(request: Request, error: Exception) -> JSONResponse:
    status = next((code for kind, code in STATUS.items() if isinstance(error, kind)), 422)
    log.info("api_refused", method=request.method, path=request.url.path, status=status, reason=error.code)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = Problem(reason=error.code, detail=str(error)).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def create_http_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Egis ledger",
        version="1",
        docs_url=None,
        redoc_url=None,
        description="Manage bots; read their budgets and positions. Bearer token on every call.",
    )
    app.state.runtime = runtime
    app.state.ledger = build_ledger(runtime)
    app.add_exception_handler(Refused, _refuse)
    app.add_exception_handler(bots.BotError, _refuse)
    app.include_router(router)
    app.include_router(admin_api.router, responses={**UNAUTHORIZED, **FORBIDDEN})
    app.include_router(signals_api.router)
    console.mount(app)
    return app
