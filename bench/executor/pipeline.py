"""Benchmark: intents end to end on the paper exchange, for 1,000 bots, through real Kafka and Postgres.

Starts Kafka (KRaft) and a durable PostgreSQL (fsync on) in a temporary
directory, runs the ledger and the executor as their own processes
(`python -m ledger.main`, `python -m executor.main`), creates 1,000 paper bots
and the mark prices, then publishes `OrderIntent`s to egis.router.intents.v1
and times each one until its `PositionOpened` is on egis.ledger.events.v1:
intent -> executor -> ReserveBudget -> ledger -> BudgetReserved -> executor ->
paper venue -> OrderFilled -> ledger -> position open.

1. throughput: `--burst` intents published as fast as the producer takes them;
   intents per second from the first send to the last position open;
2. latency: open-loop at `--rate` intents/s (default 200) for `--seconds`, each
   latency from the intent's scheduled send (no coordinated omission): p50/p99.

With `--executor-only` no ledger runs: a stand-in in this process answers each
ReserveBudget with BudgetReserved at once, and each intent is timed until its
OrderFilled, which measures the executor and the paper venue alone.

With `--from-webhook` the signal_router runs too and the load is signals
POSTed to its gateway (`POST /v1/signals`), timed from the POST.

Postgres's statistics are refreshed (ANALYZE) after the warm-up and after the burst, as
autovacuum would have done in a system running for more than a minute (system.analyze).

Every process shares the machine's cores with Kafka, Postgres and this generator;
`cpu_ms_per_intent` (from /proc: each service, Kafka's broker, Postgres with all its
processes, this generator) is the figure that does not depend on what else runs, and
their sum bounds what the machine can do: N cores give at most N x 1000 / sum intents/s.

    uv run python bench/executor/pipeline.py [--bots 1000] [--burst 10000] [--rate 200] [--seconds 30]
                                             [--executor-only | --from-webhook] [--stages]
                                             [--profile exec.prof] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from load import Load  # noqa: E402
from stand_in import StandInLedger  # noqa: E402
from system import Service, analyze, create_bots, handler_seconds, infrastructure, service, set_mark_prices  # noqa: E402
from webhook import ROUTER_SYMBOLS, WebhookSender, publish_bots, wait_for_gateway  # noqa: E402


async def bench(system, bots, services: list[Service], args) -> dict:
    end = "OrderFilled" if args.executor_only else "PositionOpened"
    symbols = (lambda r: ROUTER_SYMBOLS[r]) if args.from_webhook else (lambda r: f"B{r:03d}USDT")
    load = Load(system.bootstrap, bots, [*services, *system.infra], symbols, end, args.stages)
    if args.from_webhook:
        router = next(s for s in services if s.name == "signal_router")
        load.sender = WebhookSender(f"http://127.0.0.1:{router.http_port}/v1/signals")
        await wait_for_gateway(load.sender.url)
    stand_in = StandInLedger(system.bootstrap) if args.executor_only else None
    await load.start()
    if stand_in is not None:
        await stand_in.start()
    try:
        await load.run(load.planned(len(bots)), None)  # warm-up: group joins, pools, caches
        await analyze(system.dsn)
        results = {"burst": await load.run(load.planned(args.burst), None)}
        print(json.dumps(results["burst"]), flush=True)
        await asyncio.sleep(2)  # let the services drain before the latency run
        await analyze(system.dsn)  # the burst grew the tables tenfold
        results["fixed_rate"] = await load.run(load.planned(int(args.rate * args.seconds)), args.rate)
        print(json.dumps(results["fixed_rate"]), flush=True)
        return results
    finally:
        await load.stop()
        if stand_in is not None:
            await stand_in.stop()
        if isinstance(load.sender, WebhookSender):
            await load.sender.close()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--stages", action="store_true", help="also time each stage (watches four topics, which costs this process CPU)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and the logs")
    parser.add_argument("--profile", type=Path, help="run the executor under cProfile, writing stats here")
    parser.add_argument(
        "--executor-only",
        action="store_true",
        help="no ledger: a stand-in answers every ReserveBudget at once; time intent -> OrderFilled",
    )
    parser.add_argument(
        "--from-webhook",
        action="store_true",
        help="POST signals to the signal_router's gateway instead of publishing intents",
    )
    args = parser.parse_args()
    rounds = 1 + -(-args.burst // args.bots) + -(-int(args.rate * args.seconds) // args.bots)
    if args.from_webhook and rounds > len(ROUTER_SYMBOLS):
        parser.error(
            f"with --from-webhook each bot opens each of {len(ROUTER_SYMBOLS)} symbols once: "
            f"(1 + burst + rate x seconds) / bots must be at most {len(ROUTER_SYMBOLS)}, not {rounds}"
        )
    args.symbols = list(ROUTER_SYMBOLS) if args.from_webhook else [f"B{i:03d}USDT" for i in range(rounds)]
    return args


def main() -> None:
    args = arguments()
    with infrastructure(args.keep) as system:
        bots = asyncio.run(create_bots(system.dsn, args.bots))
        # 2.5 USD: 10 USD is a whole number of steps on every paper symbol, even DOGE's step of 1.
        asyncio.run(set_mark_prices(system.dsn, args.symbols, Decimal("2.5")))
        # The executor takes each bot's account from the bots topic (and the router its bots): as the ledger would.
        asyncio.run(publish_bots(system.bootstrap, bots))
        with ExitStack() as running:
            services = [] if args.executor_only else [running.enter_context(service(system, "ledger"))]
            services.append(running.enter_context(service(system, "executor", args.profile)))
            if args.from_webhook:
                # Throughput, not the staleness policy: a signal stuck in a backlog is still routed.
                services.append(
                    running.enter_context(service(system, "signal_router", EGIS_MAX_SIGNAL_LAG_SECONDS="3600"))
                )
            results = asyncio.run(bench(system, bots, services, args))
            results["handlers"] = {s.name: handler_seconds(s.metrics_port) for s in services}
    source = "signals POSTed to the signal_router gateway" if args.from_webhook else "intents on egis.router.intents.v1"
    results.update(
        bots=args.bots,
        cores=os.cpu_count(),
        source=source,
        postgres="durable (fsync on)",
        end="OrderFilled (stand-in ledger)" if args.executor_only else "PositionOpened",
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
