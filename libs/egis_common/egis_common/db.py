"""Database engines: async SQLAlchemy on asyncpg, one schema per service."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from egis_common.settings import EgisSettings


def make_engine(settings: EgisSettings, *, pool_size: int | None = None) -> AsyncEngine:
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        # Every session works in its own schema; unqualified names resolve there.
        connect_args={"server_settings": {"search_path": settings.db_schema}},
    )
