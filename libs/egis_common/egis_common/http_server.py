"""Uvicorn inside the service's event loop, started and stopped with the FastStream app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The FastStream app owns SIGINT/SIGTERM and stops this server on shutdown.
        yield


class HttpServer:
    """No access log: quiet, and nothing of a request's headers (tokens) is written out."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
            timeout_keep_alive=75,
        )
        self.app = app
        self.server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the OS chose for port 0)."""
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(), name="http-server")
        while not self.server.started:
            if self._task.done():  # uvicorn exits with SystemExit when it cannot bind
                raise RuntimeError(f"HTTP server failed to start: {self._task.exception()!r}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await self._task
        self._task = None
