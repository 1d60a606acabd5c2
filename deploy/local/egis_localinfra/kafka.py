"""Run a real single-node Apache Kafka 4.x (KRaft, broker+controller) as a local process.

The broker's jars come from Maven Central (deploy/kafka/pom.xml), so neither Docker
nor a release tarball is needed; only `java` (17+) and `mvn` on PATH. Everything a
running broker owns (config, data, logs, kafka.json) lives in the caller's state_dir.
Linux only: liveness checks read /proc.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from egis_localinfra import kafka_auth
from egis_localinfra.ports import free_ports, port_is_free

KAFKA_DIR = Path(__file__).resolve().parent.parent.parent / "kafka"
LIB_DIR = KAFKA_DIR / "lib"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.yaml"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# G1 stated, so the JVM does not pick a collector by the machine's size; SerialGC gained nothing (bench/RESULTS.md).
JVM_FLAGS = ["-XX:+UseG1GC", "-Djava.awt.headless=true"]
# C1-only JIT: ready sooner, slower under load. Tests want it; benchmarks pass fast_start=False.
FAST_START_FLAGS = ["-XX:TieredStopAtLevel=1"]

# Brokers started by this Python process, kept so stop_kafka can reap them (no zombies).
_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class KafkaInfo:
    bootstrap: str
    pid: int
    log_path: Path
    version: str
    secure: bool = False  # SASL/SCRAM and ACLs on: clients log in (kafka_auth)


# ---------------------------------------------------------------- jars


def ensure_jars() -> Path:
    """Copy the broker's runtime jars into deploy/kafka/lib unless already done for this pom."""
    LIB_DIR.mkdir(parents=True, exist_ok=True)
    marker = LIB_DIR / ".complete"
    pom_hash = hashlib.sha256((KAFKA_DIR / "pom.xml").read_bytes()).hexdigest()
    lock_fd = os.open(LIB_DIR, os.O_RDONLY)
    try:
        # Lock so concurrent test processes don't copy over jars another JVM is reading.
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == pom_hash:
            return LIB_DIR
        marker.unlink(missing_ok=True)
        for old in LIB_DIR.glob("*.jar"):  # stale versions would shadow the new ones in lib/*
            old.unlink()
        _copy_dependencies()
        marker.write_text(pom_hash)  # written last: its presence means lib/ is complete
        return LIB_DIR
    finally:
        os.close(lock_fd)


def _copy_dependencies() -> None:
    cmd = ["mvn", "-B", "-q", "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={LIB_DIR}"]
    try:
        proc = subprocess.run(cmd, cwd=KAFKA_DIR, capture_output=True, text=True, timeout=600)
    except FileNotFoundError as exc:
        raise RuntimeError("mvn not found on PATH: needed to fetch the Kafka jars") from exc
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")


def _kafka_version(lib: Path) -> str:
    for jar in lib.glob("kafka-clients-*.jar"):
        if m := re.fullmatch(r"kafka-clients-(.+)\.jar", jar.name):
            return m.group(1)
    raise RuntimeError(f"no kafka-clients jar in {lib}")


# ---------------------------------------------------------------- status / stop


