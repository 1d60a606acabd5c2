from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from egis_common.topics import INTENTS, SIGNALS_RECEIVED, SIGNALS_SKIPPED

sys.path.insert(0, str(Path(__file__).parent))
from router_support import Producer, Tail  # noqa: E402


@pytest.fixture(scope="session")
def router_settings(test_database):
    from signal_router.settings import RouterSettings

    return RouterSettings(metrics_port=0, http_port=0, log_json=True, log_level="WARNING")


@pytest.fixture(scope="session")
async def service(router_settings):
    """One running signal_router (router, gateway on a loopback port, bots feed) for the session."""
    from signal_router.main import create_service

    running = create_service(router_settings, migrate=False)
    await running.app.start()
    yield running
    await running.app.stop()


@pytest.fixture(scope="session")
async def tail(infra, test_database):
    collected = Tail(infra.kafka_bootstrap, (SIGNALS_RECEIVED, INTENTS, SIGNALS_SKIPPED))
    await collected.start()
    yield collected
    await collected.stop()


@pytest.fixture(scope="session")
async def producer(infra, test_database):
    sender = Producer(infra.kafka_bootstrap)
    await sender.producer.start()
    yield sender
    await sender.producer.stop()


@pytest.fixture
async def client(service):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}", timeout=5) as http:
        yield http
