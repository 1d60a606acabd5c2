"""Alembic, one migration history per service, each in its own schema.

A service's `migrations/env.py` calls `run_env()`; code (the services at
start-up, the tests, `egis-migrate`) calls `upgrade()`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

SERVICES_DIR = Path(__file__).resolve().parents[3] / "services"
SERVICE_SCHEMAS = {
    "signal_router": "signal_router",
    "executor": "executor",
    "ledger": "ledger",
    "reconciler": "reconciler",
}


def alembic_config(service: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = SERVICE_SCHEMAS[service]
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Bring one service's schema to `revision`. Runs its own event loop: call from sync code."""
    command.upgrade(alembic_config(service, database_url), revision)


async def upgrade_async(service: str, database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, service, database_url, revision)


def run_env() -> None:
    """Body of every service's `migrations/env.py`."""
    url = context.config.attributes["database_url"]
    schema = context.config.attributes["schema"]
    asyncio.run(_run_online(url, schema))


async def _run_online(url: str, schema: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_migrate, schema)
    finally:
        await engine.dispose()


def _migrate(connection: sa.Connection, schema: str) -> None:
    context.configure(
        connection=connection,
        version_table_schema=schema,
        include_schemas=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """`egis-migrate [service ...]`: upgrade the given services (all by default) to head."""
    import os
    import sys

    url = os.environ.get("EGIS_DATABASE_URL")
    if not url:
        sys.exit("EGIS_DATABASE_URL is not set")
    for service in sys.argv[1:] or list(SERVICE_SCHEMAS):
        upgrade(service, url)
        print(f"{service}: migrated to head")
