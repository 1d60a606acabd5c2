"""Benchmark: preflight reservations through real Kafka and Postgres, for 1,000 bots.

Starts its own Kafka (KRaft) and a durable PostgreSQL in a temporary directory,
runs the ledger as its own process (`python -m ledger.main`), sends
ReserveBudget commands for 1,000 bots as fast as the producer takes them,
and times until every answer (BudgetReserved / PreflightRejected) is on the
ledger events topic. In the same run, on the same Postgres, pgbench measures
one-row INSERT transactions per second as the yardstick.

    uv run python bench/ledger/preflight_throughput.py [--commands 20000] [--bots 1000]

With `--profile out.svg` the ledger runs under py-spy (`uv pip install py-spy`)
and its flame graph is written there when the run ends; figures measured so
are slower than without it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from egis_common import contracts as c
from egis_common.setup import prepare_system
from egis_common.topics import LEDGER_COMMANDS, LEDGER_EVENTS, encode
from egis_localinfra.cli import wait_for_metrics
from egis_localinfra.kafka import start_kafka, stop_kafka
from egis_localinfra.ports import free_port
from egis_localinfra.postgres import create_database, ensure_postgres_installed, start_postgres, stop_postgres

REPO = Path(__file__).resolve().parents[2]
ANSWERS = {"BudgetReserved", "PreflightRejected"}


async def create_bots(dsn: str, count: int) -> list[uuid.UUID]:
    bot_ids = [uuid.uuid4() for _ in range(count)]
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "bots",
            schema_name="ledger",
            columns=[
                "bot_id",
                "owner_id",
                "name",
                "strategy",
                "signal_key",
                "webhook_secret_hash",
                "exchange",
                "exchange_account",
                "initial_budget_usd",
                "default_order_size_usd",
            ],
            records=[
                (
                    b,
                    b,
                    f"bench {i}",
                    "signal_hook",
                    f"bench-{b.hex}",
                    "sha256$00$00",
                    "paper",
                    f"acct-{i}",
                    Decimal("1000000"),
                    Decimal("10"),
                )
                for i, b in enumerate(bot_ids)
            ],
        )
    finally:
        await connection.close()
    return bot_ids


def commands_for(bot_ids: list[uuid.UUID], total: int) -> list[c.ReserveBudget]:
    return [
        c.ReserveBudget(
            intent_id=uuid.uuid4(),
            bot_id=bot_ids[i % len(bot_ids)],
            intent=c.IntentKind.OPEN,
            side=c.Side.LONG,
            symbol=f"B{i // len(bot_ids):04d}USDT",
            requested_size_usd=Decimal("10"),
            exchange_account=f"acct-{i % len(bot_ids)}",
        )
        for i in range(total)
    ]


def start_ledger(env: dict[str, str], log_path: Path, profile: Path | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "ledger.main"]
    if profile is not None:  # py-spy writes the flame graph when the ledger exits
        graph = "flamegraph" if profile.suffix == ".svg" else "raw"  # raw: collapsed stacks, one a line
        command = [
            shutil.which("py-spy") or "py-spy",
            "record",
            "--rate",
            "200",
            "--format",
            graph,
            "--output",
            str(profile),
            "--",
            *command,
        ]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=REPO,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_metrics("ledger", int(env["EGIS_METRICS_PORT"]), process)
    except BaseException:
        process.kill()  # never leave a half-started ledger behind
        raise
    return process


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process and its children (py-spy's ledger), from /proc: where the time went."""
    pids = [pid, *(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    total = 0
    for one in pids:
        fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def command_batches(metrics_port: int) -> tuple[float, float]:
    """How many ledger-command batches the ledger handled, and their seconds in all (its histogram)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    pattern = r'^egis_handler_seconds_(count|sum)\{[^}]*handler="ledger_commands_batch"[^}]*\} (\S+)$'
    values = dict(re.findall(pattern, text, re.MULTILINE))
    return float(values.get("count", 0)), float(values.get("sum", 0))


def stop_ledger(process: subprocess.Popen, *, profiled: bool) -> None:
    if profiled:  # Ctrl-C to the group: the ledger stops and py-spy writes its graph
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.terminate()
    process.wait(60)


async def answers_consumer(bootstrap: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(LEDGER_EVENTS.name, p) for p in range(LEDGER_EVENTS.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:  # resolve the end offsets now, before anything is sent
        await consumer.position(partition)
    return consumer


async def run_load(bootstrap: str, commands: list[c.ReserveBudget]) -> dict:
    consumer = await answers_consumer(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent_at: dict[uuid.UUID, float] = {}
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    started = time.perf_counter()
    try:
        for command in commands:
            sent_at[command.intent_id] = time.perf_counter()
            await producer.send(LEDGER_COMMANDS.name, encode(command), key=str(command.bot_id).encode())
        await producer.flush()
        sent = time.perf_counter()
        while len(latencies) < len(commands):
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batches and time.perf_counter() - sent > 120:
                raise SystemExit(f"only {len(latencies)} answers of {len(commands)} after 120 s")
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    # Only two fields are needed: keep the load generator light on the cores it shares.
                    message = json.loads(record.value)
                    intent_id = uuid.UUID(message["intent_id"]) if "intent_id" in message else None
                    if message["type"] in ANSWERS and intent_id in sent_at:
                        latencies.append(now - sent_at.pop(intent_id))
                        outcomes[message["type"]] = outcomes.get(message["type"], 0) + 1
        finished = time.perf_counter()
    finally:
        await producer.stop()
        await consumer.stop()
    latencies.sort()
    return {
        "commands": len(commands),
        "seconds": round(finished - started, 2),
        "reservations_per_second": round(len(commands) / (finished - started)),
        "producer_seconds": round(sent - started, 2),
        "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "outcomes": outcomes,
    }


def pgbench(info, database: str, seconds: int = 15) -> dict:
    bin_dir = ensure_postgres_installed()
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text("INSERT INTO bench_insert (v) VALUES (1);\n")
    env = {**os.environ, "PGPASSWORD": info.password}
    subprocess.run(
        [
            str(bin_dir / "psql"),
            "-h",
            info.host,
            "-p",
            str(info.port),
            "-U",
            info.user,
            "-d",
            database,
            "-qc",
            "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, v int)",
        ],
        env=env,
        check=True,
    )
    results = {}
    for clients in (1, 8):
        out = subprocess.run(
            [
                str(bin_dir / "pgbench"),
                "-h",
                info.host,
                "-p",
                str(info.port),
                "-U",
                info.user,
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(seconds),
                "-f",
                str(script),
                database,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results[f"pgbench_insert_tps_{clients}_clients"] = round(float(re.search(r"tps = ([\d.]+)", out).group(1)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=20000)
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the ledger with py-spy: a flame graph (.svg) or collapsed stacks (any other suffix)",
    )
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="egis-bench-ledger-"))
    state.chmod(0o755)
    ledger = None
    try:
        kafka = start_kafka(state / "kafka", fast_start=False)  # full JIT: the broker is under load
        pg = start_postgres(state / "postgres", durable=True)
        asyncio.run(create_database(pg.admin_dsn, "egis_bench"))
        url = pg.dsn("egis_bench").replace("postgresql://", "postgresql+asyncpg://", 1)
        prepare_system(url, kafka.bootstrap)
        bot_ids = asyncio.run(create_bots(pg.dsn("egis_bench"), args.bots))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EGIS_")},
            "EGIS_DATABASE_URL": url,
            "EGIS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "EGIS_METRICS_PORT": str(free_port()),
            "EGIS_HTTP_PORT": str(free_port()),
            "EGIS_LOG_LEVEL": "WARNING",
        }
        ledger = start_ledger(env, state / "ledger.log", args.profile)
        asyncio.run(run_load(kafka.bootstrap, commands_for(bot_ids, 200)))  # warm-up: joins, caches, JIT of nothing
        metrics_port = int(env["EGIS_METRICS_PORT"])
        cpu_before, batches_before = cpu_seconds(ledger.pid), command_batches(metrics_port)
        result = asyncio.run(run_load(kafka.bootstrap, commands_for(bot_ids, args.commands)))
        after = command_batches(metrics_port)
        batches, handler_seconds = (now - before for now, before in zip(after, batches_before, strict=True))
        result.update(
            ledger_cpu_seconds=round(cpu_seconds(ledger.pid) - cpu_before, 2),
            command_batches=int(batches),
            batch_handler_ms_mean=round(handler_seconds / batches * 1000, 1) if batches else None,
            load_average=[round(load, 2) for load in os.getloadavg()],
        )
        result.update(bots=args.bots, **pgbench(pg, "egis_bench"))
        print(json.dumps(result, indent=2))
    finally:
        if ledger is not None:
            stop_ledger(ledger, profiled=args.profile is not None)
        stop_kafka(state / "kafka")
        stop_postgres(state / "postgres")
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
