"""Transient or poison: what a handler's failure says about trying again.

A failure is transient when a dependency was unavailable: the database down,
refusing connections or shutting down, a connection reset, a serialization
failure or deadlock, Kafka unavailable, a timeout. Trying again later can only
help, so a transient failure is retried, with capped exponential backoff and
jitter, while the partition waits; it never counts towards a dead letter.

Everything else is a candidate poison record, but only if the system is
healthy when it fails: an unexpected error while the database does not answer
is taken as transient too. A record that parses but fails on a healthy system
is tried a few times (a race can resolve itself) and then dead-lettered; one
that does not parse is dead-lettered at once. Attempts and the dead letter are
recorded in the service's own schema (`consumer_failures`, and the dead letter
itself as an outbox row keyed by the record's coordinates), so a restart does
not hand a poison record fresh tries and a record is dead-lettered once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import sqlalchemy as sa
import sqlalchemy.exc
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from egis_common.logs import get_logger
from egis_common.metrics import DEAD_LETTERED
from egis_common.topics import DEAD_LETTER_TOPIC

if TYPE_CHECKING:
    from alembic.operations import Operations
    from sqlalchemy.ext.asyncio import AsyncEngine

    from egis_common.outbox import Outbox, UnitOfWork

log = get_logger(__name__)
R = TypeVar("R")

# SQLSTATEs (whole classes, or single codes) of a database that is unavailable or busy, not of a bad record:
# connection exceptions, insufficient resources, operator intervention (shutdown, cannot connect now, query
# cancelled), serialization failures and deadlocks, a lock not available.
TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57", "40001", "40P01", "55P03")
# Backoff between tries while a dependency is unavailable: random in [0, min(MAX, MULTIPLIER * 2^n)] seconds.
# The cap is how late a waiting handler may notice that the dependency is back, and every stage of the pipeline
# waits on its own, so it stays small; a try is one cheap connection attempt, so a few a second cost nothing.
BACKOFF_MULTIPLIER_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 2.0
# How long one delivery of a batch is held while its failures stay transient. After that the handler gives up
# on this delivery: the consumer seeks back and fetches the same records again, so the partition still waits,
# but Kafka sees the consumer poll well within its max poll interval (300 s) and keeps its partitions.
HOLD_SECONDS = 120.0
# Seconds the health probe may take before the database counts as not answering.
PROBE_TIMEOUT_SECONDS = 5.0


class PoisonMessage(Exception):
    """A handler's verdict that retrying this message can never succeed."""


def is_transient(error: BaseException) -> bool:
    """True when `error`, or anything in its chain, says a dependency was unavailable."""
    return any(_transient_alone(e) for e in _chain(error))


def _transient_alone(error: BaseException) -> bool:
    if isinstance(error, (PoisonMessage, ValidationError)):
        return False
    if isinstance(
        error,
        (
            OSError,
            TimeoutError,
            asyncio.TimeoutError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            sqlalchemy.exc.TimeoutError,
        ),
    ):
        return True  # ConnectionRefusedError, ConnectionResetError and the like are OSErrors
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, KafkaError):
        return bool(getattr(error, "retriable", False)) or type(error).__name__ in (
            "KafkaConnectionError",
            "KafkaTimeoutError",
        )
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(TRANSIENT_SQLSTATE_PREFIXES)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's wrapper keeps the driver's error here
        if isinstance(orig, BaseException) and id(orig) not in seen:
            yield from _chain(orig)
        current = current.__cause__ or current.__context__


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _TryAgain) and not isinstance(error, _Transient):
            return  # a failure on a healthy system: count_failure logged it
        if isinstance(error, _TryAgain):
            error = error.__cause__
        log.warning(
            "dependency_unavailable_will_retry",
            what=what,
            attempt=state.attempt_number,
            waiting_s=round(state.upcoming_sleep, 3),
            error=repr(error),
        )

    return before_sleep


def transient_retrying(what: str, *, hold_seconds: float = HOLD_SECONDS) -> AsyncRetrying:
    """Retry while the failure is transient (by its type), for at most `hold_seconds`; then re-raise it."""
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_random_exponential(multiplier=BACKOFF_MULTIPLIER_SECONDS, max=BACKOFF_MAX_SECONDS),
        stop=stop_after_delay(hold_seconds),
        before_sleep=_log_retry(what),
        reraise=True,
    )


def failure_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition_no", sa.Integer, primary_key=True),
        sa.Column("record_offset", sa.BigInteger, primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True),
    ]


def create_failures_table(op: Operations, schema: str) -> None:
    """For a service's Alembic migration: the table that counts a record's failures on a healthy system."""
    op.create_table("consumer_failures", *failure_columns(), schema=schema)
    op.create_index("consumer_failures_last_failed_at", "consumer_failures", ["last_failed_at"], schema=schema)


def drop_failures_table(op: Operations, schema: str) -> None:
    op.drop_table("consumer_failures", schema=schema)


def dead_letter_id(schema: str, record: Any) -> uuid.UUID:
    """The outbox id of a record's dead letter: one per record and consuming schema, however often it fails."""
    return uuid.uuid5(
        uuid.NAMESPACE_URL, f"egis-dead-letter:{schema}/{record.topic}/{record.partition}/{record.offset}"
    )


