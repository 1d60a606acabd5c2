"""The system under fault: Kafka, durable Postgres, the local Binance server and the four services as processes.

Kafka and Postgres come from bench/executor/system.py's `infrastructure` (egis_localinfra
underneath) and live for the whole run; so does the Binance server. Each trial gets a
fresh database and fresh services (`Cluster.begin_trial`), so nothing a failed trial
left behind (a stuck intent, an unpublished outbox row, an armed failpoint) reaches the
next one. Services are this module's own processes rather than system.py's
`service()` blocks: a fault kills and restarts them mid-trial, runs two of one, and
keeps each instance's log.

Kafka and Postgres are restarted in place, on the ports the services were given:
egis_localinfra's start functions pick new ports, so the restarts below reuse its
launch and readiness steps instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "executor"))
from system import System  # noqa: E402

from egis_localinfra import kafka as localkafka  # noqa: E402
from egis_localinfra import postgres as localpg  # noqa: E402
from egis_localinfra.cli import wait_for_metrics  # noqa: E402
from egis_localinfra.ports import free_port  # noqa: E402

SERVICES = ("ledger", "signal_router", "executor", "reconciler")
HTTP_SERVICES = ("ledger", "signal_router")


class ServiceDidNotStart(RuntimeError):
    pass


@dataclass
class Instance:
    """One process of one service."""

    service: str
    label: str  # "executor", "executor#2"
    process: subprocess.Popen | Forked
    metrics_port: int
    http_port: int
    log: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: nothing in the process gets to clean up."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def died_of_sigkill(self) -> bool:
        return self.process.poll() == -signal.SIGKILL


class Zygote:
    """zygote.py as a child of this process: forks service processes that start without importing anything."""

    def __init__(self, log: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            text=True,
            start_new_session=True,
        )
        self._lock = threading.Lock()
        if not self._read().get("ready"):
            raise RuntimeError(f"the zygote did not start; see {log}")

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote exited with {self.process.wait()}")
        return json.loads(line)

    def ask(self, request: dict) -> dict:
        with self._lock:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            return self._read()

    def start(self, service: str, env: dict[str, str], log: Path) -> Forked:
        return Forked(self, self.ask({"op": "start", "service": service, "env": env, "log": str(log)})["pid"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Forked:
    """A service process the zygote forked, with the part of Popen's interface the cluster uses."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote, self.pid, self.returncode = zygote, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.ask({"op": "poll", "pid": self.pid})["returncode"]
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode


