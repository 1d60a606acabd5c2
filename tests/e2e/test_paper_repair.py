"""reconcile-paper-positions across the two services: the reconciler finds the paper venue's rows astray, the
executor, whose schema holds them, writes them over Kafka, and the run records what was really changed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from egis_common import contracts as c
from egis_common.runtime import Runtime, build_runtime
from egis_common.topics import PAPER_REPAIRS
from egis_localinfra.testing import eventually
from egis_venues.paper import tables as paper_tables
from egis_venues.port import Filled, MarketOrder, OrderSide
from reconciler import auth
from reconciler.adapters import runs
from reconciler.admin import Admin
from reconciler.flow import build_admin
from reconciler.settings import ReconcilerSettings

pytestmark = pytest.mark.infra
D = Decimal
OPERATOR_ID, OPERATOR_KEY = "e2e-ops", "e2e-operator-key-" + uuid.uuid4().hex
RECONCILE = c.AdminCommandName.RECONCILE_PAPER_POSITIONS


@pytest.fixture(scope="module")
async def reconciler(infra, executor) -> AsyncIterator[tuple[Runtime, Admin]]:
    """The reconciler's admin, its outbox relayed, without its consumers: another package's reconciler may be
    in its consumer group, and would take the admin topic's one partition."""
    settings = ReconcilerSettings(
        metrics_port=0,
        outbox_poll_interval_seconds=0.2,
        log_level="WARNING",
        operator_keys={OPERATOR_ID: SecretStr(OPERATOR_KEY)},
        **infra.kafka_settings("reconciler"),
    )
    runtime = build_runtime(settings)
    await runtime.start_relay()
    yield runtime, build_admin(runtime)
    await runtime.stop()


class Tail:
    """The executor's answers from the moment it starts: assigned partitions, no consumer group."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer, self.seen = consumer, []

    async def wait_for(self, predicate, what: str) -> list:
        async def probe():
            for records in (await self.consumer.getmany(timeout_ms=100)).values():
                self.seen.extend(PAPER_REPAIRS.decode(r.value) for r in records)
            return [m for m in self.seen if predicate(m)] or None

        return await eventually(probe, what=what)


@pytest.fixture
async def answers(infra, test_database) -> AsyncIterator[Tail]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False, group_id=None, **infra.kafka_options()
    )
    await consumer.start()
    partition = TopicPartition(PAPER_REPAIRS.name, 0)
    consumer.assign([partition])
    await consumer.seek_to_end(partition)
    await consumer.position(partition)
    yield Tail(consumer)
    await consumer.stop()


async def confirmed_run(reconciler, answers: Tail) -> dict:
    """A confirmed reconcile-paper-positions, handled as the reconciler's admin subscriber handles it; the
    executor's answer completes it (here, or in another reconciler of the session: either way, once)."""
    runtime, admin = reconciler
    command = auth.signed(
        c.AdminCommand(request_id=uuid.uuid4(), command=RECONCILE, confirm=True, operator_id=OPERATOR_ID, signature=""),
        OPERATOR_KEY,
    )
    prepared = await admin.prepare(command)
    async with runtime.uow.begin() as conn:
        immediate = await admin.commit(conn, command, prepared)
    if not immediate:
        [answer] = await answers.wait_for(lambda m: m.request_id == command.request_id, what="the executor's answer")
        async with runtime.uow.begin() as conn:
            await admin.complete_paper_repairs(conn, [answer])
    async with runtime.engine.connect() as conn:
        run = await runs.stored(conn, command.request_id)
    assert run.status == "ok", run.status
    return run.report


async def trade(paper, account: str, symbol: str, side: OrderSide, qty: str) -> Filled:
    order = MarketOrder(account, symbol, side, D(qty), f"ego-{uuid.uuid4().hex[:20]}", reduce_only=False)
    outcome = await paper.place_market_order(order)
    assert isinstance(outcome, Filled), outcome
    return outcome


async def test_the_executor_writes_the_rows_the_reconciler_found_astray_and_the_run_says_so(
    executor, reconciler, answers
):
    paper, engine = executor.wiring.exchanges[c.ExchangeName.PAPER], executor.runtime.engine
    symbol, account = f"T{uuid.uuid4().hex[:8].upper()}USDT", f"paper-{uuid.uuid4().hex[:10]}"
    await paper.set_mark_price(symbol, D("200"))
    await trade(paper, account, symbol, OrderSide.SELL, "0.1")
    p = paper_tables.positions
    async with engine.begin() as conn:  # the row lost behind the venue's back
        await conn.execute(p.delete().where(p.c.account == account, p.c.symbol == symbol))

    report = await confirmed_run(reconciler, answers)
    [line] = [entry for entry in report["positions"] if entry["account"] == account]
    assert (line["action"], line["changed"]) == ("create", True)
    assert await paper.position(account, symbol) == (D("-0.1"), D("200"))
    closed = await trade(paper, account, symbol, OrderSide.BUY, "0.1")  # the venue trades on from the repaired row
    assert closed.executed_qty == D("0.1") and await paper.position(account, symbol) == (0, 0)

    again = await confirmed_run(reconciler, answers)
    [line] = [entry for entry in again["positions"] if entry["account"] == account]
    assert (line["action"], line["changed"]) == ("none", False)
