"""Ops, for admins only: the reconciler's repairs, each a dry run first (its diff), then a confirm, then its result.

    GET  /console/ops                   the four commands
    GET  /console/ops/{command}         the form: the operator's name and key (and a bot, where it applies)
    POST /console/ops/{command}         sign and send it (a confirm only after this session's dry run of it)
    GET  /console/ops/runs/{run_id}     its reply (the diff, a refusal or the result), or that it still runs

The server enforces the role: a user's or a viewer's session gets a 403 here, and the pages show them no Ops link.
The key is read from the form, signs the one command, and is kept nowhere (`repairs`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from egis_common import contracts as c
from ledger.adapters.console import repairs
from ledger.adapters.console.pages import Forbidden, Writer, go, page
from ledger.adapters.console.sessions import Visitor
from ledger.auth import Role

router = APIRouter(prefix="/console/ops", include_in_schema=False)


class NoSuchPage(Exception):
    pass


async def admin(visitor: Writer) -> Visitor:
    if visitor.principal.role is not Role.ADMIN:
        raise Forbidden("Repairs are for admins only.")
    return visitor


Admin = Annotated[Visitor, Depends(admin)]


def runs_of(request: Request) -> repairs.Runs:
    return request.app.state.console_runs


def _command(value: str) -> c.AdminCommandName:
    try:
        return c.AdminCommandName(value)
    except ValueError:
        raise NoSuchPage() from None


@router.get("")
async def index(request: Request, visitor: Admin) -> HTMLResponse:
    return page(request, "ops.html", visitor, commands=repairs.COMMANDS)


def _form(
    request: Request, visitor: Visitor, name: c.AdminCommandName, values: dict[str, str], errors: dict[str, str]
) -> HTMLResponse:
    return page(
        request,
        "ops_form.html",
        visitor,
        status=422 if errors else 200,
        op=name,
        command=repairs.COMMANDS[name],
        values=values,
        errors=errors,
    )


def _bot_id(value: str) -> str:
    try:
        return str(UUID(value)) if value else ""
    except ValueError:
        return ""


@router.get("/runs/{run_id}")
async def run_page(request: Request, visitor: Admin, run_id: str, bot: UUID | None = None) -> HTMLResponse:
    run = runs_of(request).of(run_id, visitor.principal.token_id)
    if run is None:
        raise NoSuchPage()
    done = await runs_of(request).finished(run)
    return page(request, "ops_run.html", visitor, from_bot=str(bot or ""), **_run_context(run, done))


@router.get("/{command}")
async def form(request: Request, visitor: Admin, command: str, bot: UUID | None = None) -> HTMLResponse:
    name = _command(command)
    return _form(request, visitor, name, {"bot_id": str(bot) if bot else "", "from_bot": str(bot or "")}, {})


@router.post("/{command}")
async def send(request: Request, visitor: Admin, command: str) -> Response:
    name = _command(command)
    sent = await request.form()
    values = {key: str(sent.get(key) or "").strip() for key in ("operator_id", "bot_id", "from_bot", "after")}
    values["from_bot"] = _bot_id(values["from_bot"])  # only ever a link back to a bot's page
    key = str(sent.get("operator_key") or "")  # never stripped, echoed, stored or logged
    confirm = sent.get("confirm") == "yes"
    errors, bot_id = _checked(name, values, key)
    if errors:
        return _form(request, visitor, name, values, errors)
    if confirm:
        _dry_run_came_first(request, visitor, name, bot_id, values["after"])
    run = runs_of(request).start(
        visitor.principal.token_id,
        name,
        confirm=confirm,
        bot_id=bot_id,
        operator_id=values["operator_id"],
        operator_key=key,
    )
    return go(f"/console/ops/runs/{run.run_id}" + (f"?bot={values['from_bot']}" if values["from_bot"] else ""))


def _checked(name: c.AdminCommandName, values: dict[str, str], key: str) -> tuple[dict[str, str], UUID | None]:
    errors: dict[str, str] = {}
    if not values["operator_id"]:
        errors["operator_id"] = "Name the operator you sign as."
    if not key:
        errors["operator_key"] = "Give that operator's key: it signs this command and is not kept."
    bot_id = None
    if values["bot_id"] and repairs.COMMANDS[name].bot_scope:
        try:
            bot_id = UUID(values["bot_id"])
        except ValueError:
            errors["bot_id"] = "A bot id is a UUID; leave it empty for every bot."
    return errors, bot_id


def _dry_run_came_first(
    request: Request, visitor: Visitor, name: c.AdminCommandName, bot_id: UUID | None, after: str
) -> None:
    """A confirm follows this session's dry run of the same command, which answered: the diff was seen first."""
    dry = runs_of(request).of(after, visitor.principal.token_id) if after else None
    seen = (
        dry is not None
        and dry.task.done()
        and isinstance(reply := dry.reply(), c.AdminReply)
        and reply.status == "ok"
        and reply.dry_run
        and (dry.name, dry.command.bot_id) == (name, bot_id)
    )
    if not seen:
        raise Forbidden("Run the dry run first, read what it would change, then confirm from its page.")


def _run_context(run: repairs.Run, done: bool) -> dict[str, Any]:
    command = repairs.COMMANDS[run.name]
    context: dict[str, Any] = {
        "run": run,
        "op": run.name,
        "command": command,
        "done": done,
        "confirmed": run.command.confirm,
        "elapsed_s": int((datetime.now(UTC) - run.started_at).total_seconds()),
        "reply": None,
        "problem": None,
        "tables": [],
        "summary": [],
    }
    if not done:
        return context
    reply = run.reply()
    if reply is None:
        context["problem"] = (
            f"No reply within {run.wait_s:.0f} s (request {run.command.request_id}). Is the reconciler running? "
            "A confirmed repair may still complete: run a dry run again to see what is left."
        )
    elif isinstance(reply, str):
        context["problem"] = reply
    elif reply.status == "refused":
        context["problem"] = repairs.refusal(reply)
    elif reply.status != "ok":
        context["problem"] = repairs.failure(reply)
    else:
        context |= {"reply": reply, "tables": repairs.tables(reply), "summary": repairs.summary(reply.report)}
    return context
