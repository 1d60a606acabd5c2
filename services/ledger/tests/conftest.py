"""Fixtures: the ledger's flow running in-process on real Kafka and Postgres."""

from __future__ import annotations

import sys
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from egis_common.contracts import ExchangeName
from egis_common.topics import LEDGER_EVENTS
from ledger import auth, bots
from ledger.adapters.http import create_http_app
from ledger.flow import build_ledger

sys.path.insert(0, str(Path(__file__).parent))  # ledger_helpers, shared by the test modules


@pytest.fixture
async def ledger(ledger_runtime):
    return build_ledger(ledger_runtime)


@pytest.fixture
def make_bot(ledger_runtime):
    async def make(
        budget: str = "100",
        *,
        owner_id: uuid.UUID | None = None,
        account: str | None = None,
        signal_key: str | None = None,
        exchange: ExchangeName = ExchangeName.PAPER,
    ):
        spec = bots.NewBot(
            name="test bot",
            signal_key=signal_key or f"key-{uuid.uuid4().hex}",
            exchange=exchange,
            exchange_account=account or f"acct-{uuid.uuid4().hex[:8]}",
            initial_budget_usd=Decimal(budget),
            default_order_size_usd=Decimal("10"),
        )
        async with ledger_runtime.uow.begin() as conn:
            row, _secret = await bots.create_bot(conn, ledger_runtime.outbox, owner_id or uuid.uuid4(), spec)
        return row

    return make


@pytest.fixture
async def api(ledger_runtime):
    """The management API in-process (ASGI, no network) on the real database."""
    transport = httpx.ASGITransport(app=create_http_app(ledger_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger.test") as client:
        yield client


@pytest.fixture
def issue(ledger_runtime):
    """A token straight in the database, as `egis-ledger-admin create-token` makes one."""

    async def issue(
        role: str = "user", owner_id: uuid.UUID | None = None, *, name: str = "test", expires_at=None
    ) -> dict[str, str]:
        async with ledger_runtime.engine.begin() as conn:
            token = await auth.create_token(
                conn, auth.Role(role), owner_id or uuid.uuid4(), name, expires_at=expires_at
            )
        return {
            "Authorization": f"Bearer {token.token}",
            "owner_id": str(token.owner_id),
            "id": str(token.token_id),
            "token": token.token,
        }

    return issue


@pytest.fixture(scope="session")
async def ledger_events(infra, test_database):
    """Every message on the ledger events topic, read from the beginning."""
    consumer = AIOKafkaConsumer(
        LEDGER_EVENTS.name,
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=f"t-{uuid.uuid4()}",
        **infra.kafka_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    yield EventReader(consumer)
    await consumer.stop()


class EventReader:
    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.seen: list = []

    async def drain(self) -> list:
        batches = await self.consumer.getmany(timeout_ms=200)
        for records in batches.values():
            self.seen.extend(LEDGER_EVENTS.decode(r.value) for r in records)
        return self.seen

    async def matching(self, predicate) -> list:
        await self.drain()
        return [m for m in self.seen if predicate(m)]


@pytest.fixture
async def browser_like(ledger_runtime):
    """A client per visitor: each keeps its own cookies, as two browsers would."""
    clients: list[httpx.AsyncClient] = []

    def make(base_url: str = "http://ledger.test") -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_http_app(ledger_runtime)), base_url=base_url
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
