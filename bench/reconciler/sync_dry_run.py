"""Benchmark: sync-wrong-closed-positions (dry run) over 1,000 broken positions, against the local Binance server.

Each position was closed on the venue by its take-profit (every fourth by its
stop-loss), and the reconciler knows it closed without close facts: its facts
hold only the entry's fill. To repair it, sync asks the venue for the algo
orders, the order one spawned, and that order's trades (7 or 8 request weight
per position at Binance's published weights).

Starts its own PostgreSQL and an in-process local Binance server (limit 2400
weight per minute, as Binance), seeds the venue once, then for each weight
budget migrates a fresh database, stores the same read model and facts, and
runs the sync use case (`reconciler.admin.sync_wrong_closed_positions`:
read, ask the venue holding no connection, write) directly on Postgres. Kafka is
left out: the command and its reply are a few messages, and the time goes into
the venue's look-ups.

    uv run --frozen python bench/reconciler/sync_dry_run.py [--positions 1000] [--budgets 1000,0]

A budget of 0 is unlimited: the venue's own limit then answers 429 and sync
waits out its Retry-After. At the default budget, 1,000 positions take minutes:
that is the budget working. Each run may ask the venue for as long as the
service's would (ReconcilerSettings.admin_ask_for_s, 780 s by default):
`stopped` says whether it had to stop early. `--positions 100` is a quick check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine

from egis_binance_local import BinanceLocal
from egis_common import contracts as c
from egis_common.migrations import upgrade
from egis_localinfra.postgres import create_database, start_postgres, stop_postgres
from egis_venues.binance.exchange import BinanceExchange
from egis_venues.binance.weights import WeightBudget
from egis_venues.settings import BinanceCredentials
from reconciler.admin import sync_wrong_closed_positions
from reconciler.settings import ReconcilerSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "reconciler" / "tests"))
from venue_closes import close_on_venue, known_to_reconciler, store

ACCOUNT, KEY, SECRET = "bench-account", "bench-key", "bench-secret"


async def bench(pg, positions: int, budgets: list[int], server_limit: int) -> None:
    async with BinanceLocal(weight_limit=10**9) as server:
        server.add_account(KEY, SECRET, usdt="10000000")
        started = time.perf_counter()
        closed = await close_on_venue(server, KEY, SECRET, positions)
        _print({"seeded_on_venue": positions, "seconds": round(time.perf_counter() - started, 1)})
        bot_id = uuid.uuid4()
        rows, facts = known_to_reconciler(closed, bot_id, ACCOUNT)
        server.weight_limit = server_limit
        for n, budget in enumerate(budgets):
            url = await _fresh_database(pg, f"sync_{n}")
            engine = create_async_engine(url)
            async with engine.begin() as conn:
                await store(conn, rows, facts)
            await _fresh_minute(server)
            server.clear_requests()
            _print({"budget_per_minute": budget or "unlimited", **await _run(engine, server, bot_id, budget)})
            await engine.dispose()


async def _run(engine, server: BinanceLocal, bot_id: uuid.UUID, per_minute: int) -> dict:
    weights = WeightBudget(per_minute)
    credentials = BinanceCredentials(api_key=SecretStr(KEY), api_secret=SecretStr(SECRET))
    exchange = BinanceExchange({ACCOUNT: credentials}, base_url=server.base_url, weights=weights)
    command = c.AdminCommand(
        request_id=uuid.uuid4(),
        command=c.AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS,
        confirm=False,
        bot_id=bot_id,
        operator_id="bench",
        signature="",
    )
    started = time.perf_counter()
    try:
        venues = {c.ExchangeName.BINANCE_USDM.value: exchange}
        outcome = await sync_wrong_closed_positions(engine, command, venues, ReconcilerSettings().admin_ask_for_s())
    finally:
        await exchange.close()
    report = outcome.report
    seconds = time.perf_counter() - started
    sent = server.requests()
    by_minute: dict[int, int] = {}
    for request in sent:
        by_minute[request.time_ms // 60_000] = by_minute.get(request.time_ms // 60_000, 0) + request.weight
    return {
        "seconds": round(seconds, 1),
        "examined": report["examined"],
        "would_change": report["would_change"],
        "stopped": report["venue"]["stopped"],
        "venue_requests": len(sent),
        "venue_weight": sum(r.weight for r in sent),
        "venue_weight_by_minute": list(by_minute.values()),
        "venue_answers": {str(s): sum(r.status == s for r in sent) for s in sorted({r.status for r in sent})},
        "budget_report": weights.report(),
        "load_average": _load(),
    }


async def _fresh_minute(server: BinanceLocal) -> None:
    """Start each run with the venue's weight count at zero, as a run on a quiet IP would."""
    while server.used_weight() > 0:
        await asyncio.sleep(0.5)


async def _fresh_database(pg, name: str) -> str:
    await create_database(pg.admin_dsn, name)
    url = pg.dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, "reconciler", url)
    return url


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _print(line: dict) -> None:
    print(json.dumps(line), flush=True)


def main() -> None:
    default_budget = ReconcilerSettings.model_fields["binance_weight_budget_per_minute"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=1000)
    parser.add_argument(
        "--budgets",
        default=f"{default_budget},0",
        help="weight budgets per minute to run, comma-separated; 0 is unlimited",
    )
    parser.add_argument("--server-limit", type=int, default=2400, help="the venue's weight limit per minute")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="egis-bench-sync-"))
    state.chmod(0o755)
    try:
        pg = start_postgres(state / "postgres", durable=True)
        asyncio.run(bench(pg, args.positions, [int(b) for b in args.budgets.split(",")], args.server_limit))
    finally:
        stop_postgres(state / "postgres")
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
