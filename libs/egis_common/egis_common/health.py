"""Liveness and readiness of a service: `/health/live` and `/health/ready`, served next to its metrics.

Live: the service's event loop answers. Ready: it has finished starting (every subscriber and the
outbox relay are up), its database answers `SELECT 1` and each of its Kafka brokers answers a
metadata request. A dependency that dies while the service still starts makes the start fail, so
nothing may call the service ready before its start is over. Every probe is bounded by a timeout, because the
dependency that matters most is the one that stopped answering: a broker that moved to a port the
service does not know never refuses a connection, it just never answers.

Each time the checks run (a request for `/health/ready`, or the runtime's periodic refresh),
`egis_ready` shows their verdict, so Prometheus, which only scrapes metrics, can alert on "not ready".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import URL

from egis_common.db import libpq_dsn
from egis_common.metrics import READY, ASGIApp

PROBE_TIMEOUT_S = 2.0
OK = "ok"

Check = Callable[[], Awaitable[None]]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


class Pingable(Protocol):
    """A FastStream broker, as far as readiness is concerned."""

    async def ping(self, timeout: float | None) -> bool: ...


async def probe(check: Check, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """`OK`, or why `check` failed, on one line: it never raises and never outlasts `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except TimeoutError:
        return f"no answer within {timeout_s:g}s"
    except Exception as error:  # noqa: BLE001 - whatever the dependency raised is the reason it is not ready
        return one_line(error)
    return OK


async def readiness(checks: Mapping[str, Check], timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, str]:
    """Every check at once, so the whole answer is bounded by one timeout."""
    results = await asyncio.gather(*(probe(check, timeout_s) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


def one_line(error: BaseException) -> str:
    name, text = type(error).__name__, " ".join(str(error).split())
    return text if text.startswith(name) else f"{name}: {text}" if text else name


class Readiness:
    """A service's readiness checks; every run also sets its `egis_ready` (0 until the first run says ready)."""

    def __init__(self, service: str, checks: Mapping[str, Check], timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.checks = checks
        self.timeout_s = timeout_s
        self.gauge = READY.labels(service)
        self.gauge.set(0)

    async def check(self) -> dict[str, str]:
        results = await readiness(self.checks, self.timeout_s)
        self.gauge.set(1 if all(result == OK for result in results.values()) else 0)
        return results


def database_answers(url: URL | str) -> Check:
    """SELECT 1 on a connection of its own: a pool busy with handlers must not look like a dead database."""
    dsn = libpq_dsn(url)

    async def check() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()

    return check


def has_started(started: asyncio.Event) -> Check:
    """Set by the app once its start-up is over: the checks answer from the first moment, the service later."""

    async def check() -> None:
        if not started.is_set():
            raise RuntimeError("still starting")

    return check


def brokers_answer(brokers: Sequence[Pingable]) -> Check:
    """Each broker's own admin client asks Kafka for the cluster's metadata.

    The list is read at every probe, so a broker added to the app after this was built is checked too.
    """

    async def check() -> None:
        for broker in brokers:
            # No timeout of its own: ping retries until it answers and the probe's timeout bounds it.
            if not await broker.ping(timeout=None):
                raise ConnectionError("broker not connected")

    return check


def health_routes(checks: Readiness) -> dict[str, ASGIApp]:
    """`/health/live` and `/health/ready` as ASGI apps, for `egis_common.metrics.serve_metrics`."""

    async def live(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        await _send_json(send, 200, {"status": "live"})

    async def ready(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        results = await checks.check()
        healthy = all(result == OK for result in results.values())
        body = {"status": "ready" if healthy else "not ready", "checks": results}
        await _send_json(send, 200 if healthy else 503, body)

    return {"/health/live": live, "/health/ready": ready}


async def _send_json(send: Send, status: int, body: Any) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
