from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from egis_common.topics import INTENTS, SIGNALS_RECEIVED, SIGNALS_SKIPPED

sys.path.insert(0, str(Path(__file__).parent))
from router_support import Producer, Tail  # noqa: E402


@pytest.fixture(scope="session")
def service(signal_router_service):
    """The session's signal_router (the root conftest)."""
    return signal_router_service


@pytest.fixture(scope="session")
async def tail(infra, test_database):
    collected = Tail(infra.kafka_bootstrap, (SIGNALS_RECEIVED, INTENTS, SIGNALS_SKIPPED), infra.kafka_options())
    await collected.start()
    yield collected
    await collected.stop()


@pytest.fixture(scope="session")
async def producer(infra, test_database):
    sender = Producer(infra.kafka_bootstrap, infra.kafka_options())
    await sender.producer.start()
    yield sender
    await sender.producer.stop()


@pytest.fixture
async def client(service):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}", timeout=5) as http:
        yield http
