"""The gateway's duplicate check: one primary-key read of the router's dedup table, bounded in time.

A read that fails or takes longer than its budget answers "not known": the
signal is published as usual, and the router's dedup still makes a duplicate
of it. So a slow or absent database costs the webhook at most the budget.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from egis_common.logs import get_logger
from signal_router import repository

log = get_logger(__name__)


class DecidedLookup:
    def __init__(self, engine: AsyncEngine, budget_seconds: float) -> None:
        self.engine = engine
        self.budget_seconds = budget_seconds

    async def __call__(self, dedup_key: str) -> bool:
        try:
            async with asyncio.timeout(self.budget_seconds), self.engine.connect() as conn:
                return await repository.is_decided(conn, dedup_key)
        except Exception as error:  # not known in time: publish, and let the router decide
            log.info("dedup_lookup_skipped", error=repr(error)[:200])
            return False
