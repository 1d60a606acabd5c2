"""Database engines: async SQLAlchemy on asyncpg, one schema per service."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from egis_common.settings import EgisSettings


def make_engine(settings: EgisSettings, *, pool_size: int | None = None, wait_for_flush: bool = True) -> AsyncEngine:
    """wait_for_flush=False: commits return before the WAL reaches the disk (synchronous_commit off).

    Only for writes whose loss in a crash is harmless, such as the outbox relay's published marks:
    a lost mark publishes the row again, and the consumers' inboxes make that a no-op.
    """
    server_settings = {
        "search_path": settings.db_schema,  # unqualified names resolve in the service's schema
        "application_name": settings.service_name,  # pg_stat_activity and the server's logs tell services apart
    }
    if not wait_for_flush:
        server_settings["synchronous_commit"] = "off"
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        connect_args={"server_settings": server_settings},
    )
