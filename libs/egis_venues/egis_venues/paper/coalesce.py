"""Calls that arrive together are served by one batch: one venue transaction for many orders.

The executor sends a batch of orders concurrently; the paper venue books
all the orders that are waiting in one transaction instead of one each. A
caller that stops waiting (a timeout) does not stop its order: like a remote
venue, the order may still be placed, which is why the caller records Unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[list[R]]], max_batch: int = 500) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="paper-venue-batches")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(0)  # the rest of a concurrent batch joins the queue first
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                results = await self._flush([item for item, _ in batch])
            except Exception as error:  # flush functions answer for every item; this is a last resort
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
