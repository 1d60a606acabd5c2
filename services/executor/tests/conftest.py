"""Fixtures: the ledger for the session and the executor per module, in-process on real Kafka and Postgres.

The executor runs per module so that a module can run it as its own process
instead (test_crash_recovery.py) without a second in-process member of the
executor's consumer groups taking its partitions.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from egis_common.contracts import ExchangeName
from egis_common.runtime import Runtime, build_runtime
from egis_common.topics import EXCHANGE_FACTS, EXECUTIONS, LEDGER_COMMANDS, LEDGER_EVENTS
from egis_localinfra.pytest_plugin import service_login
from egis_localinfra.testing import stop_service
from ledger import bots

sys.path.insert(0, str(Path(__file__).parent))  # executor_helpers, shared by the test modules
from executor_helpers import Tail, on_the_bots_topic  # noqa: E402

from egis_venues.paper import PaperExchange  # noqa: E402
from executor.flow import Wiring, register  # noqa: E402
from executor.settings import ExecutorSettings  # noqa: E402


@pytest.fixture
def make_bot(ledger_runtime):
    async def make(
        budget: str = "100", *, exchange: ExchangeName = ExchangeName.PAPER, account: str | None = None, **extra
    ):
        spec = bots.NewBot(
            name="executor test bot",
            signal_key=f"key-{uuid.uuid4().hex}",
            exchange=exchange,
            exchange_account=account or f"acct-{uuid.uuid4().hex[:10]}",
            initial_budget_usd=Decimal(budget),
            default_order_size_usd=Decimal("10"),
            **extra,
        )
        async with ledger_runtime.uow.begin() as conn:
            row, _secret = await bots.create_bot(conn, ledger_runtime.outbox, uuid.uuid4(), spec)
        # As the router would: it routes to a bot only once it has read the bot's snapshot on the topic.
        await on_the_bots_topic(ledger_runtime, row.bot_id)
        return row

    return make


@dataclass
class ExecutorService:
    runtime: Runtime
    wiring: Wiring

    @property
    def engine(self):
        return self.runtime.engine

    @property
    def paper(self) -> PaperExchange:
        return self.wiring.exchanges[ExchangeName.PAPER]


def executor_settings(**overrides) -> ExecutorSettings:
    return ExecutorSettings(
        metrics_port=0,
        outbox_poll_interval_seconds=0.2,
        log_level="WARNING",
        **{**service_login("executor"), **overrides},
    )


@pytest.fixture(scope="module")
async def executor(ledger_runtime):
    runtime = build_runtime(executor_settings())
    wiring = register(runtime)
    await wiring.bots.start()
    await runtime.broker.start()
    await runtime.start_relay()
    yield ExecutorService(runtime, wiring)
    await stop_service(runtime)


@pytest.fixture(scope="session")
async def producer(infra, test_database):
    sender = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True, **infra.kafka_options()
    )
    await sender.start()
    yield sender
    await sender.stop()


@pytest.fixture
async def tail(infra, test_database):
    """Executions, exchange facts and the ledger's commands and events, from the start of the test."""
    reader = Tail(
        infra.kafka_bootstrap, EXECUTIONS, EXCHANGE_FACTS, LEDGER_COMMANDS, LEDGER_EVENTS, login=infra.kafka_options()
    )
    await reader.start()
    yield reader
    await reader.stop()
