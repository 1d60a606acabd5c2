"""What the executor pipeline benchmark runs on: Kafka, durable Postgres, the ledger and the executor
as their own processes, 1,000 bots and the paper venue's mark prices."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from egis_common.secrets import hash_token
from egis_common.setup import prepare_system
from egis_localinfra import local_access
from egis_localinfra.cli import wait_for_metrics
from egis_localinfra.kafka import admin_client_options, start_kafka, stop_kafka
from egis_localinfra.ports import free_port
from egis_localinfra.postgres import create_database, start_postgres, stop_postgres

REPO = Path(__file__).resolve().parents[2]
DATABASE = "egis_bench"


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User and system CPU time process `pid` has used so far; with its children's, live or reaped.

    Postgres runs a process per connection and per background worker, all children of the
    postmaster: `with_children` counts them too (a reaped child's time is in the parent's
    cutime/cstime, a live one's in its own stat)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (child := _stat(int(entry.name), missing_ok=True)) and int(child[1]) == pid:
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: int, missing_ok: bool = False) -> list[str] | None:
    """/proc/<pid>/stat from the field after the command name on: [0] is the state, [1] the parent pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        if missing_ok:
            return None
        raise


@dataclass(frozen=True)
class Infra:
    """Kafka or Postgres, measured like a service: CPU per intent in Load.run's figures."""

    name: str
    pid: int
    with_children: bool

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid, with_children=self.with_children)


@dataclass(frozen=True)
class System:
    bootstrap: str
    url: str  # postgresql+asyncpg://...
    dsn: str  # postgresql://..., for asyncpg
    state: Path
    infra: tuple[Infra, ...] = ()
    # A secure broker: every principal's login, and the super user's client options for the harness's own
    # clients (evidence, redelivery, lag). Both empty without authentication.
    logins: dict = field(default_factory=dict)
    kafka_admin: dict = field(default_factory=dict)

    def service_env(self, service: str) -> dict[str, str]:
        """What `./egis up` gives the service: its own login (and the gateway's for the router)."""
        if not self.logins:
            return {}
        env = local_access.login_env(self.logins[service])
        if service == "signal_router":
            env |= local_access.login_env(self.logins["gateway"], "EGIS_GATEWAY_KAFKA")
        return env


@contextmanager
def infrastructure(keep: bool = False, secure: bool = False) -> Iterator[System]:
    """`secure`: Kafka with logins and ACLs as `./egis up` runs it, each service its own principal."""
    state = Path(tempfile.mkdtemp(prefix="egis-bench-executor-"))
    state.chmod(0o755)
    try:
        kafka = start_kafka(state / "kafka", fast_start=False, secure=secure)  # full JIT: the broker is under load
        logins = local_access.users(state) if secure else {}
        if secure:
            local_access.apply(state / "kafka", kafka.bootstrap, logins)
        kafka_admin = admin_client_options(state / "kafka")
        postgres = start_postgres(state / "postgres", durable=True)
        asyncio.run(create_database(postgres.admin_dsn, DATABASE))
        dsn = postgres.dsn(DATABASE)
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        prepare_system(url, kafka.bootstrap, **kafka_admin)
        print(
            f"kafka {kafka.version} at {kafka.bootstrap}{' (logins and ACLs)' if secure else ''}; "
            f"durable postgres {postgres.version} at {postgres.port}",
            flush=True,
        )
        yield System(
            kafka.bootstrap,
            url,
            dsn,
            state,
            (Infra("kafka", kafka.pid, False), Infra("postgres", postgres.pid, True)),
            logins,
            kafka_admin,
        )
    finally:
        stop_kafka(state / "kafka")
        stop_postgres(state / "postgres")
        if not keep:
            shutil.rmtree(state, ignore_errors=True)


@dataclass(frozen=True)
class Service:
    name: str
    pid: int
    metrics_port: int
    http_port: int

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far."""
        return cpu_seconds(self.pid)


@contextmanager
def service(system: System, name: str, profile: Path | None = None, **env: str) -> Iterator[Service]:
    """`python -m <name>.main` as its own process, until the block ends (SIGTERM)."""
    port, http_port = free_port(), free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EGIS_")},
        "EGIS_DATABASE_URL": system.url,
        "EGIS_KAFKA_BOOTSTRAP_SERVERS": system.bootstrap,
        "EGIS_METRICS_PORT": str(port),
        "EGIS_HTTP_PORT": str(http_port),
        "EGIS_LOG_LEVEL": "WARNING",
        **env,
    }
    log = system.state / f"{name}.log"
    profiling = ["-m", "cProfile", "-o", str(profile)] if profile else []
    process = subprocess.Popen(
        [sys.executable, *profiling, "-m", f"{name}.main"],
        env=environment,
        cwd=REPO,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_metrics(name, port, process)
        print(f"{name} pid {process.pid}, metrics :{port}, log {log}", flush=True)
        yield Service(name, process.pid, port, http_port)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def handler_seconds(port: int) -> dict:
    """Mean seconds per call of each handler and exchange operation, from the service's metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    sums, counts = {}, {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = sample.labels.get("handler") or sample.labels.get("operation")
            if label and sample.name.endswith("_seconds_sum"):
                sums[label] = sample.value
            elif label and sample.name.endswith("_seconds_count"):
                counts[label] = sample.value
    return {
        label: {"calls": int(counts[label]), "mean_ms": round(1000 * sums[label] / counts[label], 2)}
        for label in sums
        if counts.get(label)
    }


@dataclass(frozen=True)
class Bot:
    bot_id: uuid.UUID
    account: str
    signal_key: str
    secret_hash: str


BOT_SECRET = "whs_bench-secret-shared-by-every-bench-bot"


async def create_bots(dsn: str, count: int) -> list[Bot]:
    """`count` paper bots, each on its own account, written as the ledger stores them."""
    bots = [
        Bot(b, f"paper-{i}", f"bench-{b.hex}", hash_token(BOT_SECRET))
        for i, b in enumerate(uuid.uuid4() for _ in range(count))
    ]
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
                    b.bot_id,
                    b.bot_id,
                    f"bench {i}",
                    "signal_hook",
                    b.signal_key,
                    b.secret_hash,
                    "paper",
                    b.account,
                    Decimal("100000000"),
                    Decimal("10"),
                )
                for i, b in enumerate(bots)
            ],
        )
    finally:
        await connection.close()
    return bots


async def set_mark_prices(dsn: str, symbols: list[str], price: Decimal) -> None:
    """The paper venue's mark prices, as the mark price topic would have left them."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "paper_mark_prices",
            schema_name="executor",
            columns=["symbol", "price", "as_of"],
            records=[(symbol, price, datetime.now(UTC)) for symbol in symbols],
        )
    finally:
        await connection.close()


async def analyze(dsn: str) -> None:
    """Table statistics as autovacuum keeps them in a system that has been running a while.

    The benchmark's database is younger than autovacuum's first visit to it (the launcher
    starts a worker per database once a minute), so without this every query is planned
    for the tables the bench started with: Postgres caches a prepared statement's generic
    plan, and one made when `positions` held a few hundred rows scans the whole table
    where an index scan would do (bench/RESULTS.md). ANALYZE also invalidates those plans."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
