"""The whole pipeline in-process on real Kafka and Postgres: gateway + router, executor, ledger.

The ledger (`ledger_runtime`, with its management API on a loopback port here)
and the signal_router (`signal_router_service`) are the session's (the root conftest). The executor
is started and stopped by this package's modules (module scope), so it never
sits in the executor's consumer groups while another package's modules run
their own. The executor has the
paper venue and one Binance account on a local Binance-compatible server,
reached over HTTP by the real python-binance client.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from egis_binance_local import BinanceLocal
from egis_common.http_server import HttpServer
from egis_common.runtime import Runtime, build_runtime
from egis_localinfra.testing import eventually, stop_service
from executor.adapters.exchanges import close_exchanges
from executor.flow import Wiring, register
from executor.settings import ExecutorSettings
from ledger import auth
from ledger.adapters.http import create_http_app

sys.path.insert(0, str(Path(__file__).parent))  # e2e_helpers, shared with the test modules
from e2e_helpers import BINANCE_ACCOUNT, BINANCE_KEY, BINANCE_SECRET


@dataclass
class Executor:
    runtime: Runtime
    wiring: Wiring


@pytest.fixture(scope="module")
async def binance() -> AsyncIterator[BinanceLocal]:
    async with BinanceLocal() as server:
        server.add_account(BINANCE_KEY, BINANCE_SECRET, usdt="10000")
        yield server


@pytest.fixture(scope="module")
async def executor(infra, ledger_runtime, binance) -> AsyncIterator[Executor]:
    settings = ExecutorSettings(
        metrics_port=0,
        outbox_poll_interval_seconds=0.2,
        log_level="WARNING",
        **infra.kafka_settings("executor"),
        binance_accounts={BINANCE_ACCOUNT: {"api_key": BINANCE_KEY, "api_secret": BINANCE_SECRET}},
        binance_base_url=binance.base_url,
    )
    runtime = build_runtime(settings)
    wiring = register(runtime)
    await runtime.broker.start()
    await runtime.start_relay()
    yield Executor(runtime, wiring)
    await stop_service(runtime)
    await close_exchanges(wiring.exchanges)


@pytest.fixture(scope="session")
def router(signal_router_service, ledger_runtime):
    """The session's signal_router: one router at a time may decide signals (the root conftest)."""
    return signal_router_service


@pytest.fixture(scope="module")
async def ledger_api(ledger_runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The ledger's management API on a loopback port, with an admin token."""
    server = HttpServer(create_http_app(ledger_runtime), "127.0.0.1", 0)
    await server.start()
    async with ledger_runtime.engine.begin() as conn:
        token = await auth.create_token(conn, auth.Role.ADMIN, uuid.uuid4(), "e2e")
    headers = {"Authorization": f"Bearer {token.token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", headers=headers, timeout=10) as client:
        yield client
    await server.stop()


@pytest.fixture(scope="module")
async def gateway(router) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{router.http.port}", timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
async def producer(infra, test_database) -> AsyncIterator[AIOKafkaProducer]:
    sender = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True, **infra.kafka_options()
    )
    await sender.start()
    yield sender
    await sender.stop()


@pytest.fixture
def create_bot(ledger_api, router):
    """A bot through the ledger's API, once the gateway knows it; returns (bot, webhook secret)."""

    async def create(exchange: str, account: str, default_order_size_usd: str, **fields: str) -> tuple[dict, str]:
        body = {
            "name": "e2e bot",
            "signal_key": f"e2e-{uuid.uuid4().hex[:12]}",
            "exchange": exchange,
            "exchange_account": account,
            "initial_budget_usd": "100",
            "default_order_size_usd": default_order_size_usd,
            **fields,
        }
        response = await ledger_api.post("/v1/bots", json=body)
        assert response.status_code == 201, response.text
        bot = response.json()
        secret = bot.pop("webhook_secret")
        bot_id = uuid.UUID(bot["bot_id"])
        await eventually(lambda: _known(router, bot_id), what="the bot in the gateway's view")
        return bot, secret

    return create


async def _known(router, bot_id: uuid.UUID) -> bool:
    return router.view.get(bot_id) is not None
