"""`egis-local up | down | status | env | mark-price`: the whole system as local processes, no Docker.

`up` starts Apache Kafka (KRaft) and PostgreSQL on free loopback ports,
creates the `egis` database, migrates every service's schema, creates every
registry topic, then starts the four services. State, logs and the
connection settings live under `.egis/local/` in the repository, or under
`$EGIS_LOCAL_STATE_DIR` when that is set. `mark-price SYMBOL PRICE` publishes
a mark price for the paper venue, which fills market orders at it: nothing in
the local setup streams real prices.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


from egis_localinfra.kafka import kafka_status, start_kafka, stop_kafka
from egis_localinfra.ports import free_port
from egis_localinfra.postgres import create_database, postgres_status, start_postgres, stop_postgres

REPO_ROOT = Path(__file__).resolve().parents[3]
STATE_DIR = Path(os.environ.get("EGIS_LOCAL_STATE_DIR") or REPO_ROOT / ".egis" / "local")
DATABASE = "egis"
SERVICES = ("ledger", "signal_router", "executor", "reconciler")
# HTTP APIs of the services that have one; metrics for all of them.
HTTP_SERVICES = {"signal_router": "EGIS_HTTP_PORT", "ledger": "EGIS_HTTP_PORT"}
# Written to the env file: egis-ledger-admin reads EGIS_LEDGER_URL; the README's curl uses EGIS_GATEWAY_URL.
URL_VARIABLES = {"ledger": "EGIS_LEDGER_URL", "signal_router": "EGIS_GATEWAY_URL"}



def infra_up() -> dict[str, str]:
    """Kafka, Postgres, database, schemas, topics; returns the services' common environment."""
    from egis_common.setup import prepare_system

    started = time.monotonic()
    kafka = start_kafka(STATE_DIR / "kafka")
    print(f"kafka {kafka.version} ready at {kafka.bootstrap} ({time.monotonic() - started:.1f}s)")
    postgres = start_postgres(STATE_DIR / "postgres", durable=True)
    print(f"postgres {postgres.version.split(' (')[0]} ready at {postgres.host}:{postgres.port}")
    asyncio.run(create_database(postgres.admin_dsn, DATABASE, if_missing=True))
    url = postgres.dsn(DATABASE).replace("postgresql://", "postgresql+asyncpg://", 1)
    created = prepare_system(url, kafka.bootstrap)
    print(f"schemas migrated; {len(created)} topics created")
    env = {"EGIS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "EGIS_DATABASE_URL": url}
    _write_env(env)
    return env


def _write_env(env: dict[str, str]) -> None:
    path = STATE_DIR / "env"
    path.write_text("".join(f"export {key}='{value}'\n" for key, value in env.items()))
    path.chmod(0o600)


def start_service(service: str, env: dict[str, str]) -> dict[str, int | str]:
    logs = STATE_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ports = {"EGIS_METRICS_PORT": free_port()}
    if service in HTTP_SERVICES:
        ports[HTTP_SERVICES[service]] = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", f"{service}.main"],
        env={**os.environ, **env, **{k: str(v) for k, v in ports.items()}, "EGIS_LOG_JSON": "true"},
        stdout=(logs / f"{service}.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=REPO_ROOT,
    )
    wait_for_metrics(service, ports["EGIS_METRICS_PORT"], process)
    return {"pid": process.pid, **ports, "log": str(logs / f"{service}.log")}


def wait_for_metrics(service: str, port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the service serves /metrics; exits with its return code if it died first (see its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{service} exited with {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{service} did not serve metrics within {timeout}s")


def _services_file() -> Path:
    return STATE_DIR / "services.json"


def _load_services() -> dict[str, dict]:
    try:
        return json.loads(_services_file().read_text())
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def up(_: argparse.Namespace) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    env = infra_up()
    running = {name: info for name, info in _load_services().items() if _alive(int(info["pid"]))}
    for service in SERVICES:
        if service not in running:
            running[service] = start_service(service, env)
        print(f"{service}: pid {running[service]['pid']}, ports { {k: v for k, v in running[service].items() if k.endswith('PORT')} }")
    _services_file().write_text(json.dumps(running, indent=2))
    # The HTTP ports are free ones picked at start: the env file names them for the CLI and curl.
    _write_env({**env, **{variable: f"http://127.0.0.1:{running[service]['EGIS_HTTP_PORT']}"
                          for service, variable in URL_VARIABLES.items()}})
    print(f"\nEgis is up. Settings for other shells: source {STATE_DIR / 'env'}")


def down(_: argparse.Namespace) -> None:
    for service, info in _load_services().items():
        pid = int(info["pid"])
        if _alive(pid):
            os.killpg(pid, signal.SIGTERM)
            _wait_gone(pid)
        print(f"{service} stopped")
    _services_file().unlink(missing_ok=True)
    stop_kafka(STATE_DIR / "kafka")
    print("kafka stopped")
    stop_postgres(STATE_DIR / "postgres")
    print("postgres stopped")


def _wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def status(_: argparse.Namespace) -> None:
    kafka = kafka_status(STATE_DIR / "kafka")
    postgres = postgres_status(STATE_DIR / "postgres")
    print(f"kafka:    {f'{kafka.version} at {kafka.bootstrap}' if kafka else 'stopped'}")
    print(f"postgres: {f'127.0.0.1:{postgres.port}' if postgres else 'stopped'}")
    for service, info in _load_services().items():
        print(f"{service}: {'running' if _alive(int(info['pid'])) else 'dead'} (pid {info['pid']})")


def env(_: argparse.Namespace) -> None:
    print((STATE_DIR / "env").read_text(), end="")


def mark_price(arguments: argparse.Namespace) -> None:
    """Publish a MarkPrice to egis.exchange.mark-prices.v1 on the running Kafka."""
    from egis_common.contracts import MarkPrice
    from pydantic import ValidationError

    try:
        message = MarkPrice(symbol=arguments.symbol.upper(), price=arguments.price)  # a decimal string, validated
    except ValidationError as error:
        raise SystemExit(f"invalid price {arguments.price!r}: {error.errors()[0]['msg']}") from None
    kafka = kafka_status(STATE_DIR / "kafka")
    if kafka is None:
        raise SystemExit("kafka is not running: ./egis up first")
    asyncio.run(_publish(kafka.bootstrap, message))
    print(f"{message.symbol} mark price {message.price} published")


async def _publish(bootstrap: str, message) -> None:
    from aiokafka import AIOKafkaProducer
    from egis_common.topics import encode, key_for, topic_for

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic_for(message).name, encode(message), key=key_for(message))
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="egis-local", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True)
    for name, handler in (("up", up), ("down", down), ("status", status), ("env", env)):
        commands.add_parser(name, help=handler.__doc__).set_defaults(handler=handler)
    marks = commands.add_parser("mark-price", help=mark_price.__doc__)
    marks.add_argument("symbol", help="e.g. ETHUSDT")
    marks.add_argument("price", help="a decimal string, e.g. 2942.67")
    marks.set_defaults(handler=mark_price)
    arguments = parser.parse_args()
    arguments.handler(arguments)


if __name__ == "__main__":
    main()