class DeadLetters:
    """Runs a record's handler until it succeeds or the record is dead-lettered; never dead-letters a transient
    failure. The service's schema keeps the attempts and, through its outbox, the dead letter itself."""

    def __init__(
        self, max_attempts: int, uow: UnitOfWork, outbox: Outbox, *, hold_seconds: float = HOLD_SECONDS
    ) -> None:
        self.max_attempts = max_attempts
        self.uow = uow
        self.outbox = outbox
        self.hold_seconds = hold_seconds
        self.schema = outbox.schema
        self.table = sa.Table("consumer_failures", sa.MetaData(), *failure_columns(), schema=self.schema)

    async def healthy(self) -> bool:
        """Whether the database answers now: an error while it does not is no evidence against the record."""
        engine: AsyncEngine = self.uow.engine
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS), engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    async def transient(self, error: BaseException) -> bool:
        if isinstance(error, (PoisonMessage, ValidationError)):
            return False
        return is_transient(error) or not await self.healthy()

    async def retry_transient(self, what: str, call: Callable[[], Awaitable[R]]) -> R:
        """`call()` again while its failures are transient, for at most hold_seconds; any other failure at once."""
        async for attempt in self._retrying(what, stop=stop_after_delay(self.hold_seconds)):
            with attempt:
                try:
                    return await call()
                except Exception as error:
                    if await self.transient(error):
                        raise _Transient(error) from error
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def run(self, record: Any, call: Callable[[], Awaitable[R]]) -> R | None:
        """`call()` for one record: transient failures are waited out; poison is counted, then dead-lettered.

        Returns None when the record was dead-lettered (now or before), else what `call` returned.
        """
        async for attempt in self._retrying(
            f"{record.topic}/{record.partition}/{record.offset}", stop=stop_after_delay(self.hold_seconds)
        ):
            with attempt:
                try:
                    return await call()
                except Exception as error:
                    if await self.transient(error):
                        raise _Transient(error) from error
                    if await self.count_failure(record, error):
                        return None
                    raise _TryAgain(error) from error  # a few more tries: a race can resolve itself
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def count_failure(self, record: Any, error: BaseException) -> bool:
        """Count one failure of `record` on a healthy system; True once it is dead-lettered (now or earlier)."""
        immediate = isinstance(error, (PoisonMessage, ValidationError))

        async def count() -> bool:
            async with self.uow.begin() as conn:
                attempts, already = (
                    await conn.execute(
                        self._upsert,
                        {
                            "topic": record.topic,
                            "partition_no": record.partition,
                            "record_offset": record.offset,
                            "error": _describe(error),
                        },
                    )
                ).one()
                if already is not None:
                    return True
                if not immediate and attempts < self.max_attempts:
                    log.warning(
                        "handler_failed_will_retry",
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        attempts=attempts,
                        error=repr(error),
                    )
                    return False
                await self._dead_letter(conn, record, error, attempts)
            DEAD_LETTERED.labels(record.topic).inc()
            log.error(
                "message_dead_lettered",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                attempts=attempts,
                error=repr(error),
            )
            return True

        return await self.retry_transient("count_failure", count)

    async def dead_letter_now(self, record: Any, error: BaseException) -> None:
        """A record that cannot be handled at all (it does not parse): dead-lettered at once, once."""
        await self.count_failure(
            record, error if isinstance(error, (PoisonMessage, ValidationError)) else PoisonMessage(repr(error))
        )

    async def _dead_letter(self, conn: Any, record: Any, error: BaseException, attempts: int) -> None:
        await conn.execute(
            self.table.update()
            .where(
                self.table.c.topic == record.topic,
                self.table.c.partition_no == record.partition,
                self.table.c.record_offset == record.offset,
            )
            .values(dead_lettered_at=sa.func.now())
        )
        headers = {
            **{k: v.decode(errors="replace") for k, v in (record.headers or ()) if k != "content-type"},
            "x-dlq-topic": record.topic,
            "x-dlq-partition": str(record.partition),
            "x-dlq-offset": str(record.offset),
            "x-dlq-attempts": str(attempts),
            "x-dlq-error": _describe(error),
        }
        await self.outbox.add_raw(
            conn,
            message_id=dead_letter_id(self.schema, record),
            topic=DEAD_LETTER_TOPIC,
            key=record.key,
            payload=record.value or b"",
            headers=headers,
        )

    @property
    def _upsert(self) -> sa.TextClause:
        name = f"{self.schema}.consumer_failures"
        return sa.text(
            f"INSERT INTO {name} AS f (topic, partition_no, record_offset, attempts, error) "
            "VALUES (:topic, :partition_no, :record_offset, 1, :error) "
            "ON CONFLICT (topic, partition_no, record_offset) DO UPDATE "
            "SET attempts = f.attempts + 1, error = excluded.error, last_failed_at = now() "
            "RETURNING attempts, dead_lettered_at"
        )

    def _retrying(self, what: str, *, stop: Any) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, _TryAgain)),
            wait=wait_random_exponential(multiplier=BACKOFF_MULTIPLIER_SECONDS, max=BACKOFF_MAX_SECONDS),
            stop=stop,
            before_sleep=_log_retry(what),
            retry_error_callback=_reraise_cause,
        )


class _TryAgain(Exception):
    """Wraps a failure worth another try; its cause is what gets raised when the tries run out."""


class _Transient(_TryAgain):
    """A failure because a dependency was unavailable."""


def _reraise_cause(state: RetryCallState) -> Any:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, _TryAgain) and error.__cause__ is not None:
        raise error.__cause__
    if error is not None:
        raise error
    return None


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]
