"""Fixtures: the reconciler's flow (and the ledger's, for end-to-end repairs) in-process on real Kafka and Postgres."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from egis_binance_local import BinanceLocal
from egis_common.contracts import ExchangeName
from egis_common.runtime import build_runtime
from egis_common.topics import ADMIN_REPLIES, EXECUTOR_COMMANDS, LEDGER_COMMANDS, LEDGER_EVENTS
from egis_localinfra.testing import eventually, stop_service
from egis_venues.binance.exchange import BinanceExchange
from egis_venues.settings import BinanceCredentials
from reconciler.flow import register
from reconciler.settings import ReconcilerSettings

sys.path.insert(0, str(Path(__file__).parent))  # reconciler_helpers, shared by the test modules

from reconciler_helpers import (
    BINANCE_ACCOUNT,
    BINANCE_KEY,
    BINANCE_SECRET,
    OPERATOR_ID,
    OPERATOR_KEY,
)

PENDING_WINDOW_S = 60
# Small, so that a report of a few dozen lines already comes in parts (the default is 512 KB).
REPLY_PART_BYTES = 4096


@pytest.fixture(scope="session")
async def binance_server():
    """A local Binance USDⓈ-M server: the reconciler looks pending orders up there, read-only."""
    async with BinanceLocal() as server:
        server.add_account(BINANCE_KEY, BINANCE_SECRET, usdt="10000")
        server.set_mark_price("ETHUSDT", "3000")
        yield server


@pytest.fixture(scope="session")
async def binance_lookup(binance_server):
    """The reconciler's read-only Binance venue, on the local server."""
    credentials = BinanceCredentials(api_key=SecretStr(BINANCE_KEY), api_secret=SecretStr(BINANCE_SECRET))
    binance = BinanceExchange({BINANCE_ACCOUNT: credentials}, base_url=binance_server.base_url)
    yield binance
    await binance.close()


@pytest.fixture(scope="session")
def operator_keys_file(tmp_path_factory) -> Path:
    """The session reconciler's keys file, empty at first: tests add, rotate and revoke keys in it."""
    path = tmp_path_factory.mktemp("operators") / "operator-keys.json"
    path.write_text("{}")
    return path


@pytest.fixture(scope="session")
async def reconciler_runtime(infra, test_database, binance_lookup, operator_keys_file):
    """One reconciler for the session: joining its consumer group costs a rebalance per start.

    Its pending resolver is not started: the tests run it when they mean to (test_pending_resolver)."""
    settings = ReconcilerSettings(
        metrics_port=0,
        outbox_poll_interval_seconds=0.2,
        operator_keys={OPERATOR_ID: SecretStr(OPERATOR_KEY)},
        operator_keys_file=operator_keys_file,
        pending_not_found_window_seconds=PENDING_WINDOW_S,
        admin_reply_part_bytes=REPLY_PART_BYTES,
        **infra.kafka_settings("reconciler"),
    )
    runtime = build_runtime(settings)
    register(runtime, venues={ExchangeName.BINANCE_USDM.value: binance_lookup})
    await runtime.broker.start()
    await runtime.start_relay()
    yield runtime
    await stop_service(runtime)


class TopicReader:
    """Every message of some topics from the beginning, decoded, for filtering by test ids."""

    def __init__(self, consumer: AIOKafkaConsumer, topics) -> None:
        self.consumer = consumer
        self.decoders = {topic.name: topic for topic in topics}
        self.seen: list = []

    async def matching(self, predicate) -> list:
        batches = await self.consumer.getmany(timeout_ms=200)
        for records in batches.values():
            self.seen.extend(self.decoders[r.topic].decode(r.value) for r in records)
        return [m for m in self.seen if predicate(m)]

    async def wait_for(self, predicate, count: int = 1, what: str = "messages") -> list:
        """Until at least `count` messages match: one fetch may not yet hold every partition's records."""

        async def probe():
            found = await self.matching(predicate)
            return found if len(found) >= count else None

        return await eventually(probe, what=what)


@pytest.fixture(scope="session")
async def messages(infra, test_database):
    """Admin replies, ledger commands and events, and executor commands, read with a fresh consumer group."""
    topics = (ADMIN_REPLIES, LEDGER_COMMANDS, LEDGER_EVENTS, EXECUTOR_COMMANDS)
    consumer = AIOKafkaConsumer(
        *(t.name for t in topics),
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=f"t-{uuid.uuid4()}",
        **infra.kafka_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    yield TopicReader(consumer, topics)
    await consumer.stop()
