"""Whose CPU a run used: the machine's busy cores, the benchmark's own, and everyone else's.

The machine may be shared (other work on the same cores distorts a latency
benchmark), so every run reports what else was running, and `wait_until_quiet`
holds a run back until the other load is small.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    user, nice, system, idle, iowait, *rest = (int(v) for v in Path("/proc/stat").read_text().split()[1:11])
    return (user + nice + system + sum(rest[:3])) / TICK  # irq, softirq, steal count as busy


def tree_seconds(roots: set[int]) -> float:
    """CPU seconds of the roots and all their descendants alive now."""
    parents, used = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICK

    def inside(pid: int) -> bool:
        while pid > 1:
            if pid in roots:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(seconds for pid, seconds in used.items() if inside(pid))


class CpuMeter:
    def __init__(self, roots: set[int]) -> None:
        self.roots = roots | {os.getpid()}

    def start(self) -> None:
        self.t0, self.busy0, self.ours0 = time.monotonic(), machine_busy_seconds(), tree_seconds(self.roots)

    def stop(self) -> dict:
        seconds = time.monotonic() - self.t0
        busy = (machine_busy_seconds() - self.busy0) / seconds
        ours = (tree_seconds(self.roots) - self.ours0) / seconds
        return {
            "machine_busy_cores": round(busy, 2),
            "benchmark_cores": round(ours, 2),
            "other_cores": round(max(0.0, busy - ours), 2),
        }


async def wait_until_quiet(meter: CpuMeter, limit_cores: float, timeout: float) -> dict:
    """Sample 3 s at a time until the other load is under the limit (or give up and say so)."""
    deadline = time.monotonic() + timeout
    while True:
        meter.start()
        await asyncio.sleep(3)
        sample = meter.stop()
        if sample["other_cores"] <= limit_cores or time.monotonic() > deadline:
            return sample
        print(f"waiting for a quiet machine: {sample}", flush=True)
