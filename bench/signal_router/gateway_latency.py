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
The machine's cores are shared by the generator, the service, Kafka and Postgres.

    uv run python bench/signal_router/gateway_latency.py [--rate 500] [--seconds 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from infra import bench_bot, infrastructure, running_service, signal_bodies
from load import Run, open_loop

P99_LIMIT_MS = 50.0


def sustained(run: Run) -> bool:
    return run.errors == 0 and run.percentile(99) < P99_LIMIT_MS and run.summary()["achieved_rps"] >= 0.97 * run.rate


async def measure(url: str, bodies, rate: float, seconds: float) -> Run:
    run = await open_loop(url, rate, seconds, bodies)
    print(json.dumps(run.summary()), flush=True)
    await asyncio.sleep(2)  # let the router drain between runs
    return run


async def search(url: str, bodies, seconds: float, start: float, ceiling: float) -> dict:
    passed, failed, rate = 0.0, ceiling, start
    while rate < ceiling:  # rising steps, +50 % each
        if not sustained(await measure(url, bodies, rate, seconds)):
            failed = rate
            break
        passed, rate = rate, rate * 1.5
    while failed - passed > max(25.0, passed * 0.05):  # bisection
        rate = round((passed + failed) / 2)
        if sustained(await measure(url, bodies, rate, seconds)):
            passed = rate
        else:
            failed = rate
    return {"max_sustained_rps": passed, "first_failing_rps": failed, "p99_limit_ms": P99_LIMIT_MS}


async def bench(args: argparse.Namespace, url: str, bodies) -> dict:
    await measure(url, bodies, 50, 3)  # warm-up: connections, JIT-free but caches and pools
    fixed = await measure(url, bodies, args.rate, args.seconds)
    found = await search(url, bodies, args.search_seconds, args.search_from, args.search_ceiling)
    return {"fixed_rate": fixed.summary(), "search": found, "cores": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--search-seconds", type=float, default=15)
    parser.add_argument("--search-from", type=float, default=500)
    parser.add_argument("--search-ceiling", type=float, default=5000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with infrastructure() as (bootstrap, database_url), running_service(bootstrap, database_url) as port:
        bot, secret = asyncio.run(bench_bot(bootstrap, port))
        results = asyncio.run(bench(args, f"http://127.0.0.1:{port}/v1/signals", signal_bodies(bot, secret)))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
