"""`/health/live` and `/health/ready` of a service, on its metrics port, against real Kafka and Postgres; and
`egis_ready`, which shows the readiness checks' last verdict to Prometheus."""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from egis_common.health import PROBE_TIMEOUT_S, probe
from egis_common.runtime import build_app, build_runtime
from egis_localinfra.ports import free_port

sys.path.insert(0, str(Path(__file__).parent))
from probe import ProbeSettings, create_schema  # noqa: E402

pytestmark = pytest.mark.infra


@asynccontextmanager
async def running_service(**overrides):
    """The probe service as `serve` runs one (migrations aside): hooks, broker, relay, metrics port."""
    port = free_port()
    runtime = build_runtime(ProbeSettings(metrics_port=port, **overrides))
    app = build_app(runtime, service="probe", migrate=False)
    await app.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=PROBE_TIMEOUT_S + 3) as client:
            yield client
    finally:
        await app.stop()


def ready_shown() -> float | None:
    return REGISTRY.get_sample_value("egis_ready", {"service": "probe"})


@pytest.fixture
async def schema(test_database):
    runtime = build_runtime(ProbeSettings())
    await create_schema(runtime.engine)
    await runtime.engine.dispose()


@asynccontextmanager
async def silent_server():
    """A loopback port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader, writer):
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def database_url_on(port: int, test_database) -> str:
    return make_url(test_database.url).set(port=port).render_as_string(hide_password=False)


async def test_a_running_service_is_live_and_ready_and_serves_its_metrics_on_the_same_port(schema):
    async with running_service() as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
        metrics = await client.get("/metrics")
    assert (live.status_code, live.json()) == (200, {"status": "live"})
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "checks": {"started": "ok", "database": "ok", "kafka": "ok"}},
    )
    assert metrics.status_code == 200 and "egis_outbox_published_total" in metrics.text
    assert ready_shown() == 1


async def test_a_service_is_not_ready_until_its_start_is_over(schema):
    """`egis-local up` waits for ready and then may kill Kafka: a service still starting would die of it."""
    port = free_port()
    runtime = build_runtime(ProbeSettings(metrics_port=port))
    app = build_app(runtime, service="probe", migrate=False)
    seen = {}

    @app.on_startup  # after build_app's hook that serves the health routes, before the broker starts
    async def ask_while_starting() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=PROBE_TIMEOUT_S + 3) as client:
            seen["starting"] = await client.get("/health/ready")

    await app.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=PROBE_TIMEOUT_S + 3) as client:
            seen["started"] = await client.get("/health/ready")
    finally:
        await app.stop()
    assert seen["starting"].status_code == 503
    assert seen["starting"].json()["checks"]["started"] == "RuntimeError: still starting"
    assert seen["started"].status_code == 200, seen["started"].json()


async def test_a_service_whose_database_is_unreachable_is_live_but_not_ready_and_says_why(schema, test_database):
    unreachable = database_url_on(free_port(), test_database)
    async with running_service(database_url=unreachable) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready" and body["checks"]["kafka"] == "ok"
    assert body["checks"]["database"] != "ok", body
    assert ready_shown() == 0


async def test_a_database_that_never_answers_makes_readiness_answer_not_ready_within_the_probe_timeout(
    schema, test_database
):
    async with silent_server() as port, running_service(database_url=database_url_on(port, test_database)) as client:
        # The client gives up a few seconds after the probe's own bound: a readiness that hung would fail here.
        ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == f"no answer within {PROBE_TIMEOUT_S:g}s"


async def test_a_probe_reports_a_failure_or_a_hang_on_one_line_and_never_raises():
    async def fails():
        raise ConnectionRefusedError("connect call failed\n('127.0.0.1', 1)")

    async def hangs():
        await asyncio.Event().wait()

    assert await probe(fails) == "ConnectionRefusedError: connect call failed ('127.0.0.1', 1)"
    assert await probe(hangs, timeout_s=0.1) == "no answer within 0.1s"