def kafka_status(state_dir: Path) -> KafkaInfo | None:
    """The broker recorded in state_dir/kafka.json, or None if it is not running."""
    try:
        data = json.loads((Path(state_dir) / "kafka.json").read_text())
        info = KafkaInfo(
            data["bootstrap"], int(data["pid"]), Path(data["log_path"]), data["version"], bool(data.get("secure"))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _alive(info.pid, Path(state_dir)) else None


def _alive(pid: int, state_dir: Path) -> bool:
    if (child := _CHILDREN.get(pid)) is not None:
        return child.poll() is None  # exact for our own child, and poll() reaps it
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    # Started by another process: guard against pid reuse by checking it is the broker
    # of this state_dir. (A zombie has an empty cmdline, so it counts as dead.)
    return b"kafka.Kafka" in cmdline and str(_props_path(state_dir)).encode() in cmdline


def stop_kafka(state_dir: Path) -> bool:
    """SIGTERM the broker (clean shutdown), SIGKILL it if it takes longer than STOP_TIMEOUT_S; False: none ran."""
    state_dir = Path(state_dir)
    info = kafka_status(state_dir)
    if info is not None:
        _terminate(info.pid, state_dir, STOP_TIMEOUT_S)
    (state_dir / "kafka.json").unlink(missing_ok=True)
    return info is not None


def _terminate(pid: int, state_dir: Path, timeout: float) -> None:
    for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)  # its own session (start_new_session), so pgid == pid
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while _alive(pid, state_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _alive(pid, state_dir):
            break
    _CHILDREN.pop(pid, None)


# ---------------------------------------------------------------- start


def start_kafka(
    state_dir: Path, *, heap: str = "-Xms512m -Xmx1g", fast_start: bool = True, secure: bool = False
) -> KafkaInfo:
    """Start a broker+controller on 127.0.0.1 and wait until it serves admin requests.

    `secure`: clients must log in (SASL/SCRAM-SHA-512) and may do only what an ACL allows; the super
    user's credential is kept in state_dir (`kafka_auth.admin_user`). A state directory keeps the mode
    of its first start.

    It comes back on the ports of its last start in state_dir while they are free, so clients
    that knew it (running services) find it again; otherwise, or on a first start, on free ports.
    Idempotent: if state_dir already has a live broker, that broker is returned.
    """
    state_dir = Path(state_dir).resolve()
    if (running := kafka_status(state_dir)) is not None:
        return running
    state_dir.mkdir(parents=True, exist_ok=True)
    lib = ensure_jars()
    admin = _admin_for(state_dir, secure)
    recorded = _recorded_ports(state_dir)
    port, controller_port = recorded if recorded and all(map(port_is_free, recorded)) else free_ports(2)
    _write_properties(state_dir, port, controller_port, admin)
    _format_storage(state_dir, lib, admin)
    proc = _launch(state_dir, lib, heap, fast_start)
    info = KafkaInfo(f"127.0.0.1:{port}", proc.pid, state_dir / "server.log", _kafka_version(lib), admin is not None)
    record = {**asdict(info), "log_path": str(info.log_path)}
    (state_dir / "kafka.json").write_text(json.dumps(record, indent=2))
    _wait_ready(info, state_dir, admin.client_options() if admin else {})
    return info


def _admin_for(state_dir: Path, secure: bool) -> kafka_auth.KafkaUser | None:
    formatted = (state_dir / "data" / "meta.properties").exists()
    admin = kafka_auth.admin_user(state_dir, create=secure and not formatted)
    if formatted and secure != (admin is not None):
        had = "with" if admin else "without"
        raise RuntimeError(
            f"{state_dir} holds a Kafka started {had} authentication: start it the same way, "
            "or remove the directory for a new one"
        )
    return admin


def admin_client_options(state_dir: Path) -> dict[str, str]:
    """aiokafka's keyword arguments for the broker's super user; {} for a broker without authentication."""
    admin = kafka_auth.admin_user(Path(state_dir).resolve())
    return admin.client_options() if admin else {}


def provision_access(state_dir: Path, bootstrap: str, users=(), grants=(), revoke=(), drop_users=()) -> str:
    """Users and ACLs on the secure broker of state_dir, as its super user (`kafka_auth.provision`)."""
    admin = kafka_auth.admin_user(Path(state_dir).resolve())
    if admin is None:
        raise RuntimeError(f"the Kafka of {state_dir} runs without authentication: it has no users or ACLs")
    return kafka_auth.provision(
        _java_cmd(ensure_jars(), fast_start=True), bootstrap, admin, users, grants, revoke, drop_users
    )


def _props_path(state_dir: Path) -> Path:
    return Path(state_dir).resolve() / "server.properties"


def _recorded_ports(state_dir: Path) -> list[int] | None:
    """The PLAINTEXT and CONTROLLER ports of the last start, from its server.properties."""
    try:
        text = _props_path(state_dir).read_text()
    except OSError:
        return None
    found = re.search(
        r"^listeners=(?:SASL_)?PLAINTEXT://127\.0\.0\.1:(\d+),CONTROLLER://127\.0\.0\.1:(\d+)$", text, re.M
    )
    return [int(found[1]), int(found[2])] if found else None


def _write_properties(state_dir: Path, port: int, controller_port: int, admin: kafka_auth.KafkaUser | None) -> None:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        # Dynamic quorum (KIP-853): the voter set lives in the log, so a restart may use new ports.
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "log.dirs": str(state_dir / "data"),
        # One broker: internal topics must not ask for more replicas than exist.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",  # consumers join at once in tests
        "auto.create.topics.enable": "false",  # typos in topic names should fail loudly
        "num.partitions": "1",
    }
    if admin is not None:
        props |= kafka_auth.broker_properties(port, controller_port, admin)
    path = _props_path(state_dir)
    path.touch(mode=0o600)  # a secure broker's file holds its super user's password
    path.chmod(0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def _java_cmd(lib: Path, *args: str, fast_start: bool = True) -> list[str]:
    return ["java", *JVM_FLAGS, *(FAST_START_FLAGS if fast_start else []), "-cp", str(lib / "*"), *args]


def _format_storage(state_dir: Path, lib: Path, admin: kafka_auth.KafkaUser | None) -> None:
    if (state_dir / "data" / "meta.properties").exists():
        return  # already formatted by an earlier start: keep its topics
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # No log4j2 config here: log4j's default (errors to stderr) keeps server.log for the broker.
    cmd = _java_cmd(
        lib,
        "kafka.tools.StorageTool",
        "format",
        f"--cluster-id={cluster_id}",  # "=": an id may start with "-"
        "-c",
        str(_props_path(state_dir)),
        "--standalone",
        *(kafka_auth.format_arguments(admin) if admin else []),
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        raise RuntimeError(f"kafka storage format failed ({proc.returncode}):\n{output}")


def _launch(state_dir: Path, lib: Path, heap: str, fast_start: bool) -> subprocess.Popen:
    log_flags = [f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={state_dir}"]
    cmd = _java_cmd(lib, *heap.split(), *log_flags, "kafka.Kafka", str(_props_path(state_dir)), fast_start=fast_start)
    with open(state_dir / "kafka.out", "ab") as out:  # JVM crashes land here, not in server.log
        proc = subprocess.Popen(
            cmd, cwd=state_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _wait_ready(info: KafkaInfo, state_dir: Path, options: dict[str, str]) -> None:
    """Block until the broker answers list_topics; on failure kill it and raise with its log."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    host, port = info.bootstrap.rsplit(":", 1)
    while time.monotonic() < deadline and _alive(info.pid, state_dir):
        # The cheap port probe first, so the admin client only tries once the listener is up.
        if _port_open(host, int(port)) and _run_async(_admin_answers(info.bootstrap, options)):
            return
        time.sleep(0.2)
    died = not _alive(info.pid, state_dir)
    _terminate(info.pid, state_dir, timeout=0)
    (state_dir / "kafka.json").unlink(missing_ok=True)
    why = "exited during startup" if died else f"not ready after {READY_TIMEOUT_S:.0f}s"
    raise RuntimeError(f"Kafka {why}.\n{_tail(state_dir / 'kafka.out')}\n{_tail(info.log_path)}")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def list_topics(bootstrap: str, **options: str) -> list[str]:
    """A metadata request through an admin client of its own: what "the broker answers" means here."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    try:
        await admin.start()
        return await admin.list_topics()
    finally:
        await admin.close()


async def _admin_answers(bootstrap: str, options: dict[str, str]) -> bool:
    try:
        await list_topics(bootstrap, **options)
        return True
    except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
        return False


def _run_async(coro):
    # start_kafka is sync but may be called from async code (e.g. an async fixture),
    # where asyncio.run would refuse to nest: run the coroutine on a helper thread then.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"--- {path}: (missing)"
    return f"--- last {len(text)} lines of {path}:\n" + "\n".join(text)