@dataclass
class BinanceServer:
    """`python -m egis_binance_local` as its own process, driven through its control API."""

    process: subprocess.Popen
    base_url: str

    @classmethod
    def start(cls, log: Path) -> BinanceServer:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "egis_binance_local", "--port", str(port)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        server = cls(process, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the local Binance server exited with {process.returncode}; see {log}")
            try:
                server.control("GET", "/_control/mark_price")
                return server
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"the local Binance server did not answer within 30 s; see {log}")

    def control(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read() or b"null")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Cluster:
    system: System
    binance: BinanceServer
    log_level: str = "WARNING"
    instances: list[Instance] = field(default_factory=list)
    database: str = ""
    trial_dir: Path = Path()
    common_env: dict[str, dict[str, str]] = field(default_factory=dict)
    template: str = "egis_bench"  # bench/executor/system.py's database, migrated once by `infrastructure`
    zygote: Zygote | None = None  # forks the services; None: each is `python -m <service>.main`

    # ------------------------------------------------------------ trials

    def begin_trial(self, database: str, trial_dir: Path, common_env: dict[str, dict[str, str]]) -> None:
        """A fresh database for the trial; its services are started by the caller."""
        self.database, self.trial_dir, self.common_env = database, trial_dir, common_env
        trial_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(self._create_from_template(database))

    def end_trial(self, keep_database: bool) -> None:
        self.stop_services()
        if not keep_database:
            asyncio.run(self._drop(self.database))

    async def _create_from_template(self, database: str) -> None:
        # A copy of the run's migrated database: no service spends its start-up migrating.
        connection = await asyncpg.connect(self.postgres().admin_dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{database}" TEMPLATE "{self.template}"')
        finally:
            await connection.close()

    async def _drop(self, database: str) -> None:
        connection = await asyncpg.connect(self.postgres().admin_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await connection.close()

    @property
    def dsn(self) -> str:
        return self.postgres().dsn(self.database)

    @property
    def url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    # ------------------------------------------------------------ services

    def start(self, service: str, wait: bool = True, **env: str) -> Instance:
        """A new process of `service` on the trial's database; `env` adds to the trial's environment."""
        same = [i for i in self.instances if i.service == service]
        label = service if not same else f"{service}#{len(same) + 1}"
        metrics_port, http_port = free_port(), free_port()
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EGIS_")},
            "EGIS_DATABASE_URL": self.url,
            "EGIS_KAFKA_BOOTSTRAP_SERVERS": self.system.bootstrap,
            "EGIS_METRICS_PORT": str(metrics_port),
            "EGIS_HTTP_PORT": str(http_port),
            "EGIS_LOG_LEVEL": self.log_level,
            **self.system.service_env(service),
            **self.common_env.get(service, {}),
            **env,
        }
        log = self.trial_dir / f"{label.replace('#', '-')}.log"
        if self.zygote is not None:
            process = self.zygote.start(service, environment, log)
        else:
            process = subprocess.Popen(
                [sys.executable, "-m", f"{service}.main"],
                env=environment,
                cwd=REPO,
                stdout=log.open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        instance = Instance(service, label, process, metrics_port, http_port, log, env)
        self.instances.append(instance)
        if wait:
            self.wait_ready(instance)
        return instance

    def wait_ready(self, instance: Instance, timeout: float = 90) -> None:
        """Metrics served, and for a service with an HTTP API that API too (it starts after the metrics)."""
        deadline = time.monotonic() + timeout
        try:
            wait_for_metrics(instance.label, instance.metrics_port, instance.process, timeout)
        except SystemExit as stopped:  # a trial's failure, not the run's
            raise ServiceDidNotStart(f"{stopped}: {instance.log}") from None
        while instance.service in HTTP_SERVICES and not _accepts(instance.http_port):
            if instance.process.poll() is not None or time.monotonic() > deadline:
                raise ServiceDidNotStart(f"{instance.label} did not serve HTTP within {timeout}s: {instance.log}")
            time.sleep(0.1)

    def restart(self, instance: Instance, **env: str) -> Instance:
        """The same service again, in place of a dead instance, without what armed its failpoints."""
        instance.kill()
        self.instances.remove(instance)
        return self.start(instance.service, **env)

    def running(self, service: str) -> list[Instance]:
        return [i for i in self.instances if i.service == service and i.alive()]

    def first(self, service: str) -> Instance:
        return next(i for i in self.instances if i.service == service)

    # ------------------------------------------------------------ Kafka

    @property
    def kafka_dir(self) -> Path:
        return self.system.state / "kafka"

    def kill_kafka(self) -> None:
        info = localkafka.kafka_status(self.kafka_dir)
        if info is not None:
            os.killpg(info.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while localkafka.kafka_status(self.kafka_dir) is not None and time.monotonic() < deadline:
                time.sleep(0.05)

    def start_kafka_again(self) -> None:
        """The same broker, same ports and data, as a supervisor would restart it."""
        old = json.loads((self.kafka_dir / "kafka.json").read_text())
        lib = localkafka.ensure_jars()
        process = localkafka._launch(self.kafka_dir, lib, "-Xms512m -Xmx1g", fast_start=False)
        info = localkafka.KafkaInfo(old["bootstrap"], process.pid, Path(old["log_path"]), old["version"])
        (self.kafka_dir / "kafka.json").write_text(json.dumps({**old, "pid": process.pid}, indent=2))
        localkafka._wait_ready(info, self.kafka_dir, localkafka.admin_client_options(self.kafka_dir))

    # ------------------------------------------------------------ Postgres

    @property
    def postgres_dir(self) -> Path:
        return self.system.state / "postgres"

    def postgres(self) -> localpg.PostgresInfo:
        return _postgres_record(self.postgres_dir)

    def stop_postgres_now(self) -> None:
        """Immediate shutdown: no checkpoint, every connection cut, as a crash leaves it (WAL replay at start)."""
        info = self.postgres()
        localpg._pg_ctl(localpg.ensure_postgres_installed(), info.data_dir, "stop", "-m", "immediate", "-t", "60")

    def start_postgres_again(self) -> None:
        """The same cluster on the same port (pgdata/egis.conf keeps it)."""
        info = self.postgres()
        localpg._pg_ctl(
            localpg.ensure_postgres_installed(), info.data_dir, "start", "-l", str(info.log_path), "-t", "60"
        )
        fresh = localpg._wait_ready(info.data_dir.parent, info.port)
        record = json.loads((self.postgres_dir / "postgres.json").read_text())
        (self.postgres_dir / "postgres.json").write_text(json.dumps({**record, "pid": fresh.pid}, indent=2))

    async def refuse_connections(self, refuse: bool) -> None:
        """New connections to the trial's database are refused (and the open ones cut), or accepted again."""
        connection = await asyncpg.connect(self.postgres().admin_dsn)
        try:
            await connection.execute(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS {str(not refuse).lower()}')
            if refuse:
                await connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    self.database,
                )
        finally:
            await connection.close()

    def stop_services(self) -> None:
        """SIGTERM to all at once, so each leaves its consumer groups now rather than after a session timeout."""
        for instance in self.instances:
            if instance.alive():
                instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances:
            instance.stop()
        self.instances.clear()

    def stop_everything(self) -> None:
        self.stop_services()
        self.binance.stop()
        if self.zygote is not None:
            self.zygote.stop()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _postgres_record(state_dir: Path) -> localpg.PostgresInfo:
    """The server's connection details, whether or not it is running now (postgres_status says None when down)."""
    raw = json.loads((state_dir / "postgres.json").read_text())
    fields = {name: raw[name] for name in localpg.PostgresInfo.__dataclass_fields__}
    return localpg.PostgresInfo(**{**fields, "data_dir": Path(raw["data_dir"]), "log_path": Path(raw["log_path"])})
