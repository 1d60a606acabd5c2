"""Transient or poison: the classification, and the durable attempts and dead letters on a real Postgres."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
import sqlalchemy.exc
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError
from faststream import AckPolicy
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url

from egis_common.broker import subscriber_options
from egis_common.db import make_engine
from egis_common.failures import DeadLetters, PoisonMessage, dead_letter_id, is_transient
from egis_common.outbox import Outbox, UnitOfWork
from egis_common.runtime import build_runtime
from egis_common.topics import DEAD_LETTER_TOPIC
from egis_localinfra.ports import free_port
from egis_localinfra.testing import stop_service

sys.path.insert(0, str(Path(__file__).parent))
from probe import SCHEMA, ProbeSettings, create_schema  # noqa: E402


def _validation_error() -> ValidationError:
    class M(BaseModel):
        x: int

    try:
        M(x="not a number")
    except ValidationError as error:
        return error
    raise AssertionError("unreachable")


def _wrapped(driver_error: Exception) -> sqlalchemy.exc.DBAPIError:
    """What SQLAlchemy raises for a driver error: the driver's error is its `orig`'s cause."""
    adapted = RuntimeError("adapted")
    adapted.__cause__ = driver_error
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, adapted)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(),
        TimeoutError(),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        _wrapped(ConnectionRefusedError(111, "refused")),
        _wrapped(asyncpg.SerializationError("could not serialize access")),
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        KafkaConnectionError("no broker"),
        UnknownTopicOrPartitionError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_unavailable_dependencies_are_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("a bug"),
        KeyError("missing"),
        PoisonMessage("bad"),
        _validation_error(),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.CheckViolationError("violates check constraint"),
        _wrapped(asyncpg.CheckViolationError("violates check constraint")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_everything_else_is_not_transient_by_its_type(error):
    assert not is_transient(error)


def test_subscribers_never_auto_commit():
    options = subscriber_options("g")
    assert options["ack_policy"] is AckPolicy.NACK_ON_ERROR
    assert options["group_id"] == "g"


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None = b"k"
    value: bytes | None = b'{"n": 1}'
    headers: tuple = (("signal_id", b"s-1"),)


@pytest.fixture
async def runtime(test_database):
    runtime = build_runtime(ProbeSettings())
    await create_schema(runtime.engine)
    yield runtime
    await stop_service(runtime)


async def _rows(runtime, record: Record) -> tuple[int | None, int]:
    """(attempts counted, dead letters in the outbox) for one record."""
    async with runtime.engine.connect() as conn:
        attempts = await conn.scalar(
            sa.text(
                f"SELECT attempts FROM {SCHEMA}.consumer_failures WHERE topic = :t AND partition_no = :p "
                "AND record_offset = :o"
            ),
            {"t": record.topic, "p": record.partition, "o": record.offset},
        )
        letters = await conn.scalar(
            sa.text(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE topic = :dlq AND message_id = :id"),
            {"dlq": DEAD_LETTER_TOPIC, "id": dead_letter_id(SCHEMA, record)},
        )
    return attempts, letters


@pytest.mark.infra
async def test_a_poison_record_is_dead_lettered_once_and_a_restart_gives_it_no_fresh_tries(runtime):
    record = Record(f"t-{uuid.uuid4().hex[:8]}", 0, 7)
    first = DeadLetters(3, runtime.uow, runtime.outbox)
    assert await first.count_failure(record, RuntimeError("a bug")) is False
    assert await first.count_failure(record, RuntimeError("a bug")) is False
    assert await _rows(runtime, record) == (2, 0)

    restarted = DeadLetters(3, runtime.uow, runtime.outbox)  # a new process: nothing in memory
    assert await restarted.count_failure(record, RuntimeError("a bug")) is True
    assert await _rows(runtime, record) == (3, 1)
    # Delivered again (the offset commit was lost): it is known dead, and no second copy is written.
    assert await restarted.count_failure(record, RuntimeError("a bug")) is True
    assert await _rows(runtime, record) == (4, 1)


@pytest.mark.infra
async def test_run_retries_a_transient_failure_past_max_attempts_and_never_dead_letters_it(runtime):
    record = Record(f"t-{uuid.uuid4().hex[:8]}", 0, 1)
    dead_letters = DeadLetters(2, runtime.uow, runtime.outbox)
    calls = 0

    async def flaky():
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise ConnectionRefusedError(111, "Connect call failed")
        return "done"

    assert await dead_letters.run(record, flaky) == "done"
    assert calls == 6
    assert await _rows(runtime, record) == (None, 0)


@pytest.mark.infra
async def test_run_dead_letters_a_record_that_fails_max_attempts_times_on_a_healthy_system(runtime):
    record = Record(f"t-{uuid.uuid4().hex[:8]}", 2, 40)
    dead_letters = DeadLetters(3, runtime.uow, runtime.outbox)
    calls = 0

    async def buggy():
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug")

    assert await dead_letters.run(record, buggy) is None
    assert calls == 3
    assert await _rows(runtime, record) == (3, 1)
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(f"SELECT key, payload, headers FROM {SCHEMA}.outbox WHERE message_id = :id"),
                {"id": dead_letter_id(SCHEMA, record)},
            )
        ).one()
    assert row.key == b"k" and row.payload == b'{"n": 1}'
    assert row.headers["x-dlq-topic"] == record.topic and row.headers["x-dlq-offset"] == "40"
    assert row.headers["x-dlq-attempts"] == "3" and "a bug" in row.headers["x-dlq-error"]
    assert row.headers["signal_id"] == "s-1", "the record's own headers travel with it"


@pytest.mark.infra
async def test_an_unparseable_record_is_dead_lettered_at_the_first_failure(runtime):
    record = Record(f"t-{uuid.uuid4().hex[:8]}", 0, 3)
    dead_letters = DeadLetters(5, runtime.uow, runtime.outbox)
    await dead_letters.dead_letter_now(record, _validation_error())
    assert await _rows(runtime, record) == (1, 1)


@pytest.mark.infra
async def test_an_unexpected_error_while_the_database_does_not_answer_is_transient(runtime, test_database):
    nobody_listens = make_url(test_database.url).set(port=free_port())
    settings = ProbeSettings(database_url=nobody_listens.render_as_string(hide_password=False))
    engine = make_engine(settings)
    try:
        down = DeadLetters(3, UnitOfWork(engine, runtime.relay), Outbox(SCHEMA))
        assert not await down.healthy()
        assert await down.transient(RuntimeError("a bug, or the database going away?"))
        assert not await down.transient(_validation_error()), "a record that does not parse is poison regardless"
    finally:
        await engine.dispose()
    up = DeadLetters(3, runtime.uow, runtime.outbox)
    assert await up.healthy()
    assert not await up.transient(RuntimeError("a bug"))
