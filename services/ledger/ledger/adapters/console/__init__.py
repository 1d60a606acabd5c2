"""The operators' web console: server-rendered pages under /console, served by the ledger's HTTP app.

Why this shape (Jinja2 pages, plain forms, one stylesheet, no script): docs/console.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ledger import bots
from ledger.adapters.console import ops, repairs
from ledger.adapters.console.pages import HERE, Forbidden, NotLoggedIn, go, page, router

__all__ = ["mount"]


async def _not_logged_in(request: Request, error: Exception) -> Response:
    if request.method in ("GET", "HEAD"):
        return go("/console/login")
    # A write without a live session cannot carry a valid CSRF token: refused like one.
    return page(
        request,
        "error.html",
        None,
        status=403,
        title="Refused",
        message="Your session has ended. Log in again, then repeat the change.",
    )


async def _forbidden(request: Request, error: Exception) -> HTMLResponse:
    return page(request, "error.html", None, status=403, title="Refused", message=str(error))


async def _no_such_page(request: Request, error: Exception) -> HTMLResponse:
    return page(request, "error.html", None, status=404, title="Not found", message="No such page.")


def _as_page_under_console(api_handler: Callable[[Request, Exception], Awaitable[Response]]):
    async def handle(request: Request, error: Exception) -> Response:
        if not request.url.path.startswith("/console/"):
            return await api_handler(request, error)
        if isinstance(error, bots.BotNotFound):
            return page(request, "error.html", None, status=404, title="Not found", message="No such bot of yours.")
        return page(request, "error.html", None, status=409, title="Refused", message=str(error))

    return handle


def mount(app: FastAPI) -> None:
    """The console's pages, its stylesheet, and `/` sending a person to it.

    The API answers its refusals (bot errors) in JSON; under /console the same errors become pages.
    """
    app.include_router(router)
    app.include_router(ops.router)
    settings = app.state.runtime.settings
    app.state.console_runs = repairs.Runs(
        repairs.sender(app.state.runtime),
        max_command_seconds=settings.admin_max_command_seconds,
        page_wait_s=settings.console_repair_wait_seconds,
    )
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(NotLoggedIn, _not_logged_in)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(ops.NoSuchPage, _no_such_page)
    api_handler = app.exception_handlers[bots.BotError]
    app.add_exception_handler(bots.BotError, _as_page_under_console(api_handler))

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)
