"""When the system has nothing left to do: no consumer behind, no outbox row waiting, nothing in flight.

Quiet means, in two polls a second apart with nothing changed between them: every
consumer group has committed up to the end of every partition it reads (lag 0),
every outbox row is published, and no intent, position or pending record is in
an intermediate state. The time to quiescence is measured from a given moment
(the later of the load's end and the fault's end) to the first of those polls.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from evidence import SCHEMAS, partitions_of

POLL_S = 0.5
STABLE_S = 1.0
IN_FLIGHT_SQL = """
SELECT (SELECT count(*) FROM executor.intents WHERE status IN
          ('received', 'preflight_requested', 'reserved', 'submitting', 'pending_reconciliation',
           'resend_due')) AS intents,
       (SELECT count(*) FROM ledger.positions WHERE status IN ('opening', 'closing')) AS positions,
       (SELECT count(*) FROM executor.pending_reconciliations WHERE resolved_at IS NULL) AS pending,
       (SELECT count(*) FROM executor.intents) AS all_intents,
       (SELECT count(*) FROM ledger.positions WHERE status IN ('closed', 'failed')) AS settled,
       {outbox} AS unpublished
"""


@dataclass(frozen=True)
class Snapshot:
    lag: int
    unpublished: int
    in_flight: int  # intents, positions and pending records in an intermediate state
    progress: tuple  # counts that change while work goes on
    error: str = ""
    behind: tuple[tuple[str, str, int], ...] = ()  # (group, topic, records) for each group with lag

    @property
    def quiet(self) -> bool:
        return not self.error and self.lag == 0 and self.unpublished == 0 and self.in_flight == 0

    def describe(self) -> str:
        behind = "".join(f"; {group} behind on {topic} by {records}" for group, topic, records in self.behind[:5])
        return self.error or (
            f"lag {self.lag}, unpublished outbox rows {self.unpublished}, in flight {self.in_flight}{behind}"
        )


async def wait_until_quiet(
    dsn: str, bootstrap: str, since: float, timeout_s: float, login: dict | None = None
) -> tuple[float | None, Snapshot]:
    """(seconds from `since` to quiet, or None after `timeout_s`; the last snapshot)."""
    deadline = since + timeout_s
    quiet_since, previous = None, None
    probe = _Probe(dsn, bootstrap, login or {})
    try:
        while True:
            snapshot = await probe.snapshot()
            now = time.time()
            if snapshot.quiet and previous is not None and snapshot == previous:
                quiet_since = quiet_since or now - POLL_S
                if now - quiet_since >= STABLE_S:
                    return round(max(0.0, quiet_since - since), 2), snapshot
            else:
                quiet_since = None
            previous = snapshot
            if now > deadline:
                return None, snapshot
            await asyncio.sleep(POLL_S)
    finally:
        await probe.close()


class _Probe:
    """Kafka clients and a database connection kept across polls, made again after any failure."""

    def __init__(self, dsn: str, bootstrap: str, login: dict) -> None:
        self.dsn, self.bootstrap, self.login = dsn, bootstrap, login
        self.admin = self.consumer = self.connection = None

    async def snapshot(self) -> Snapshot:
        try:
            async with asyncio.timeout(10):
                behind = await self._lag()
                row = await self._database()
        except Exception as error:  # the fault may still be on: a failed probe is simply not quiet
            await self.close()
            return Snapshot(-1, -1, -1, (), f"probe failed: {type(error).__name__}: {error}"[:200])
        in_flight = row["intents"] + row["positions"] + row["pending"]
        return Snapshot(
            sum(records for *_, records in behind),
            row["unpublished"],
            in_flight,
            (row["all_intents"], row["settled"]),
            behind=tuple(behind),
        )

    async def _lag(self) -> list[tuple[str, str, int]]:
        if self.admin is None:
            self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000, **self.login)
            await self.admin.start()
            self.consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, **self.login, request_timeout_ms=5000
            )
            await self.consumer.start()
        committed: dict[TopicPartition, int] = {}
        topics = set()
        for group, _ in await self.admin.list_consumer_groups():
            for tp, meta in (await self.admin.list_consumer_group_offsets(group)).items():
                committed[(group, tp)] = meta.offset
                topics.add(tp.topic)
        groups_of: dict[str, set[str]] = {}
        for group, tp in committed:
            groups_of.setdefault(tp.topic, set()).add(group)
        partitions = [TopicPartition(t, p) for t in topics for p in range(partitions_of(t))]
        ends = await self.consumer.end_offsets(partitions)
        # A partition a group reads but never committed on counts from 0: all of it is unread.
        behind: dict[tuple[str, str], int] = {}
        for tp, end in ends.items():
            for group in groups_of.get(tp.topic, ()):
                if records := max(0, end - committed.get((group, tp), 0)):
                    behind[(group, tp.topic)] = behind.get((group, tp.topic), 0) + records
        return sorted(((group, topic, records) for (group, topic), records in behind.items()), key=lambda b: -b[2])

    async def _database(self) -> asyncpg.Record:
        if self.connection is None:
            self.connection = await asyncpg.connect(self.dsn, timeout=5)
        outbox = " + ".join(f"(SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL)" for s in SCHEMAS)
        return await self.connection.fetchrow(IN_FLIGHT_SQL.format(outbox=outbox))

    async def close(self) -> None:
        for client in (self.admin, self.consumer):
            if client is not None:
                try:
                    await (client.close() if client is self.admin else client.stop())
                except Exception:  # noqa: BLE001 - closing a client of a broker that is gone
                    pass
        if self.connection is not None:
            self.connection.terminate()
        self.admin = self.consumer = self.connection = None
