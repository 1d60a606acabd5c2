"""Consumer lag: how many records each of a service's consumer groups has yet to commit, per partition.

Measured from outside the consumers, as an operator's tool would: the group's committed offsets (an
admin client's OffsetFetch) against the partitions' end offsets (a consumer of no group, which never
joins or commits anything). A group whose consumer stopped therefore still shows its lag, growing.
A partition the group never committed counts from its first record, where the group would start
(`auto_offset_reset="earliest"`). Batch subscribers commit in the background (at most once a second),
so a lag of a few records on a busy partition is normal.

Labels are bounded: the groups and topics are those the service subscribes, the partitions those of
its topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from egis_common.logs import get_logger
from egis_common.metrics import CONSUMER_LAG

log = get_logger(__name__)

# One measurement may not take longer: a broker that stopped answering must not pile measurements up.
MEASURE_TIMEOUT_SECONDS = 10.0

Groups = Mapping[str, Iterable[str]]  # consumer group -> the topics it subscribes
Lag = dict[tuple[str, str, int], int]  # (group, topic, partition) -> records not yet committed


def subscribed_groups(brokers: Iterable[Any]) -> dict[str, set[str]]:
    """The consumer groups of the brokers' subscribers and their topics (subscribers without a group left out)."""
    groups: dict[str, set[str]] = {}
    for broker in brokers:
        for subscriber in broker.subscribers:
            group = getattr(subscriber, "group_id", None)
            if group:
                groups.setdefault(group, set()).update(subscriber.topic_names)
    return groups


class ConsumerLag:
    """Measures the lag of the given consumer groups and shows it on `egis_consumer_lag`."""

    def __init__(
        self, bootstrap_servers: str, *, client_id: str, kafka_options: Mapping[str, Any] | None = None
    ) -> None:
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            **(kafka_options or {}),
        }
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._shown: set[tuple[str, str, int]] = set()
        self._unmeasured: set[str] = set()  # groups whose committed offsets the last measurement did not get

    async def refresh(self, groups: Groups) -> Lag:
        """Measure, and show what was measured; a partition no longer subscribed drops out, one not measured
        this time keeps what it showed."""
        async with asyncio.timeout(MEASURE_TIMEOUT_SECONDS):
            lag = await self.measure(groups)
        unmeasured = {key for key in self._shown if key[0] in self._unmeasured}
        for group, topic, partition in self._shown - lag.keys() - unmeasured:
            CONSUMER_LAG.remove(group, topic, str(partition))
        for (group, topic, partition), records in lag.items():
            CONSUMER_LAG.labels(group, topic, str(partition)).set(records)
        self._shown = set(lag) | unmeasured
        return lag

    async def measure(self, groups: Groups) -> Lag:
        wanted = {group: sorted(set(topics)) for group, topics in groups.items()}
        topics = sorted({topic for names in wanted.values() for topic in names})
        if not topics:
            return {}
        admin, offsets = await self._clients()
        partitions = {
            topic["topic"]: [TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]]
            for topic in await admin.describe_topics(topics)
            if topic["error_code"] == 0
        }
        every = [tp for tps in partitions.values() for tp in tps]
        ends = await offsets.end_offsets(every)
        starts = await offsets.beginning_offsets(every)
        lag: Lag = {}
        self._unmeasured = set()
        for group, names in wanted.items():
            own = [tp for topic in names for tp in partitions.get(topic, [])]
            if not own:
                continue
            try:
                committed = await admin.list_consumer_group_offsets(group, partitions=own)
            except KafkaError as error:
                if not error.retriable:
                    raise
                # No coordinator for the group yet (a new cluster, a broker restarting): the next round tries again.
                log.warning("consumer_lag_not_measured", group=group, error=repr(error))
                self._unmeasured.add(group)
                continue
            for tp in own:
                offset = committed[tp].offset if tp in committed else -1
                position = max(offset, starts[tp])  # none committed (-1), or behind retention: the first record
                lag[(group, tp.topic, tp.partition)] = max(ends[tp] - position, 0)
        return lag

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self._options)
            await admin.start()
            self._admin = admin
        if self._offsets is None:
            offsets = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._options)
            await offsets.start()
            self._offsets = offsets
        return self._admin, self._offsets

    async def close(self) -> None:
        admin, offsets, self._admin, self._offsets = self._admin, self._offsets, None, None
        if offsets is not None:
            await offsets.stop()
        if admin is not None:
            await admin.close()
