"""What every service is watched by, against real Kafka and Postgres: consumer lag per group and partition,
the outbox backlog and the age of its oldest row, and dead letters counted from 0 on every topic consumed."""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from egis_common.broker import KafkaRecords, batch_subscriber
from egis_common.contracts import MarkPrice
from egis_common.runtime import build_runtime
from egis_localinfra.testing import eventually, stop_service

sys.path.insert(0, str(Path(__file__).parent))
from probe import ProbeSettings, create_schema  # noqa: E402
from test_messaging_integration import scratch_topic  # noqa: E402, F401 - the fixture

pytestmark = pytest.mark.infra


@pytest.fixture
async def runtime(test_database):
    runtime = build_runtime(ProbeSettings())
    await create_schema(runtime.engine)
    yield runtime
    await stop_service(runtime)


def lag_shown(group: str, topic: str) -> float | None:
    return REGISTRY.get_sample_value("egis_consumer_lag", {"group": group, "topic": topic, "partition": "0"})


async def test_consumer_lag_grows_while_the_consumer_is_stopped_and_falls_to_0_once_it_catches_up(
    scratch_topic,  # noqa: F811 - before runtime: the service stops before its topic goes
    runtime,
):
    topic, _admin = scratch_topic
    group = f"g-{uuid.uuid4()}"
    handled: list[int] = []

    subscriber = batch_subscriber(runtime.broker, topic, group)

    @subscriber
    async def on_records(msg: KafkaRecords) -> None:
        handled.extend(record.offset for record in msg.raw_message)

    await runtime.broker.connect()  # publishes; its subscribers do not start yet
    for n in range(3):
        await runtime.broker.publish(b'{"n": %d}' % n, topic)
    # Never committed: the group would start at the first record, so all three are behind. (A new cluster
    # may have no group coordinator yet: the group is then left out of the measurement.)
    assert await eventually(runtime.show_lag, what="a measurement") == {(group, topic, 0): 3}
    assert lag_shown(group, topic) == 3

    await runtime.broker.start()
    assert REGISTRY.get_sample_value("egis_messages_dead_lettered_total", {"topic": topic}) == 0

    async def caught_up() -> bool:
        return (await runtime.show_lag())[(group, topic, 0)] == 0

    await eventually(caught_up, what="the group committed past every record")
    assert handled == [0, 1, 2] and lag_shown(group, topic) == 0

    await subscriber.stop()
    for n in range(2):
        await runtime.broker.publish(b'{"n": %d}' % n, topic)
    assert await runtime.show_lag() == {(group, topic, 0): 2}
    assert lag_shown(group, topic) == 2

    await subscriber.start()
    await eventually(caught_up, what="the restarted consumer caught up")
    assert handled == [0, 1, 2, 3, 4] and lag_shown(group, topic) == 0


def backlog_shown() -> tuple[float | None, float | None]:
    labels = {"schema": ProbeSettings().db_schema}
    return (
        REGISTRY.get_sample_value("egis_outbox_unpublished", labels),
        REGISTRY.get_sample_value("egis_outbox_oldest_unpublished_age_seconds", labels),
    )


async def test_the_outbox_backlog_and_the_age_of_its_oldest_row_rise_until_the_relay_publishes_them(runtime):
    assert backlog_shown() == (0, 0)  # from the start, before any refresh
    async with runtime.uow.begin() as conn:  # what earlier tests left in the probe's outbox, some on no real topic
        await conn.execute(runtime.outbox.table.delete())
    await runtime.show_backlog()
    assert backlog_shown() == (0, 0)

    old, new = MarkPrice(symbol="OLDUSDT", price=Decimal("1")), MarkPrice(symbol="NEWUSDT", price=Decimal("2"))
    async with runtime.uow.begin() as conn:
        await runtime.outbox.add(conn, old, new)
        table = runtime.outbox.table
        await conn.execute(
            table.update()
            .where(table.c.message_id == old.message_id)
            .values(created_at=sa.func.now() - timedelta(minutes=10))
        )
    await runtime.show_backlog()
    count, oldest_s = backlog_shown()
    assert count == 2
    assert oldest_s is not None and 600 <= oldest_s < 660

    await runtime.relay.publish_pending()
    await runtime.show_backlog()
    assert backlog_shown() == (0, 0)
