"""The console's pages: plain HTML forms (POST, then a redirect to a GET), rendered on the server.

Every page takes `Seen` (a live session) or `Writer` (a live session whose token
may write). Every POST carries the session's CSRF token in a hidden field; a
missing or wrong one is a 403 before anything is read or written. Reads and
writes call `adapters.management` and `ledger.bots`, the API's own use cases,
so the roles, the budget figures and the audit trail are the API's.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from egis_common.contracts import ExchangeName
from egis_common.logs import get_logger
from egis_common.money import format_decimal
from egis_common.secrets import new_token
from ledger import auth, bots, journal
from ledger import repository as repo
from ledger.adapters import management
from ledger.adapters.access import READ_METHODS, OwnerNotAllowed, runtime_of
from ledger.adapters.console import forms, sessions
from ledger.adapters.console.sessions import COOKIE, LIFETIME, LOGIN_COOKIE, Visitor

log = get_logger(__name__)
HERE = Path(__file__).parent
router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")

# No script, no frame, no third party: a page can only load its own stylesheet and post to its own server.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show budgets and, once, a webhook secret
}
NOTICES = {
    "deleted": "The bot was deleted.",
    "paused": "The bot is paused.",
    "resumed": "The bot is live again.",
    "saved": "Saved.",
    "unchanged": "Nothing changed.",
}


class NotLoggedIn(Exception):
    pass


class Forbidden(Exception):
    pass


def usd(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"-${format_decimal(-value)}" if value < 0 else f"${format_decimal(value)}"


def plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return forms.text(value)


def pending_for(since: datetime, now: datetime | None = None) -> str:
    """How long an order has waited for reconciliation, as a person reads it: minutes, then hours, then days."""
    minutes = max(0, int(((now or datetime.now(UTC)) - since).total_seconds())) // 60
    if minutes < 1:
        return "pending for less than a minute"
    if minutes < 60:
        return f"pending for {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"pending for {hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"pending for {days} d {hours} h"


templates.env.filters["usd"] = usd
templates.env.filters["plain"] = plain
templates.env.filters["pending_for"] = pending_for


def page(request: Request, name: str, visitor: Visitor | None, *, status: int = 200, **context: Any) -> HTMLResponse:
    writable = visitor is not None and not visitor.principal.read_only
    response = templates.TemplateResponse(
        request, name, {"visitor": visitor, "writable": writable, **context}, status_code=status
    )
    response.headers.update(_HEADERS)
    return response


def go(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


async def current_visitor(request: Request) -> Visitor:
    async with runtime_of(request).engine.begin() as conn:  # begin: an ended session is deleted
        found = await sessions.visitor(conn, request.cookies.get(COOKIE))
    if found is None:
        raise NotLoggedIn()
    if request.method not in READ_METHODS:
        form = await request.form()  # cached on the request: the page reads the same form
        if not sessions.same_secret(str(form.get("csrf") or ""), found.csrf_token):
            raise Forbidden(
                "This form is missing its security token or carries a wrong one. Reload the page and try again."
            )
    return found


Seen = Annotated[Visitor, Depends(current_visitor)]


async def writer(visitor: Seen) -> Visitor:
    if visitor.principal.read_only:
        raise Forbidden(f"A {visitor.principal.role.value} token reads only; it changes nothing.")
    return visitor


Writer = Annotated[Visitor, Depends(writer)]


# --- access -----------------------------------------------------------------------


def _login_page(request: Request, *, status: int = 200, error: str | None = None) -> HTMLResponse:
    csrf = new_token()
    response = page(request, "login.html", None, status=status, login_csrf=csrf, error=error)
    sessions.set_cookie(request, response, LOGIN_COOKIE, csrf, max_age=3600)
    return response


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    if not sessions.same_secret(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE)):
        raise Forbidden("The login form expired or was not this site's. Reload the page and try again.")
    token = str(form.get("token") or "").strip()
    async with runtime_of(request).engine.begin() as conn:
        principal = await auth.authenticate(conn, token) if token else None
        session_id = await sessions.open_session(conn, principal) if principal else None
    if principal is None or session_id is None:
        return _login_page(request, status=401, error="That token is not valid (unknown, revoked or expired).")
    log.info("console_login", caller=str(principal.token_id), role=principal.role.value)
    response = go("/console/")
    sessions.set_cookie(request, response, COOKIE, session_id, max_age=int(LIFETIME.total_seconds()))
    sessions.clear_cookie(request, response, LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, visitor: Seen) -> Response:
    async with runtime_of(request).engine.begin() as conn:
        await sessions.close_session(conn, request.cookies[COOKIE])
    response = go("/console/login")
    sessions.clear_cookie(request, response, COOKIE)
    return response


# --- bots -------------------------------------------------------------------------


def status_of(row: Any) -> str:
    return "deleted" if row.deleted_at is not None else "paused" if row.paused else "live"


@router.get("/")
async def bots_list(request: Request, visitor: Seen, notice: str | None = None) -> HTMLResponse:
    async with runtime_of(request).engine.connect() as conn:
        rows = await bots.list_bots(conn, visitor.principal.owner_scope, include_deleted=True)
        figures = await management.budgets_and_open_counts(conn, rows)
    listed = [
        {
            "row": row,
            "status": status_of(row),
            "budget": figures[row.bot_id][0],
            "open_positions": figures[row.bot_id][1],
        }
        for row in rows
    ]
    return page(
        request,
        "bots.html",
        visitor,
        live=[b for b in listed if b["status"] != "deleted"],
        deleted=[b for b in listed if b["status"] == "deleted"],
        notice=NOTICES.get(notice or ""),
    )


def _form_page(
    request: Request,
    visitor: Visitor,
    *,
    bot: Any = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "bot_form.html",
        visitor,
        status=status,
        bot=bot,
        values=values or {},
        errors=errors or {},
        exchanges=[e.value for e in ExchangeName],
    )


@router.get("/bots/new")
async def new_bot_form(request: Request, visitor: Writer) -> HTMLResponse:
    return _form_page(request, visitor, values={"exchange": ExchangeName.PAPER.value})


@router.post("/bots")
async def create_bot(request: Request, visitor: Writer) -> Response:
    try:
        body = forms.new_bot(await request.form())
        row, secret = await management.create_bot(runtime_of(request), visitor.principal, body.owner_id, body.spec())
    except forms.Invalid as invalid:
        return _form_page(request, visitor, values=invalid.sent, errors=invalid.errors, status=422)
    except bots.DuplicateSignalKey as error:
        return _form_page(
            request, visitor, values=forms.sent(await request.form()), errors={"signal_key": str(error)}, status=409
        )
    except OwnerNotAllowed as error:
        raise Forbidden(str(error)) from error
    # Rendered here, not behind a redirect: the secret exists only in this response.
    return page(request, "bot_created.html", visitor, status=201, bot=row, secret=secret)


async def _bot_or_404(request: Request, visitor: Visitor, bot_id: UUID) -> Any:
    async with runtime_of(request).engine.connect() as conn:
        return await management.owned(conn, visitor.principal, bot_id)


@router.get("/bots/{bot_id}")
async def bot_detail(request: Request, visitor: Seen, bot_id: UUID, notice: str | None = None) -> HTMLResponse:
    async with runtime_of(request).engine.connect() as conn:
        row = await management.owned(conn, visitor.principal, bot_id)
        budget = await request.app.state.ledger.budget(conn, bot_id)  # the API's budget endpoint reads the same
        positions = await repo.positions_of_bot(conn, bot_id)
        signals = await journal.recent_of_bot(conn, bot_id)
        pending = await repo.unsettled_of_bot(conn, bot_id)
    return page(
        request,
        "bot_detail.html",
        visitor,
        bot=row,
        status_text=status_of(row),
        budget=asdict(budget),
        positions=positions,
        signals=signals,
        pending=pending,
        notice=NOTICES.get(notice or ""),
    )


@router.get("/bots/{bot_id}/edit")
async def edit_form(request: Request, visitor: Writer, bot_id: UUID) -> HTMLResponse:
    row = await _bot_or_404(request, visitor, bot_id)
    return _form_page(request, visitor, bot=row, values=forms.of_bot(row))


@router.post("/bots/{bot_id}/edit")
async def edit_bot(request: Request, visitor: Writer, bot_id: UUID) -> Response:
    row = await _bot_or_404(request, visitor, bot_id)
    try:
        changes = forms.changes(await request.form(), row)
        if not changes:
            return go(f"/console/bots/{bot_id}?notice=unchanged")
        await management.edit_bot(runtime_of(request), visitor.principal, bot_id, changes)
    except forms.Invalid as invalid:
        return _form_page(request, visitor, bot=row, values=invalid.sent, errors=invalid.errors, status=422)
    except bots.DuplicateSignalKey as error:
        return _form_page(
            request,
            visitor,
            bot=row,
            values=forms.sent(await request.form()),
            errors={"signal_key": str(error)},
            status=409,
        )
    return go(f"/console/bots/{bot_id}?notice=saved")


def _back(form_value: Any, bot_id: UUID) -> str:
    return f"/console/bots/{bot_id}" if form_value == "detail" else "/console/"


@router.post("/bots/{bot_id}/pause")
async def pause(request: Request, visitor: Writer, bot_id: UUID) -> Response:
    await management.edit_bot(runtime_of(request), visitor.principal, bot_id, {"paused": True})
    return go(f"{_back((await request.form()).get('back'), bot_id)}?notice=paused")


@router.post("/bots/{bot_id}/resume")
async def resume(request: Request, visitor: Writer, bot_id: UUID) -> Response:
    await management.edit_bot(runtime_of(request), visitor.principal, bot_id, {"paused": False})
    return go(f"{_back((await request.form()).get('back'), bot_id)}?notice=resumed")


@router.get("/bots/{bot_id}/delete")
async def confirm_delete(request: Request, visitor: Writer, bot_id: UUID) -> HTMLResponse:
    row = await _bot_or_404(request, visitor, bot_id)
    return page(request, "confirm_delete.html", visitor, bot=row, error=None)


@router.post("/bots/{bot_id}/delete")
async def delete_bot(request: Request, visitor: Writer, bot_id: UUID) -> Response:
    try:
        await management.delete_bot(runtime_of(request), visitor.principal, bot_id)
    except bots.BotHasActivePositions as error:
        row = await _bot_or_404(request, visitor, bot_id)
        return page(
            request,
            "confirm_delete.html",
            visitor,
            bot=row,
            status=409,
            error=f"This bot cannot be deleted yet: {error}.",
        )
    return go("/console/?notice=deleted")
