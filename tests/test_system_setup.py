"""What `prepare_system` leaves behind on real Kafka and Postgres."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from egis_common.migrations import SERVICE_SCHEMAS
from egis_common.setup import prepare_system
from egis_common.topics import ALL_TOPICS, BOTS, DEAD_LETTER_TOPIC

pytestmark = pytest.mark.infra


@pytest.fixture
async def admin(infra, test_database):
    client = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap, **infra.kafka_options())
    await client.start()
    yield client
    await client.close()


async def test_every_registry_topic_exists_with_its_partition_count(admin):
    described = {t["topic"]: t for t in await admin.describe_topics([t.name for t in ALL_TOPICS] + [DEAD_LETTER_TOPIC])}
    for topic in ALL_TOPICS:
        assert described[topic.name]["error_code"] == 0, topic.name
        assert len(described[topic.name]["partitions"]) == topic.partitions, topic.name
    assert described[DEAD_LETTER_TOPIC]["error_code"] == 0


async def test_the_bots_topic_is_compacted(admin):
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, BOTS.name)])
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert configs["cleanup.policy"] == "compact"


async def test_each_service_has_its_own_schema_with_outbox_inbox_and_migration_history(test_database):
    connection = await asyncpg.connect(test_database.dsn)
    try:
        rows = await connection.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY($1::text[])",
            list(SERVICE_SCHEMAS.values()),
        )
        tables = {(r["table_schema"], r["table_name"]) for r in rows}
        for schema in SERVICE_SCHEMAS.values():
            assert {(schema, "outbox"), (schema, "inbox"), (schema, "alembic_version")} <= tables, schema
            version = await connection.fetchval(f'SELECT version_num FROM "{schema}".alembic_version')
            assert version.startswith(schema)
    finally:
        await connection.close()


async def test_setup_is_idempotent(test_database, infra):
    import asyncio

    created = await asyncio.to_thread(prepare_system, test_database.url, infra.kafka_bootstrap, **infra.kafka_options())
    assert created == []
