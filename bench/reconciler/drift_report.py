"""Benchmark: drift-report over 100,000 positions and their exchange facts.

Starts its own PostgreSQL in a temporary directory, migrates the reconciler's
schema, seeds its read model of positions and its fact tables with COPY (a
realistic mix: most positions healthy, some drifted of every kind), then runs
the drift-report use case (`reconciler.admin.drift_report`) directly on
Postgres, the way the admin handler does after authenticating a command, then
splits the report into replies the way the handler does (`reconciler.domain.paged`).
Kafka is left out on purpose: the command and its reply parts are a few
messages; the work, and the 30 s target, are in the use case.

    uv run --frozen python bench/reconciler/drift_report.py [--positions 100000] [--runs 3] [--profile]

Prints the seeding time, each run's wall time with its phases, the counts by
drift kind (checked against the seeded mix), the size of the report as JSON,
the reply parts it goes out in (each under the part limit, well within Kafka's
1 MB) and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id
from egis_common.migrations import upgrade
from egis_common.topics import encode
from egis_localinfra.postgres import create_database, start_postgres, stop_postgres
from reconciler import admin
from reconciler.adapters import read_model
from reconciler.adapters.repository import facts_for
from reconciler.domain import FactIndex, drift_of, paged
from reconciler.settings import ReconcilerSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PART_BYTES = ReconcilerSettings.model_fields["admin_reply_part_bytes"].default
SYMBOLS = [f"S{i:02d}USDT" for i in range(10)]
# Shares of the positions, by what the report should find; the rest are healthy.
MIX = {
    "healthy_closed": 0.70,
    "healthy_open": 0.20,
    "closed_without_close_facts": 0.025,
    "exchange_filled_close_but_position_open": 0.025,
    "position_open_but_no_fill_fact": 0.025,
    "close_order_differs_from_exchange": 0.025,
}
FACT_COLUMNS = ["message_id", "exchange", "exchange_account", "symbol", "bot_id", "event_time", "raw"]


def kinds_for(count: int) -> list[str]:
    kinds = []
    for kind, share in MIX.items():
        kinds += [kind] * round(count * share)
    return (kinds + ["healthy_closed"] * count)[:count]


PRICE, TP_PRICE, QTY, PNL, FEE = Decimal(3000), Decimal(3100), Decimal("0.01"), Decimal(1), Decimal("0.0155")


def seed_rows(count: int, bots: int) -> dict[str, list[tuple]]:
    rows: dict[str, list[tuple]] = {"positions": [], "order_facts": [], "algo_facts": [], "trade_facts": []}
    bot_ids = [uuid.uuid4() for _ in range(bots)]
    for n, kind in enumerate(kinds_for(count)):
        venue = ("binance_usdm", f"acct-{n % bots}", SYMBOLS[n % len(SYMBOLS)], bot_ids[n % bots])
        intent, opened = uuid.uuid4(), T0 + timedelta(seconds=n)
        closed = opened + timedelta(minutes=5)
        entry_id, close_id = str(10_000_000 + 2 * n), str(10_000_001 + 2 * n)
        status = (
            "closed"
            if kind in ("healthy_closed", "closed_without_close_facts", "close_order_differs_from_exchange")
            else "open"
        )
        recorded = {"healthy_closed": close_id, "close_order_differs_from_exchange": str(90_000_000 + n)}.get(kind)
        complete = recorded is not None
        rows["positions"].append(
            (
                uuid.uuid4(),
                venue[3],
                venue[2],
                "long",
                status,
                intent,
                None,
                QTY,
                PRICE,
                opened,
                recorded,
                TP_PRICE if complete else None,
                closed if complete else None,
                PNL if complete else None,
                closed if status == "closed" else opened,
            )
        )
        if kind != "position_open_but_no_fill_fact":
            rows["order_facts"].append(
                (
                    *_head(venue, opened),
                    entry_id,
                    client_order_id(intent),
                    "FILLED",
                    "BUY",
                    "MARKET",
                    False,
                    QTY,
                    QTY,
                    PRICE,
                )
            )
        for purpose, algo_id in ((OrderPurpose.TAKE_PROFIT, f"a{n}"), (OrderPurpose.STOP_LOSS, f"b{n}")):
            rows["algo_facts"].append(_algo(venue, opened, algo_id, client_order_id(intent, purpose), "NEW", None))
        if kind not in ("healthy_open", "position_open_but_no_fill_fact"):  # the take-profit filled, in one trade
            tp = client_order_id(intent, OrderPurpose.TAKE_PROFIT)
            rows["algo_facts"].append(_algo(venue, closed, f"a{n}", tp, "TRIGGERED", close_id))
            rows["order_facts"].append(
                (*_head(venue, closed), close_id, f"algo{n}", "FILLED", "SELL", "MARKET", True, QTY, QTY, TP_PRICE)
            )
            rows["trade_facts"].append(
                (*_head(venue, closed), f"t{n}", close_id, "SELL", TP_PRICE, QTY, PNL, FEE, "USDT")
            )
    return rows


def _head(venue: tuple, at: datetime) -> tuple:
    exchange, account, symbol, bot_id = venue
    return uuid.uuid4(), exchange, account, symbol, bot_id, at, "{}"


def _algo(venue: tuple, at: datetime, algo_id: str, client_id: str, status: str, spawned: str | None) -> tuple:
    return *_head(venue, at), algo_id, client_id, status, "TAKE_PROFIT_MARKET", "SELL", TP_PRICE, spawned


COLUMNS = {
    "positions": [
        "position_id",
        "bot_id",
        "symbol",
        "side",
        "status",
        "open_intent_id",
        "close_intent_id",
        "executed_qty",
        "avg_entry_price",
        "opened_at",
        "close_exchange_order_id",
        "close_price",
        "closed_at",
        "realised_pnl_usd",
        "updated_at",
    ],
    "order_facts": [
        *FACT_COLUMNS,
        "exchange_order_id",
        "client_order_id",
        "status",
        "side",
        "order_type",
        "reduce_only",
        "orig_qty",
        "executed_qty",
        "avg_price",
    ],
    "algo_facts": [
        *FACT_COLUMNS,
        "algo_id",
        "client_algo_id",
        "status",
        "order_type",
        "side",
        "trigger_price",
        "spawned_order_id",
    ],
    "trade_facts": [
        *FACT_COLUMNS,
        "trade_id",
        "exchange_order_id",
        "side",
        "price",
        "qty",
        "realised_pnl_usd",
        "commission",
        "commission_asset",
    ],
}


async def seed(dsn: str, count: int, bots: int) -> dict[str, int]:
    rows = seed_rows(count, bots)
    connection = await asyncpg.connect(dsn)
    try:
        for table, records in rows.items():
            await connection.copy_records_to_table(
                table, schema_name="reconciler", columns=COLUMNS[table], records=records
            )
        await connection.execute(
            "ANALYZE reconciler.positions, reconciler.order_facts, reconciler.algo_facts, reconciler.trade_facts"
        )
    finally:
        await connection.close()
    return {table: len(records) for table, records in rows.items()}


async def run_report(url: str, profile: bool) -> dict:
    engine = create_async_engine(url)
    command = c.AdminCommand(
        request_id=uuid.uuid4(),
        command=c.AdminCommandName.DRIFT_REPORT,
        confirm=False,
        bot_id=None,
        operator_id="bench",
        signature="",
    )
    try:
        async with engine.connect() as conn:
            phases = await _phases(conn)
            profiler = cProfile.Profile() if profile else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            report = await admin.drift_report(conn, command, timedelta(hours=1))  # the default escalation
            parts = paged(command, "ok", report, PART_BYTES)
            if profiler:
                profiler.disable()
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    result = {
        "seconds": round(seconds, 2),
        "phases_s": phases,
        "positions_examined": report["positions_examined"],
        "by_kind": report["by_kind"],
        "reply_json_bytes": len(json.dumps(report, default=str)),
        "reply_parts": len(parts),
        "largest_part_bytes": max(len(encode(p)) for p in parts),
        "load_average": _load(),
    }
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        result["profile"] = out.getvalue()
    return result


async def _phases(conn) -> dict[str, float]:
    """The same work as the use case, timed step by step (a separate pass)."""
    marks = [time.perf_counter()]
    positions = await read_model.load(conn, None)
    marks.append(time.perf_counter())
    facts = await facts_for(conn, positions, with_trades=False)
    marks.append(time.perf_counter())
    index = FactIndex(facts)
    drifts = [d.as_report() for p in positions for d in drift_of(p, index.of(p))]
    marks.append(time.perf_counter())
    names = ("load_positions", "load_facts", "drift_rules")
    del drifts
    return {name: round(marks[i + 1] - marks[i], 2) for i, name in enumerate(names)}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the last run, print the top 25")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="egis-bench-reconciler-"))
    state.chmod(0o755)
    try:
        pg = start_postgres(state / "postgres", durable=True)
        asyncio.run(create_database(pg.admin_dsn, "egis_bench"))
        url = pg.dsn("egis_bench").replace("postgresql://", "postgresql+asyncpg://", 1)
        upgrade("reconciler", url)
        started = time.perf_counter()
        seeded = asyncio.run(seed(pg.dsn("egis_bench"), args.positions, args.bots))
        print(
            json.dumps(
                {
                    "seeded_rows": seeded,
                    "seed_seconds": round(time.perf_counter() - started, 1),
                    "load_average": _load(),
                }
            )
        )
        expected = {
            k: v
            for k, v in ((kind, kinds_for(args.positions).count(kind)) for kind in MIX)
            if not k.startswith("healthy")
        }
        for run in range(args.runs):
            result = asyncio.run(run_report(url, args.profile and run == args.runs - 1))
            profile = result.pop("profile", None)
            result["mix_as_seeded"] = result["by_kind"] == expected
            print(json.dumps({"run": run + 1, **result}))
            if profile:
                print(profile)
    finally:
        stop_postgres(state / "postgres")
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
