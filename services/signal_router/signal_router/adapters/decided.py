"""The gateway's duplicate check: one primary-key read of the router's dedup table, bounded in time.

A read that fails or takes longer than its budget answers "not known": the
signal is published as usual, and the router's dedup still makes a duplicate
of it. So a slow or absent database costs the webhook at most the budget.

Every webhook takes this read, so it runs on a small asyncpg pool of its own
(`make_raw_pool`), not through SQLAlchemy, whose layers would cost the
gateway's event loop several times the query's own CPU and show in its latency
(bench/signal_router/gateway_latency.py).
"""

from __future__ import annotations

import asyncio

import asyncpg

from egis_common.db import make_raw_pool
from egis_common.logs import get_logger
from egis_common.settings import EgisSettings
from signal_router import repository

log = get_logger(__name__)
POOL_SIZE = 2  # one read at a time is enough for a webhook's few milliseconds; the second rides out a slow one


class DecidedLookup:
    def __init__(self, settings: EgisSettings, budget_seconds: float) -> None:
        self.settings = settings
        self.budget_seconds = budget_seconds
        self.pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        """Before the gateway serves: a database that does not answer fails the start, as the engine's would."""
        self.pool = await make_raw_pool(self.settings, size=POOL_SIZE)

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def __call__(self, dedup_key: str) -> bool:
        if self.pool is None:  # not started (a gateway-less test), or stopping
            return False
        try:
            async with asyncio.timeout(self.budget_seconds):
                return await self.pool.fetchval(repository.IS_DECIDED, dedup_key) is not None
        except Exception as error:  # not known in time: publish, and let the router decide
            log.info("dedup_lookup_skipped", error=repr(error)[:200])
            return False
