"""Composition root of the ledger service: `python -m ledger.main`
(or `faststream run --factory ledger.main:create_app`).

One process, one event loop: the FastStream app (ledger flow, outbox relay,
metrics) and the management HTTP API, which starts once the broker and the
relay run, so a bot change never waits for a relay that is not there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from faststream import FastStream

from egis_common.runtime import build_app, build_runtime, serve
from ledger.adapters.http import create_http_app
from ledger.flow import register
from ledger.metrics import refresh_bot_gauges
from ledger.settings import LedgerSettings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The FastStream app owns SIGINT/SIGTERM and stops this server on shutdown.
        yield


class HttpServer:
    """Uvicorn as a task in the running loop. No access log: quiet, and nothing of a request's headers."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_config=None,
                                access_log=False, log_level="warning", timeout_graceful_shutdown=5)
        self.server = _Server(config)
        self._task: asyncio.Task | None = None

    @property
    def port(self) -> int:
        """The bound port: the configured one, or the one the OS chose for port 0."""
        return self.server.servers[0].sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(), name="ledger-http")
        while not self.server.started:
            if self._task.done():  # uvicorn exits with SystemExit when it cannot bind
                raise RuntimeError(f"ledger HTTP API failed to start: {self._task.exception()!r}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await self._task
        self._task = None


def create_app(settings: LedgerSettings | None = None) -> FastStream:
    settings = settings or LedgerSettings()
    runtime = build_runtime(settings)
    register(runtime)
    app = build_app(runtime, service="ledger")
    http = HttpServer(create_http_app(runtime), settings.http_host, settings.http_port)
    app.after_startup(http.start)
    app.on_shutdown(http.stop)

    @app.after_startup
    async def gauges() -> None:
        runtime.start_task(runtime.every(settings.gauge_refresh_seconds, lambda: refresh_bot_gauges(runtime.engine),
                                         "bot-gauges"), "bot-gauges")

    return app


def main() -> None:
    serve(create_app())


if __name__ == "__main__":
    main()
