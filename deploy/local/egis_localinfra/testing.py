"""Small helpers for tests against real services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value: T = await probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)
        value = await probe()
    return value
