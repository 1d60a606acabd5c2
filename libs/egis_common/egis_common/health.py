"""Liveness and readiness of a service: `/health/live` and `/health/ready`, served next to its metrics.

Live: the service's event loop answers. Ready: its database answers `SELECT 1` and each of its
Kafka brokers answers a metadata request. Every probe is bounded by a timeout, because the
dependency that matters most is the one that stopped answering: a broker that moved to a port the
service does not know never refuses a connection, it just never answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker
from sqlalchemy.engine import URL

PROBE_TIMEOUT_S = 2.0
OK = "ok"

Check = Callable[[], Awaitable[None]]
ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


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


def database_answers(url: URL | str) -> Check:
    """SELECT 1 on a connection of its own: a pool busy with handlers must not look like a dead database."""
    dsn = _libpq_dsn(url)

    async def check() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()

    return check


def _libpq_dsn(url: URL | str) -> str:
    if isinstance(url, str):
        return url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def brokers_answer(brokers: Sequence[KafkaBroker]) -> Check:
    """Each broker's own admin client asks Kafka for the cluster's metadata.

    The list is read at every probe, so a broker added to the app after this was built is checked too.
    """

    async def check() -> None:
        for broker in brokers:
            # No timeout of its own: ping retries until it answers and the probe's timeout bounds it.
            if not await broker.ping(timeout=None):
                raise ConnectionError("broker not connected")

    return check


def health_routes(checks: Mapping[str, Check], timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, ASGIApp]:
    """`/health/live` and `/health/ready` as ASGI apps, for `egis_common.metrics.serve_metrics`."""

    async def live(scope: dict, receive: Callable, send: Callable) -> None:
        await _send_json(send, 200, {"status": "live"})

    async def ready(scope: dict, receive: Callable, send: Callable) -> None:
        results = await readiness(checks, timeout_s)
        healthy = all(result == OK for result in results.values())
        body = {"status": "ready" if healthy else "not ready", "checks": results}
        await _send_json(send, 200 if healthy else 503, body)

    return {"/health/live": live, "/health/ready": ready}


async def _send_json(send: Callable, status: int, body: Any) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
