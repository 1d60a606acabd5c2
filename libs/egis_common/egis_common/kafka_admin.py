"""Create the registry's topics with their partition counts (idempotent)."""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from egis_common.topics import ALL_TOPICS, DEAD_LETTER_PARTITIONS, DEAD_LETTER_TOPIC


def _new_topics(replication_factor: int) -> list[NewTopic]:
    topics = [
        NewTopic(
            topic.name,
            topic.partitions,
            replication_factor,
            topic_configs={"cleanup.policy": "compact"} if topic.compacted else {},
        )
        for topic in ALL_TOPICS
    ]
    topics.append(NewTopic(DEAD_LETTER_TOPIC, DEAD_LETTER_PARTITIONS, replication_factor))
    return topics


async def ensure_topics(bootstrap_servers: str, *, replication_factor: int = 1, **kafka_options: Any) -> list[str]:
    """Create every missing topic; returns the names created. `kafka_options`: a login allowed to create them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="egis-topics", **kafka_options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in _new_topics(replication_factor) if t.name not in existing]
        if missing:
            response = await admin.create_topics(missing)
            errors = [(name, code) for name, code, *_ in response.topic_errors if code not in (0, 36)]
            if errors:
                raise RuntimeError(f"topic creation failed: {errors}")
        return [t.name for t in missing]
    finally:
        await admin.close()
