"""The admin client stops the Kafka clients it started, whatever fails on the way: a broker that is not there, a
login refused the reply topic, a wait cut short. Each failure reaches the caller as itself, and nothing is left
open: no unclosed-client warning when the clients are collected, no task of theirs still running."""

from __future__ import annotations

import asyncio
import gc
import socket
import uuid

import pytest
from aiokafka.errors import KafkaConnectionError

from egis_common import admin_client
from egis_common import contracts as c
from egis_common.kafka_admin import ensure_topics


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def topics(infra):
    """The admin topics exist, as on any running system: a fresh test broker has none yet."""
    await ensure_topics(infra.kafka_bootstrap, **infra.kafka_options())
    return infra


def drift_report() -> c.AdminCommand:
    command = c.AdminCommand(
        request_id=uuid.uuid4(),
        command=c.AdminCommandName.DRIFT_REPORT,
        confirm=False,
        bot_id=None,
        operator_id="nobody",
        signature="",
    )
    return admin_client.signed(command, "not a key the reconciler knows")


async def left_open(recwarn: pytest.WarningsRecorder, tasks_before: set[asyncio.Task]) -> list[str]:
    """What the request left behind: unclosed-client warnings once its clients are collected, and its tasks."""
    await asyncio.sleep(0)  # a task the clients cancelled ends on the next turn of the loop
    gc.collect()
    warned = [str(w.message) for w in recwarn if issubclass(w.category, ResourceWarning)]
    tasks = [repr(t) for t in asyncio.all_tasks() - tasks_before if t is not asyncio.current_task()]
    return warned + tasks


async def test_a_broker_that_is_not_there_is_a_connection_error_and_leaves_nothing_open(recwarn):
    before = asyncio.all_tasks()
    bootstrap = f"127.0.0.1:{closed_port()}"
    with pytest.raises(KafkaConnectionError, match=f"Unable to bootstrap from .*{bootstrap.split(':')[1]}"):
        await admin_client.request(bootstrap, drift_report(), timeout_s=5)
    assert await left_open(recwarn, before) == []


@pytest.mark.infra
async def test_a_login_that_may_not_read_the_replies_is_told_so_at_once_and_leaves_nothing_open(topics, recwarn):
    if not topics.kafka_logins:
        pytest.skip("a broker without authentication refuses no topic")
    before = asyncio.all_tasks()
    # The price feed's principal writes mark prices and reads nothing: its consumer starts, but the reply topic's
    # offsets would be awaited forever (aiokafka asks for its metadata again and again).
    with pytest.raises(admin_client.RepliesUnreadable, match="may not read egis.reconciler.admin-replies.v1"):
        await asyncio.wait_for(
            admin_client.request(topics.kafka_bootstrap, drift_report(), 5, topics.kafka_options("prices")), timeout=30
        )
    assert await left_open(recwarn, before) == []


class WaitCutShort(Exception):
    pass


@pytest.mark.infra
async def test_a_wait_cut_short_goes_on_as_itself_and_leaves_nothing_open(topics, recwarn):
    before = asyncio.all_tasks()
    waited: list[float] = []

    def waiting(seconds: float) -> None:
        waited.append(seconds)
        raise WaitCutShort  # as a person's Ctrl-C or a progress display that fails would

    with pytest.raises(WaitCutShort):
        await asyncio.wait_for(
            admin_client.request(topics.kafka_bootstrap, drift_report(), 30, topics.kafka_options("operator"), waiting),
            timeout=60,
        )
    assert len(waited) == 1 and await left_open(recwarn, before) == []


@pytest.mark.infra
async def test_a_cancelled_request_leaves_nothing_open(topics, recwarn):
    before = asyncio.all_tasks()
    started = asyncio.Event()
    request = asyncio.create_task(
        admin_client.request(
            topics.kafka_bootstrap,
            drift_report(),
            30,
            topics.kafka_options("operator"),
            lambda _seconds: started.set(),
        )
    )
    await asyncio.wait_for(started.wait(), timeout=30)  # the command is out; the reply is awaited
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert await left_open(recwarn, before) == []
