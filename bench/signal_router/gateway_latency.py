"""Benchmark: the webhook gateway's 202 latency at a fixed request rate, over real HTTP.

Starts Kafka (KRaft) and a durable PostgreSQL in a temporary directory (or uses
EGIS_KAFKA_BOOTSTRAP_SERVERS and EGIS_DATABASE_URL when both are set), migrates
and creates the topics, runs the signal_router as its own process
(`python -m signal_router.main`), publishes one bot snapshot (playing the
ledger) and drives `POST /v1/signals` on loopback with the open-loop generator
of `load.py`:

1. `--rate` requests/s for `--seconds` (default 500/s for 60 s): p50/p99/max, errors;
2. the highest sustained rate with p99 under 50 ms: rising steps of `--search-seconds`,
   then a bisection between the last pass and the first failure.

Every request is a distinct valid signal, so the router in the same process
routes each one (a Postgres transaction and an intent) while the gateway
answers: the figures are for the service as deployed, not a bare endpoint.
After the fixed-rate run it waits for the router to decide every signal and
reports how fast it did. `--mode split` runs the gateway and the router as two
processes (`EGIS_ROUTER_ENABLED=false` / `EGIS_GATEWAY_ENABLED=false`),
`--mode gateway-only` the gateway half alone.

The machine's cores are shared by the generator, the service, Kafka and
Postgres, and perhaps by other people's work: each run waits until other
processes use under 0.25 cores, reports the cores it and they used, and is
repeated (up to `--attempts`, 3) when they used more than 0.35 cores during it.

    uv run python bench/signal_router/gateway_latency.py [--rate 500] [--seconds 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from cpu import CpuMeter, wait_until_quiet
from infra import bench_bots, infrastructure, running_service, signal_bodies
from load import Run, open_loop
from prometheus_client.parser import text_string_to_metric_families

P99_LIMIT_MS = 50.0
QUIET_CORES = 0.25  # other processes' load under which a run starts
DISTURBED_CORES = 0.35  # a run during which they used more is repeated


def sustained(run: Run) -> bool:
    return run.errors == 0 and run.percentile(99) < P99_LIMIT_MS and run.summary()["achieved_rps"] >= 0.97 * run.rate


class Bench:
    """One load target, and the CPU accounting that goes with every run on it."""

    def __init__(self, url: str, bodies, meter: CpuMeter, args: argparse.Namespace) -> None:
        self.url, self.bodies, self.meter = url, bodies, meter
        self.quiet_timeout, self.attempts = args.quiet_timeout, args.attempts

    async def measure(self, rate: float, seconds: float) -> Run:
        """One run; repeated (up to `--attempts` times) when other processes' load disturbed it."""
        for attempt in range(1, self.attempts + 1):
            before = await wait_until_quiet(self.meter, QUIET_CORES, self.quiet_timeout)
            self.meter.start()
            run = await open_loop(self.url, rate, seconds, self.bodies)
            run.cpu = {**self.meter.stop(), "other_cores_before": before["other_cores"], "attempt": attempt}
            print(json.dumps(run.summary()), flush=True)
            if run.cpu["other_cores"] <= DISTURBED_CORES:
                break
        return run


async def search(bench: Bench, seconds: float, start: float, ceiling: float) -> dict:
    passed, failed, rate = 0.0, ceiling, start
    while rate < ceiling:  # rising steps, +50 % each
        if not sustained(await bench.measure(rate, seconds)):
            failed = rate
            break
        passed, rate = rate, rate * 1.5
    while failed - passed > max(25.0, passed * 0.05):  # bisection
        rate = round((passed + failed) / 2)
        if sustained(await bench.measure(rate, seconds)):
            passed = rate
        else:
            failed = rate
    return {"max_sustained_rps": passed, "first_failing_rps": failed, "p99_limit_ms": P99_LIMIT_MS}


async def run_all(args: argparse.Namespace, bench: Bench, metrics_ports: list[int]) -> dict:
    await bench.measure(50, 3)  # warm-up: connections, caches, pools
    started = time.monotonic()
    fixed = await bench.measure(args.rate, args.seconds)
    router = None if args.mode == "gateway-only" else await drained(metrics_ports, started, args.drain_timeout)
    found = await search(bench, args.search_seconds, args.search_from, args.search_ceiling)
    return {
        "mode": args.mode,
        "bots": args.bots,
        "fixed_rate": fixed.summary(),
        "router_after_fixed_rate": router,
        "search": found,
        "cores": os.cpu_count(),
    }


async def drained(metrics_ports: list[int], started: float, timeout: float) -> dict:
    """Wait until the router decided every accepted signal; how fast it went, and what it skipped."""
    deadline = time.monotonic() + timeout
    while True:
        counts = router_counts(metrics_ports)
        if counts["decided"] >= counts["accepted"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    seconds = time.monotonic() - started
    return {
        **counts,
        "seconds_since_run_start": round(seconds, 1),
        "decided_per_second": round(counts["decided"] / seconds, 1),
    }


def router_counts(metrics_ports: list[int]) -> dict:
    """Summed over the processes: the gateway counts what it accepted, the router what it decided."""
    texts = [
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode() for port in metrics_ports
    ]
    samples = [s for text in texts for family in text_string_to_metric_families(text) for s in family.samples]
    total = lambda name: sum(s.value for s in samples if s.name == name)  # noqa: E731
    skipped: dict[str, float] = {}
    for sample in samples:
        if sample.name == "egis_router_signals_skipped_total":
            skipped[sample.labels["reason"]] = skipped.get(sample.labels["reason"], 0) + sample.value
    routed = total("egis_router_intents_routed_total")
    return {
        "accepted": total("egis_gateway_signals_accepted_total"),
        "routed": routed,
        "skipped": skipped,
        "decided": routed + sum(skipped.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--search-seconds", type=float, default=15)
    parser.add_argument("--search-from", type=float, default=500)
    parser.add_argument("--search-ceiling", type=float, default=5000)
    parser.add_argument("--bots", type=int, default=60, help="signals go to these bots in turn")
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--quiet-timeout", type=float, default=600, help="wait this long for other load to stop")
    parser.add_argument("--attempts", type=int, default=3, help="runs of one step when others disturb it")
    parser.add_argument("--mode", choices=("service", "split", "gateway-only"), default="service")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with (
        infrastructure() as (bootstrap, database_url, infra_pids),
        running_service(bootstrap, database_url, args.mode) as (port, metrics_ports),
    ):
        bots = asyncio.run(bench_bots(bootstrap, port, args.bots))
        bench = Bench(f"http://127.0.0.1:{port}/v1/signals", signal_bodies(bots), CpuMeter(infra_pids), args)
        results = asyncio.run(run_all(args, bench, metrics_ports))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
