"""An open-loop HTTP load generator: requests leave on a fixed schedule, answered or not.

Latency is measured from each request's scheduled departure, so a stalled
server (or a starved generator) shows up as latency instead of silently
lowering the rate (no coordinated omission). The service time from the
actual send is kept too.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Run:
    rate: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)  # from the scheduled departure
    service_ms: list[float] = field(default_factory=list)  # from the actual send
    outcomes: Counter = field(default_factory=Counter)  # HTTP status or exception name
    wall_seconds: float = 0.0
    cpu: dict = field(default_factory=dict)  # filled by the caller: whose CPU the run used

    @property
    def errors(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome != 202)

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.latencies_ms if values is None else values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    def summary(self) -> dict:
        sent = sum(self.outcomes.values())
        return {
            "target_rps": self.rate,
            "seconds": self.seconds,
            "sent": sent,
            "achieved_rps": round(sent / self.wall_seconds, 1) if self.wall_seconds else 0,
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 2),
            "service_p99_ms": round(self.percentile(99, self.service_ms), 2),
            "errors": self.errors,
            "outcomes": {str(k): v for k, v in self.outcomes.items()},
            "cpu": self.cpu,
        }


async def open_loop(url: str, rate: float, seconds: float, body: Callable[[], bytes]) -> Run:
    run = Run(rate, seconds)
    connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        total = int(rate * seconds)
        start = time.perf_counter() + 0.05
        tasks: list[asyncio.Task] = []
        while len(tasks) < total:
            now = time.perf_counter()
            due = min(total, int((now - start) * rate) + 1) if now >= start else 0
            for index in range(len(tasks), due):
                tasks.append(asyncio.create_task(_one(session, url, body(), start + index / rate, run)))
            await asyncio.sleep(max(0.0, start + len(tasks) / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
        run.wall_seconds = time.perf_counter() - start
    return run


async def _one(session: aiohttp.ClientSession, url: str, payload: bytes, scheduled: float, run: Run) -> None:
    sent = time.perf_counter()
    try:
        async with session.post(url, data=payload, headers={"content-type": "application/json"}) as response:
            await response.read()
            outcome: int | str = response.status
    except Exception as error:  # a timeout or a refused connection is an outcome to count
        outcome = type(error).__name__
    done = time.perf_counter()
    run.latencies_ms.append((done - scheduled) * 1000)
    run.service_ms.append((done - sent) * 1000)
    run.outcomes[outcome] += 1
