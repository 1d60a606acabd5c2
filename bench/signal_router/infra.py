"""What the gateway benchmark runs against: Kafka, Postgres, the service process, one bot."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from egis_common.contracts import BotSnapshot, ExchangeName
from egis_common.secrets import hash_token, new_token
from egis_common.setup import prepare_system
from egis_common.topics import BOTS, encode
from egis_localinfra.cli import wait_for_metrics
from egis_localinfra.kafka import start_kafka, stop_kafka
from egis_localinfra.ports import free_port
from egis_localinfra.postgres import create_database, start_postgres, stop_postgres

REPO = Path(__file__).resolve().parents[2]
DATABASE = "egis_bench"


@contextmanager
def infrastructure() -> Iterator[tuple[str, str, set[int]]]:
    """(Kafka bootstrap, database URL, their pids): from the environment, or started here and stopped after."""
    bootstrap, url = os.environ.get("EGIS_KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("EGIS_DATABASE_URL")
    if bootstrap and url:
        prepare_system(url, bootstrap)
        yield bootstrap, url, set()
        return
    state = Path(tempfile.mkdtemp(prefix="egis-bench-router-"))
    state.chmod(0o755)
    try:
        kafka = start_kafka(state / "kafka", fast_start=False)  # full JIT: the broker is under load
        postgres = start_postgres(state / "postgres", durable=True)
        asyncio.run(create_database(postgres.admin_dsn, DATABASE))
        url = postgres.dsn(DATABASE).replace("postgresql://", "postgresql+asyncpg://", 1)
        prepare_system(url, kafka.bootstrap)
        print(f"kafka {kafka.version} at {kafka.bootstrap}; durable postgres at {postgres.port}", flush=True)
        yield kafka.bootstrap, url, {kafka.pid, postgres.pid}
    finally:
        stop_kafka(state / "kafka")
        stop_postgres(state / "postgres")
        shutil.rmtree(state, ignore_errors=True)


ROLES = {  # mode -> the processes it runs, each with the halves it switches off
    "service": [{}],
    "split": [{"EGIS_ROUTER_ENABLED": "false"}, {"EGIS_GATEWAY_ENABLED": "false"}],
    "gateway-only": [{"EGIS_ROUTER_ENABLED": "false"}],
}


@contextmanager
def running_service(bootstrap: str, database_url: str, mode: str) -> Iterator[tuple[int, list[int]]]:
    """The signal_router as its own process(es); yields the HTTP port and every metrics port."""
    port, metrics_ports, processes = free_port(), [], []
    try:
        for switches in ROLES[mode]:
            metrics_ports.append(free_port())
            env = {
                **os.environ,
                "EGIS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "EGIS_DATABASE_URL": database_url,
                "EGIS_HTTP_PORT": str(port),
                "EGIS_METRICS_PORT": str(metrics_ports[-1]),
                "EGIS_LOG_JSON": "true",
                **switches,
            }
            log = Path(tempfile.mkstemp(prefix="signal_router-", suffix=".log")[1])
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "signal_router.main"],
                    env=env,
                    cwd=REPO,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            wait_for_metrics("signal_router", metrics_ports[-1], processes[-1])
            print(f"signal_router pid {processes[-1].pid} {switches or 'both halves'}, log {log}", flush=True)
        yield port, metrics_ports
    finally:
        for process in processes:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def bench_bots(bootstrap: str, port: int, count: int) -> list[tuple[BotSnapshot, str]]:
    """Publish bots, as the ledger would, and wait until the gateway accepts a signal of the last one.

    One bot's signals share a key, hence a partition, hence one router consumer in order: a
    realistic load spreads over many bots.
    """
    bots = [_bot(index) for index in range(count)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    for bot, _ in bots:
        await producer.send_and_wait(BOTS.name, encode(bot), key=str(bot.bot_id).encode())
    await producer.stop()
    body = signal_bodies(bots[-1:])
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:  # metrics are served before HTTP starts, and the bots take a moment to arrive
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/signals", data=body(), headers={"content-type": "application/json"}
                ) as response:
                    if response.status == 202:
                        return bots
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the gateway never accepted a bench bot's signal")


def _bot(index: int) -> tuple[BotSnapshot, str]:
    secret = new_token("whs_")
    bot = BotSnapshot(
        bot_id=uuid.uuid4(),
        version=1,
        owner_id=uuid.uuid4(),
        name=f"bench {index}",
        signal_key=f"bench-{index}",
        webhook_secret_hash=hash_token(secret),
        exchange=ExchangeName.PAPER,
        exchange_account=f"paper-{index}",
        initial_budget_usd=Decimal("1000000"),
        default_order_size_usd=Decimal("10"),
        paused=False,
        deleted=False,
    )
    return bot, secret


def signal_bodies(bots: list[tuple[BotSnapshot, str]]) -> Callable[[], bytes]:
    """A fresh, valid, distinct signal per call (its own id, the current time), bots in turn."""
    turn = itertools.cycle(bots)

    def body() -> bytes:
        bot, secret = next(turn)
        return json.dumps(
            {
                "signal_key": bot.signal_key,
                "secret": secret,
                "action": "buy",
                "symbol": "BTCUSDT",
                "timestamp": datetime.now(UTC).isoformat(),
                "signal_id": uuid.uuid4().hex,
            }
        ).encode()

    return body
