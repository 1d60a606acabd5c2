"""A tiny service used by the messaging tests: a schema with outbox, inbox and effects."""

from __future__ import annotations

import os

import sqlalchemy as sa
from pydantic import Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from egis_common.failures import failure_columns
from egis_common.outbox import inbox_columns, outbox_columns
from egis_common.settings import EgisSettings
from egis_localinfra.pytest_plugin import TEST_LOGIN

SCHEMA = "probe"


class ProbeSettings(EgisSettings):
    service_name: str = "probe"
    db_schema: str = SCHEMA
    metrics_port: int = 0
    consumer_max_attempts: int = 3
    outbox_poll_interval_seconds: float = 0.2
    # No service of Egis: it uses topics of every service, so it logs in as the test broker's super user
    # (the plugin's test-only variables; a real service never reads them).
    kafka_username: str | None = Field(default_factory=lambda: os.environ.get(TEST_LOGIN[0]))
    kafka_password: SecretStr | None = Field(default_factory=lambda: _secret(os.environ.get(TEST_LOGIN[1])))


def _secret(value: str | None) -> SecretStr | None:
    return None if value is None else SecretStr(value)


metadata = sa.MetaData(schema=SCHEMA)
sa.Table("outbox", metadata, *outbox_columns())
sa.Table("inbox", metadata, *inbox_columns())
sa.Table("consumer_failures", metadata, *failure_columns())
effects = sa.Table(
    "effects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("message_id", sa.Uuid, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(metadata.create_all)


async def record_effect(conn: AsyncConnection, message_id, note: str) -> None:
    await conn.execute(effects.insert().values(message_id=message_id, note=note))


async def count_effects(engine: AsyncEngine, message_id) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.select(sa.func.count()).select_from(effects).where(effects.c.message_id == message_id)
        )
