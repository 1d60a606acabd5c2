"""Small helpers for tests against real services."""

from __future__ import annotations

import asyncio
import io
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


async def stop_service(runtime, *, timeout: float = 60.0) -> None:
    """Stop a service's broker, then its runtime; a stop that hangs fails with every task's stack."""
    try:
        async with asyncio.timeout(timeout):
            await runtime.broker.stop()
            await runtime.stop()
    except TimeoutError:
        raise AssertionError(f"the service did not stop within {timeout}s; tasks:\n{_task_stacks()}") from None


def _task_stacks() -> str:
    buffer = io.StringIO()
    for task in asyncio.all_tasks():
        buffer.write(f"--- {task!r}\n")
        task.print_stack(file=buffer)
    return buffer.getvalue()
