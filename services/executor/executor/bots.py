"""The executor's view of bots: where each bot's orders go, as the ledger's bots topic states it.

An intent names its bot; the exchange and the account (and so the credentials, chosen per account)
come from here, never from the intent. The view is fed by `egis_common.bots_feed`, read from the
topic's beginning when it starts, so it is whole after a restart. A bot the view does not know may
have been created a moment ago: `caught_up` reads the topic to its current end before anyone
concludes that the bot does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from uuid import UUID

from egis_common.bots_feed import BotsFeed
from egis_common.contracts import BotSnapshot
from egis_common.logs import get_logger
from egis_common.runtime import Runtime
from executor.domain import Bot

log = get_logger(__name__)


class BotView:
    def __init__(self) -> None:
        self._by_id: dict[UUID, Bot] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, bot_id: UUID) -> Bot | None:
        return self._by_id.get(bot_id)

    def apply(self, bot_id: UUID, snapshot: BotSnapshot | None) -> None:
        """A bot's latest snapshot, unless a newer version is known; a tombstone (None) removes the bot."""
        if snapshot is None:
            self._by_id.pop(bot_id, None)
            return
        current = self._by_id.get(bot_id)
        if current is not None and current.version > snapshot.version:
            return
        self._by_id[bot_id] = Bot(
            bot_id=bot_id,
            version=snapshot.version,
            exchange=snapshot.exchange,
            exchange_account=snapshot.exchange_account,
            deleted=snapshot.deleted,
        )


class KnownBots:
    """The view and the feed that fills it. The feed starts once, when the service starts or, in a
    composition that did not start it, before the first intent is looked up; it stops with the runtime."""

    def __init__(
        self, runtime: Runtime, view: BotView, feed: BotsFeed, *, ready_timeout_seconds: float, catch_up_seconds: float
    ) -> None:
        self.runtime, self.view, self.feed = runtime, view, feed
        self.ready_timeout_seconds, self.catch_up_seconds = ready_timeout_seconds, catch_up_seconds
        self._started = False
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Read the bots topic to its end, once. A start that fails leaves nothing behind and may be tried again."""
        async with self._starting:
            if self._started:
                return
            try:
                await self.feed.start(self.ready_timeout_seconds)
            except BaseException:
                await self.feed.stop()
                raise
            self._started = True
            self.runtime.start_task(_stop_when_cancelled(self.feed), "bots-feed")

    async def of(self, bot_ids: Iterable[UUID]) -> dict[UUID, Bot | None]:
        await self.start()
        return {bot_id: self.view.get(bot_id) for bot_id in bot_ids}

    async def caught_up(self) -> None:
        """Until every bot record on the topic now is in the view. Raises TimeoutError when the topic cannot be
        read that far in time: a dependency unavailable, so the intents wait and are tried again, not refused."""
        await self.start()
        if not await self.feed.caught_up_to_now(self.catch_up_seconds):
            raise TimeoutError(f"the bots topic was not read to its end within {self.catch_up_seconds}s")


async def _stop_when_cancelled(feed: BotsFeed) -> None:
    try:
        await asyncio.Event().wait()  # lives as long as the runtime's other tasks
    finally:
        with contextlib.suppress(Exception):
            await feed.stop()
