"""Database engines: async SQLAlchemy on asyncpg, one schema per service."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from egis_common.settings import EgisSettings


def make_engine(settings: EgisSettings, *, pool_size: int | None = None, wait_for_flush: bool = True) -> AsyncEngine:
    """wait_for_flush=False: commits return before the WAL reaches the disk (synchronous_commit off).

    Only for writes whose loss in a crash is harmless, such as the outbox relay's published marks:
    a lost mark publishes the row again, and the consumers' inboxes make that a no-op.
    """
    server_settings = _server_settings(settings)
    if not wait_for_flush:
        server_settings["synchronous_commit"] = "off"
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        connect_args={"server_settings": server_settings},
    )


async def make_raw_pool(settings: EgisSettings, *, size: int) -> asyncpg.Pool:
    """asyncpg alone, for a hot read where SQLAlchemy's pool and statement layers would cost the calling process
    several times the CPU of the query itself (bench/executor/statement_cost.py)."""
    dsn = libpq_dsn(settings.database_url.get_secret_value())
    return await asyncpg.create_pool(dsn, min_size=1, max_size=size, server_settings=_server_settings(settings))


def libpq_dsn(url: URL | str) -> str:
    """The SQLAlchemy URL as asyncpg (libpq) takes it."""
    if isinstance(url, str):
        return url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _server_settings(settings: EgisSettings) -> dict[str, str]:
    return {
        "search_path": settings.db_schema,  # unqualified names resolve in the service's schema
        "application_name": settings.service_name,  # pg_stat_activity and the server's logs tell services apart
    }
