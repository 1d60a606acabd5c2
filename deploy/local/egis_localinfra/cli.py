"""`egis-local up | down | status | restart | env | mark-price | operators | team`: the whole system as local processes.

`up` starts Apache Kafka (KRaft) and PostgreSQL on loopback ports, creates the
`egis` database, migrates every service's schema, creates every registry topic,
then starts the four services. Kafka requires a login (SASL/SCRAM-SHA-512) and
allows nothing without an ACL: each service, the webhook gateway, operators and
the mark-price feed log in as principals of their own, made at the first `up`
with passwords kept 0600 in the state, as are the first operator's signing key
and an admin API token for the ledger (each printed once). The env file gives an
operator's shell that login, key and token; `egis` reads it when its shell did not.
Run again, it brings back whatever died: Kafka
and Postgres come back on the ports they had, so running services find them
again; a dead or unhealthy service is restarted on its own ports, and one
started against addresses that are no longer right is restarted against the
new ones. A healthy system is left as it is. When Debian's Prometheus is installed,
`up` also starts it on a loopback port, scraping every service (a file_sd list written
from the services it started) and evaluating the alert rules of deploy/prometheus/, and
prints its URL. `status` asks every component whether it answers (Kafka metadata, a
Postgres query, each service's `/health/ready`, Prometheus's targets) and exits
non-zero unless all do. `restart [component]` stops
one component (or everything) and brings the system back up.

State, logs and the connection settings live under `.egis/local/` in the
repository, or under `$EGIS_LOCAL_STATE_DIR` when that is set. `mark-price
SYMBOL PRICE` publishes a mark price for the paper venue, which fills market
orders at it: nothing in the local setup streams real prices. `operators` adds, rotates
and revokes operators' signing keys in the keys file the reconciler reads again on every
change; `team create NAME` makes a read-only Kafka login for a team consuming Egis's
public events. With `--json`, every command but `compose-secrets` prints its outcome as one
JSON document on stdout (`status`: an object per component) and its progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egis_common import access
from egis_common.health import OK, PROBE_TIMEOUT_S, database_answers, probe
from egis_localinfra import kafka_auth, local_access, prometheus
from egis_localinfra.kafka import (
    admin_client_options,
    kafka_status,
    list_topics,
    provision_access,
    start_kafka,
    stop_kafka,
)
from egis_localinfra.ports import free_port, port_is_free
from egis_localinfra.postgres import create_database, postgres_status, start_postgres, stop_postgres

REPO_ROOT = Path(__file__).resolve().parents[3]
STATE_DIR = Path(os.environ.get("EGIS_LOCAL_STATE_DIR") or REPO_ROOT / ".egis" / "local")
DATABASE = "egis"
SERVICES = ("ledger", "signal_router", "executor", "reconciler")
# HTTP APIs of the services that have one; metrics and health for all of them.
HTTP_SERVICES = {"signal_router": "EGIS_HTTP_PORT", "ledger": "EGIS_HTTP_PORT"}
# Written to the env file: `egis` reads EGIS_LEDGER_URL (and EGIS_LEDGER_TOKEN, the admin token the first `up`
# makes); the README's curl uses EGIS_GATEWAY_URL.
URL_VARIABLES = {"ledger": "EGIS_LEDGER_URL", "signal_router": "EGIS_GATEWAY_URL"}
SERVICE_START_TIMEOUT_S = 60.0
# A running service reconnects on its own once Kafka or Postgres is back; this is how long it gets.
SERVICE_SETTLE_TIMEOUT_S = 30.0
# Kafka's and Postgres's answers to `status` and `up`, larger than a service's own probe:
# a cold admin client connects first.
INFRA_PROBE_TIMEOUT_S = 10.0
# What a service records of its dependencies; a difference from today's means it must restart.
DEPENDENCIES = ("kafka", "postgres")
# A first scrape of every target happens within one scrape interval of Prometheus finding them.
PROMETHEUS_FIRST_SCRAPE_TIMEOUT_S = 20.0


# ---------------------------------------------------------------- infrastructure


def infra_up() -> dict[str, str]:
    """Kafka, Postgres, database, schemas, topics; returns the services' common environment."""
    from egis_common.setup import prepare_system

    kafka = _kafka_up()
    if local_access.apply(STATE_DIR / "kafka", kafka.bootstrap, local_access.users(STATE_DIR)):
        print(f"kafka users and ACLs applied: {', '.join(local_access.PRINCIPALS)}")
    postgres = _postgres_up()
    asyncio.run(create_database(postgres.admin_dsn, DATABASE, if_missing=True))
    url = postgres.dsn(DATABASE).replace("postgresql://", "postgresql+asyncpg://", 1)
    created = prepare_system(url, kafka.bootstrap, **_kafka_admin())
    print(f"schemas migrated; {len(created)} topics created")
    return {"EGIS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "EGIS_DATABASE_URL": url}


def _kafka_admin() -> dict[str, str]:
    """The local broker's super user, for topics and health probes."""
    return admin_client_options(STATE_DIR / "kafka")


def _operator_env(env: dict[str, str]) -> dict[str, str]:
    """For an operator's shell (`source`): where Egis runs, the operator's Kafka login and signing key."""
    (operator_id, key), _ = local_access.operator(STATE_DIR)
    return {
        **env,
        **local_access.login_env(local_access.users(STATE_DIR)["operator"]),
        "EGIS_OPERATOR_ID": operator_id,
        "EGIS_OPERATOR_KEY": key,
    }


def _kafka_up():
    state = STATE_DIR / "kafka"
    running = kafka_status(state)
    if running and (problem := _kafka_problem(running.bootstrap)) != OK:
        print(f"kafka at {running.bootstrap} runs but does not answer ({problem}): restarting it")
        stop_kafka(state)
        running = None
    started = time.monotonic()
    kafka = running or start_kafka(state, secure=True)
    how = "running" if running else f"started ({time.monotonic() - started:.1f}s)"
    print(f"kafka {kafka.version} at {kafka.bootstrap}: {how}")
    return kafka


def _postgres_up():
    state = STATE_DIR / "postgres"
    running = postgres_status(state)
    if running and (problem := _postgres_problem(running.admin_dsn)) != OK:
        print(f"postgres at {running.host}:{running.port} runs but does not answer ({problem}): restarting it")
        stop_postgres(state)
        running = None
    started = time.monotonic()
    postgres = running or start_postgres(state, durable=True)
    how = "running" if running else f"started ({time.monotonic() - started:.1f}s)"
    print(f"postgres {postgres.version.split(' (')[0]} at {postgres.host}:{postgres.port}: {how}")
    return postgres


def _kafka_problem(bootstrap: str) -> str:
    return asyncio.run(probe(lambda: list_topics(bootstrap, **_kafka_admin()), INFRA_PROBE_TIMEOUT_S))


def _postgres_problem(dsn: str) -> str:
    return asyncio.run(probe(database_answers(dsn), INFRA_PROBE_TIMEOUT_S))


def _write_env(env: dict[str, str]) -> None:
    path = STATE_DIR / "env"
    path.write_text("".join(f"export {key}='{value}'\n" for key, value in env.items()))
    path.chmod(0o600)


# ---------------------------------------------------------------- services


def _dependencies(env: dict[str, str]) -> dict[str, str]:
    """Where a service finds Kafka and Postgres, without the database password."""
    from sqlalchemy.engine import make_url

    database = make_url(env["EGIS_DATABASE_URL"])
    return {
        "kafka": env["EGIS_KAFKA_BOOTSTRAP_SERVERS"],
        "postgres": f"{database.host}:{database.port}/{database.database}",
    }


def start_service(service: str, env: dict[str, str], recorded: dict | None = None) -> dict[str, int | str]:
    """Start `service` on its recorded ports where they are free (its URLs stay valid), and wait until it is ready."""
    logs = STATE_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    names = ["EGIS_METRICS_PORT", *([HTTP_SERVICES[service]] if service in HTTP_SERVICES else [])]
    ports = {name: _recorded_or_free((recorded or {}).get(name)) for name in names}
    process = subprocess.Popen(
        [sys.executable, "-m", f"{service}.main"],
        env={**os.environ, **env, **{k: str(v) for k, v in ports.items()}, "EGIS_LOG_JSON": "true"},
        stdout=(logs / f"{service}.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=REPO_ROOT,
    )
    try:
        wait_for_ready(service, ports["EGIS_METRICS_PORT"], process)
    except SystemExit:
        _stop_service(service, process.pid)  # not left running unrecorded
        raise
    return {"pid": process.pid, **ports, "log": str(logs / f"{service}.log"), **_dependencies(env)}


def _recorded_or_free(port: int | None) -> int:
    return port if port and port_is_free(port) else free_port()


def wait_for_ready(
    service: str, port: int, process: subprocess.Popen, timeout: float = SERVICE_START_TIMEOUT_S
) -> None:
    """Until the service answers /health/ready; exits if it died first or never gets there (see its log)."""
    _wait_for_page(service, f"http://127.0.0.1:{port}/health/ready", process, timeout)


def wait_for_metrics(
    service: str, port: int, process: subprocess.Popen, timeout: float = SERVICE_START_TIMEOUT_S
) -> None:
    """Until the service serves /metrics; exits with its return code if it died first (see its log)."""
    _wait_for_page(service, f"http://127.0.0.1:{port}/metrics", process, timeout)


def _wait_for_page(service: str, url: str, process: subprocess.Popen, timeout: float) -> None:
    problem = _poll(lambda: _page_problem(url), lambda: process.poll() is None, timeout)
    if process.poll() is not None:
        raise SystemExit(f"{service} exited with {process.returncode}; see its log")
    if problem is not None:
        raise SystemExit(f"{service} not ready within {timeout:g}s ({problem}); see its log")


def _poll(problem_of: Callable[[], str | None], alive: Callable[[], bool], timeout: float) -> str | None:
    """The last problem after `timeout`, or None once there is none; stops early when `alive()` turns false."""
    deadline = time.monotonic() + timeout
    while (problem := problem_of()) is not None and alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    return problem


def _page_problem(url: str) -> str | None:
    """None when the page answers 200; else why not, on one line (a 503 from /health/ready names its failed checks)."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S + 3):
            return None
    except urllib.error.HTTPError as error:
        return _not_ready_reason(error)
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return f"no answer on {url.split('/')[2]} ({reason})"


def _not_ready_reason(error: urllib.error.HTTPError) -> str:
    try:
        checks = json.loads(error.read())["checks"]
        return "not ready: " + ", ".join(f"{name}: {result}" for name, result in checks.items() if result != OK)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"HTTP {error.code}"


def _service_alive(service: str, pid: int) -> bool:
    """The pid is that service's process, alive (a reused pid or a zombie is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return f"{service}.main".encode() in cmdline.split(b"\0")


def _stop_services(pids: dict[str, int], timeout: float = 15) -> list[str]:
    """SIGTERM to every one at once, SIGKILL to those still running after `timeout`; returns those that ran."""
    ran = [service for service, pid in pids.items() if _service_alive(service, pid)]
    for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        running = {service: pid for service, pid in pids.items() if _service_alive(service, pid)}
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):  # it may have ended since
                os.killpg(pid, sig)  # its own session (start_new_session), so pgid == pid
        deadline = time.monotonic() + wait_s
        while any(_service_alive(*item) for item in running.items()) and time.monotonic() < deadline:
            time.sleep(0.1)
    return ran


def _stop_service(service: str, pid: int) -> None:
    _stop_services({service: pid})


def _stop_moved(services: dict[str, dict], env: dict[str, str]) -> dict[str, str]:
    """Stop, all at once, the running services that look for Kafka or Postgres where it no longer is; returns why,
    per service.

    At once: a service whose broker is gone cannot finish a clean shutdown, so each waits out the whole grace.
    """
    wanted = _dependencies(env)
    moved = {}
    for service, info in services.items():
        changes = [
            f"{name} {info.get(name)} -> {wanted[name]}" for name in DEPENDENCIES if info.get(name) != wanted[name]
        ]
        if changes and _service_alive(service, int(info["pid"])):
            moved[service] = ", ".join(changes)
    _stop_services({service: int(services[service]["pid"]) for service in moved})
    return moved


def _ensure_service(service: str, info: dict | None, env: dict[str, str], moved: str | None = None) -> dict:
    """The service running and ready, restarting it only if it died, is unhealthy, or was stopped because `moved`."""
    if info is None:
        return _report_started(service, "started", start_service(service, env))
    if moved:
        return _report_started(service, f"restarted: {moved}", start_service(service, env, info))
    pid = int(info["pid"])
    if not _service_alive(service, pid):
        return _report_started(service, f"not running (pid {pid}): started again", start_service(service, env, info))
    url = f"http://127.0.0.1:{info['EGIS_METRICS_PORT']}/health/ready"
    problem = _poll(lambda: _page_problem(url), lambda: _service_alive(service, pid), SERVICE_SETTLE_TIMEOUT_S)
    if problem is None:
        print(f"{service}: healthy, left running (pid {pid})")
        return info
    _stop_service(service, pid)
    return _report_started(service, f"unhealthy ({problem}): restarted", start_service(service, env, info))


def _report_started(service: str, what: str, info: dict) -> dict:
    print(f"{service}: {what}, pid {info['pid']}, {_ports(info)}")
    return info


def _ports(info: dict) -> str:
    """Like "metrics :41234, http :41235"."""
    return ", ".join(f"{_port_name(name)} :{info[name]}" for name in info if name.endswith("_PORT"))


def _port_name(setting: str) -> str:
    """EGIS_METRICS_PORT -> metrics."""
    return setting.removeprefix("EGIS_").removesuffix("_PORT").lower()


def _services_file() -> Path:
    return STATE_DIR / "services.json"


def _load_services() -> dict[str, dict]:
    try:
        return json.loads(_services_file().read_text())
    except (OSError, ValueError):
        return {}


def _save_services(services: dict[str, dict]) -> None:
    _services_file().write_text(json.dumps(services, indent=2))


# ---------------------------------------------------------------- commands


class NotRunning(SystemExit):
    """The local system, or the part a command needs, is not up: one line and exit 1 here; `egis` says it with
    its exit code for a service that does not answer."""


@dataclass(frozen=True)
class Outcome:
    """What a command did, as data: printed as JSON with --json; and its exit code."""

    data: dict[str, Any]
    code: int = 0


def run_command(handler: Callable[[argparse.Namespace], Outcome | None], arguments: argparse.Namespace) -> int:
    """The handler's exit code. With --json, stdout carries only its outcome as JSON: what it says on the way
    (progress, the text form's lines) goes to stderr."""
    if not _as_json(arguments):
        outcome = handler(arguments)
        return outcome.code if outcome else 0
    with contextlib.redirect_stdout(sys.stderr):
        outcome = handler(arguments)
    if outcome:
        print(json.dumps(outcome.data, indent=2, default=str))
    return outcome.code if outcome else 0


def _as_json(arguments: argparse.Namespace | None) -> bool:
    return bool(getattr(arguments, "json", False))


def _service_facts(info: dict) -> dict[str, Any]:
    """A service's record as `up` and `status` show it: pid, ports by name, log."""
    return {
        "pid": int(info["pid"]),
        "ports": {_port_name(name): info[name] for name in info if name.endswith("_PORT")},
        "log": info["log"],
    }


def up(arguments: argparse.Namespace | None = None) -> Outcome:
    """Start what is missing, bring back what died, leave what is healthy alone."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    env = infra_up()
    logins = local_access.users(STATE_DIR)
    operator, made = local_access.operator(STATE_DIR)
    services = _load_services()
    moved = _stop_moved(services, env)
    for service in SERVICES:
        service_env = {**env, **local_access.service_env(service, logins, STATE_DIR / local_access.KEYS_FILE)}
        services[service] = _ensure_service(service, services.get(service), service_env, moved.get(service))
        _save_services(services)  # after each one: a failure further on leaves a true record
    # The HTTP ports are free ones picked at a service's first start: the env file names them for the CLI and curl.
    urls = {
        variable: f"http://127.0.0.1:{services[service]['EGIS_HTTP_PORT']}"
        for service, variable in URL_VARIABLES.items()
    }
    token, token_made = local_access.ledger_token(STATE_DIR, env["EGIS_DATABASE_URL"], urls["EGIS_LEDGER_URL"])
    _write_env({**_operator_env(env), **urls, "EGIS_LEDGER_TOKEN": token})
    prometheus_url = _prometheus_up(services)
    outcome = {
        **_dependencies(env),
        "services": {service: _service_facts(info) for service, info in services.items()},
        "prometheus": prometheus_url,
        "console": f"{urls['EGIS_LEDGER_URL']}/",
        "env_file": str(STATE_DIR / "env"),
        # Shown once, at the `up` that made them: JSON holds them instead of the text.
        **({"first_operator": {"id": operator[0], "key": operator[1]}} if made else {}),
        **({"admin_token": token} if token_made else {}),
    }
    if _as_json(arguments):
        return Outcome(outcome)
    if made:
        print(
            f"\nThe first operator, {operator[0]}, signs repairs with this key (shown once; kept 0600 in "
            f"{STATE_DIR / local_access.OPERATOR_FILE}):\n  {operator[1]}"
        )
    if token_made:
        print(
            f"\nAn admin API token, {local_access.FIRST_OPERATOR} (shown once; `egis` reads it from "
            f"{STATE_DIR / 'env'}):\n  {token}"
        )
    print(f"\nThe operators' console: {urls['EGIS_LEDGER_URL']}/ (log in with an API token)")
    print(f"Egis is up. Settings for other shells (an operator's, with the key): source {STATE_DIR / 'env'}")
    return Outcome(outcome)


def _prometheus_up(services: dict[str, dict]) -> str | None:
    """Prometheus scraping `services` and evaluating the alert rules, once its first scrape of each is done; its
    URL, None when it is not installed."""
    if not prometheus.installed():
        print("prometheus: not installed, nothing scrapes the services (./egis installs Debian's package)")
        return None
    running = prometheus.start(
        STATE_DIR / "prometheus", {service: int(info["EGIS_METRICS_PORT"]) for service, info in services.items()}
    )
    health = (0, 0)

    def unscraped() -> str | None:
        nonlocal health
        with contextlib.suppress(OSError, ValueError, KeyError):
            health = prometheus.targets_health(running)
        return None if health == (len(services), len(services)) else f"{health[0]}/{len(services)} targets up"

    _poll(unscraped, lambda: True, PROMETHEUS_FIRST_SCRAPE_TIMEOUT_S)
    print(f"prometheus at {running.url}: {health[0]}/{health[1]} targets up, alert rules loaded")
    return running.url


def down(_: argparse.Namespace | None = None, *, forget_services: bool = True) -> Outcome:
    """Stop Prometheus, the services, Kafka and Postgres: each one that runs."""
    stopped = []

    def said(*components: str) -> None:
        stopped.extend(components)
        for component in components:
            print(f"{component} stopped")

    if prometheus.stop(STATE_DIR / "prometheus"):
        said("prometheus")
    services = _load_services()
    said(*_stop_services({service: int(info["pid"]) for service, info in services.items()}))
    if forget_services:
        _services_file().unlink(missing_ok=True)
    if stop_kafka(STATE_DIR / "kafka"):
        said("kafka")
    if stop_postgres(STATE_DIR / "postgres"):
        said("postgres")
    if not stopped:
        print("nothing was running")
    return Outcome({"stopped": stopped})


def restart(arguments: argparse.Namespace) -> Outcome:
    """Stop one component (kafka, postgres, a service), or everything, then `up`."""
    component = arguments.component
    if component is None:
        down(forget_services=False)  # kept: the services come back on their ports, and the URLs in env stay right
    elif component == "kafka":
        stop_kafka(STATE_DIR / "kafka")
    elif component == "postgres":
        stop_postgres(STATE_DIR / "postgres")
    elif info := _load_services().get(component):
        _stop_service(component, int(info["pid"]))
    print(f"{component or 'everything'} stopped")
    return Outcome({"restarted": component or "everything", **up(arguments).data})


@dataclass(frozen=True)
class ComponentStatus:
    """What `status` found of one component; the text line and the JSON object are both rendered from it."""

    component: str
    state: str  # healthy, unhealthy, stopped (nothing recorded since `down`), or absent (Prometheus not installed)
    detail: str = ""  # the text form's line after the state
    facts: dict[str, Any] = field(default_factory=dict)  # address, pid, ...; `problem`: why it is not healthy

    @property
    def healthy(self) -> bool:
        return self.state == HEALTHY

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "healthy": self.healthy, **self.facts, "detail": self.detail}


HEALTHY, UNHEALTHY, STOPPED = "healthy", "unhealthy", "stopped"
NOT_INSTALLED = "absent"  # Prometheus is optional: a system without it is still whole


def system_status() -> list[ComponentStatus]:
    """Every component (kafka, postgres, each service, prometheus), asked at once whether it answers."""
    return asyncio.run(_status_lines())


def status_exit_code(components: list[ComponentStatus]) -> int:
    """0 when every component answers (Prometheus may be absent), else 1; stopped counts as not answering."""
    return 0 if all(c.state in (HEALTHY, NOT_INSTALLED) for c in components) else 1


def status_as_json(components: list[ComponentStatus]) -> dict[str, Any]:
    return {
        "healthy": status_exit_code(components) == 0,
        "components": {c.component: c.as_json() for c in components},
    }


def status(arguments: argparse.Namespace) -> Outcome:
    """One line per component: healthy only if it answers; exits 1 unless all do."""
    components = system_status()
    if not _as_json(arguments):
        width = max(len(c.component) for c in components) + 2
        for c in components:
            print(f"{c.component + ':':<{width}}{c.state:<11}{c.detail}".rstrip())
    return Outcome(status_as_json(components), status_exit_code(components))


async def _status_lines() -> list[ComponentStatus]:
    # The services' record exists from `up` to `down`: until then, whatever does not run is missed, not stopped.
    recorded = _services_file().exists()
    services = _load_services()
    return list(
        await asyncio.gather(
            _kafka_line(recorded),
            _postgres_line(recorded),
            *(asyncio.to_thread(_service_line, service, services.get(service), recorded) for service in SERVICES),
            asyncio.to_thread(_prometheus_line, recorded),
        )
    )


def _absent(component: str, recorded: bool) -> ComponentStatus:
    if recorded:
        return ComponentStatus(component, UNHEALTHY, "not running", {"problem": "not running"})
    return ComponentStatus(component, STOPPED)


def _prometheus_line(recorded: bool) -> ComponentStatus:
    if not prometheus.installed():
        return ComponentStatus("prometheus", NOT_INSTALLED, "not installed (./egis installs Debian's package)")
    running = prometheus.status(STATE_DIR / "prometheus")
    if running is None:
        return _absent("prometheus", recorded)
    facts: dict[str, Any] = {"address": running.url, "pid": running.pid}
    try:
        up, total = prometheus.targets_health(running)
    except (OSError, ValueError, KeyError) as error:
        problem = f"no answer ({error})"
        return ComponentStatus(
            "prometheus", UNHEALTHY, f"{running.url}, pid {running.pid}: {problem}", {**facts, "problem": problem}
        )
    # Healthy when it answers: a service its targets miss has its own unhealthy line.
    return ComponentStatus(
        "prometheus",
        HEALTHY,
        f"{running.url}, pid {running.pid}, targets {up}/{total} up",
        {**facts, "targets_up": up, "targets": total},
    )


async def _kafka_line(recorded: bool) -> ComponentStatus:
    kafka = kafka_status(STATE_DIR / "kafka")
    if kafka is None:
        return _absent("kafka", recorded)
    facts: dict[str, Any] = {"address": kafka.bootstrap, "pid": kafka.pid, "version": kafka.version}
    problem = await probe(lambda: list_topics(kafka.bootstrap, **_kafka_admin()), INFRA_PROBE_TIMEOUT_S)
    if problem != OK:
        problem = f"no metadata ({problem})"
        return ComponentStatus(
            "kafka", UNHEALTHY, f"{kafka.bootstrap}, pid {kafka.pid}: {problem}", facts | {"problem": problem}
        )
    return ComponentStatus("kafka", HEALTHY, f"{kafka.version} at {kafka.bootstrap}, pid {kafka.pid}", facts)


async def _postgres_line(recorded: bool) -> ComponentStatus:
    postgres = postgres_status(STATE_DIR / "postgres")
    if postgres is None:
        return _absent("postgres", recorded)
    problem = await probe(database_answers(postgres.dsn(DATABASE)), INFRA_PROBE_TIMEOUT_S)
    facts: dict[str, Any] = {"address": f"{postgres.host}:{postgres.port}", "database": DATABASE, "pid": postgres.pid}
    where = f"{postgres.host}:{postgres.port}, database {DATABASE}, pid {postgres.pid}"
    if problem == OK:
        return ComponentStatus("postgres", HEALTHY, where, facts)
    return ComponentStatus("postgres", UNHEALTHY, f"{where}: {problem}", facts | {"problem": problem})


def _service_line(service: str, info: dict | None, recorded: bool) -> ComponentStatus:
    if info is None:
        return _absent(service, recorded)
    pid = int(info["pid"])
    facts: dict[str, Any] = {"address": f"127.0.0.1:{info['EGIS_METRICS_PORT']}", **_service_facts(info)}
    if not _service_alive(service, pid):
        problem = "not running"
        return ComponentStatus(
            service, UNHEALTHY, f"not running (pid {pid}; see {info['log']})", facts | {"problem": problem}
        )
    problem = _page_problem(f"http://127.0.0.1:{info['EGIS_METRICS_PORT']}/health/ready")
    if problem is None:
        return ComponentStatus(service, HEALTHY, f"pid {pid}, {_ports(info)}", facts)
    return ComponentStatus(service, UNHEALTHY, f"pid {pid}: {problem}", facts | {"problem": problem})


def env(arguments: argparse.Namespace) -> Outcome:
    """Print the settings of the running system, for `source`."""
    try:
        text = (STATE_DIR / "env").read_text()
    except FileNotFoundError:
        raise NotRunning(f"no settings at {STATE_DIR / 'env'}: ./egis up first") from None
    if not _as_json(arguments):
        print(text, end="")
    return Outcome({"env_file": str(STATE_DIR / "env"), "settings": env_settings(text)})


def env_settings(text: str) -> dict[str, str]:
    """The settings of an env file's `export NAME='value'` lines."""
    words = (shlex.split(line) for line in text.splitlines())
    return dict(word.split("=", 1) for line in words if line[:1] == ["export"] for word in line[1:] if "=" in word)


def mark_price(arguments: argparse.Namespace) -> Outcome:
    """Publish a MarkPrice to egis.exchange.mark-prices.v1 on the running Kafka, as the price feed."""
    from egis_common import mark_price as feed

    message = feed.mark_price(arguments.symbol, arguments.price)
    kafka = kafka_status(STATE_DIR / "kafka")
    if kafka is None:
        raise NotRunning("kafka is not running: ./egis up first")
    asyncio.run(feed.publish(kafka.bootstrap, message, local_access.users(STATE_DIR)["prices"].client_options()))
    print(f"{message.symbol} mark price {message.price} published")
    return Outcome({"symbol": message.symbol, "price": str(message.price), "published": True})


def compose_secrets(arguments: argparse.Namespace) -> None:
    """Write docker-compose's secrets once: .env and the broker's JAAS file (0600, never committed)."""
    from egis_localinfra import compose

    for path in compose.write_secrets(force=arguments.force):
        print(f"written: {path} (0600)")


def operators(arguments: argparse.Namespace) -> Outcome:
    """The operators the reconciler accepts: list, add, rotate or revoke a key; no restart needed.

    Only `up` makes the first operator (and shows its key): listing changes nothing."""
    keys = local_access.operator_keys(STATE_DIR)
    mine = local_access.this_operator(STATE_DIR)
    name, action = arguments.name, arguments.action
    if action == "list":
        print("\n".join(sorted(keys)) or "no operators yet: the first `./egis up` makes the first one")
        return Outcome({"operators": sorted(keys)})
    if not name:
        raise SystemExit(f"egis-local operators {action}: name the operator")
    if action == "add" and name in keys:
        raise SystemExit(f"operator {name} exists: rotate its key, or revoke it first")
    if action in ("rotate", "revoke") and name not in keys:
        raise SystemExit(f"no operator {name}; known: {', '.join(sorted(keys)) or 'none'}")
    if action == "revoke":
        yours = " It is this machine's operator: `./egis repair` will be refused too." if name == mine else ""
        if not (arguments.yes or _confirmed(f"revoke {name}'s key? their next command is refused.{yours} [y/N] ")):
            print("nothing changed")
            return Outcome({"operator": name, "revoked": False}, 1)
        del keys[name]
        local_access.write_operator_keys(STATE_DIR, keys)
        print(f"{name}'s key revoked; the reconciler refuses it from the next command on")
        return Outcome({"operator": name, "revoked": True})
    keys[name] = local_access.new_operator_key()
    local_access.write_operator_keys(STATE_DIR, keys)
    if name == mine:  # this machine signs with the new key from now: its env file says so
        local_access.set_this_operator(STATE_DIR, name, keys[name])
        if (STATE_DIR / "env").exists():
            _write_env({**env_settings((STATE_DIR / "env").read_text()), "EGIS_OPERATOR_KEY": keys[name]})
    if not _as_json(arguments):  # shown once: in the JSON instead
        print(
            f"{name}'s signing key ({'new' if action == 'add' else 'rotated; the old one is refused from now'}, "
            f"shown once):\n  {keys[name]}\nthey sign with: export EGIS_OPERATOR_ID={name} EGIS_OPERATOR_KEY=<the key>"
        )
        if name == mine:
            print(f"{name} is this machine's operator: {STATE_DIR / 'env'} has the new key (source it again)")
    return Outcome({"operator": name, "action": action, "key": keys[name]})


def team(arguments: argparse.Namespace) -> Outcome:
    """A read-only Kafka principal for a team consuming Egis's public events, or its removal."""
    kafka = kafka_status(STATE_DIR / "kafka")
    if kafka is None:
        raise NotRunning("kafka is not running: ./egis up first")
    grant = access.team(arguments.name)  # checks the name
    bindings = access.bindings(grant)
    if arguments.action == "remove":
        if not (arguments.yes or _confirmed(f"remove {grant.principal} and its ACLs? [y/N] ")):
            print("nothing changed")
            return Outcome({"principal": grant.principal, "removed": False}, 1)
        # Every ACL of its principal ("User:<name>"), then its login.
        acl_principals = sorted({binding.principal for binding in bindings})
        provision_access(STATE_DIR / "kafka", kafka.bootstrap, revoke=acl_principals, drop_users=[grant.principal])
        print(f"{grant.principal} removed")
        return Outcome({"principal": grant.principal, "removed": True})
    user = kafka_auth.KafkaUser(grant.principal, kafka_auth.new_password())
    provision_access(STATE_DIR / "kafka", kafka.bootstrap, users=[user], grants=bindings)
    if not _as_json(arguments):  # the password is shown once: in the JSON instead
        print(
            f"{grant.principal} may read {', '.join(grant.reads)}\nin consumer groups named {grant.group_prefix}*, "
            f"and write nothing. Its login (SASL/SCRAM-SHA-512 at {kafka.bootstrap}; password shown once):\n"
            f"  username: {user.name}\n  password: {user.password}"
        )
    return Outcome(
        {
            "principal": grant.principal,
            "reads": list(grant.reads),
            "group_prefix": grant.group_prefix,
            "bootstrap": kafka.bootstrap,
            "mechanism": "SCRAM-SHA-512",
            "username": user.name,
            "password": user.password,
        }
    )


def _confirmed(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:  # no terminal to ask on: not confirmed
        return False


def _with_json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON (progress goes to stderr)")
    return parser


def main() -> None:
    parser = argparse.ArgumentParser(prog="egis-local", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True, dest="command")
    for name, handler in (("up", up), ("down", down), ("status", status), ("env", env)):
        _with_json(commands.add_parser(name, help=handler.__doc__)).set_defaults(handler=handler)
    restarts = _with_json(commands.add_parser("restart", help=restart.__doc__))
    restarts.add_argument(
        "component", nargs="?", choices=("kafka", "postgres", *SERVICES), help="what to restart; without it, everything"
    )
    restarts.set_defaults(handler=restart)
    marks = _with_json(commands.add_parser("mark-price", help=mark_price.__doc__))
    marks.add_argument("symbol", help="e.g. ETHUSDT")
    marks.add_argument("price", help="a decimal string, e.g. 2942.67")
    marks.set_defaults(handler=mark_price)
    secrets = commands.add_parser("compose-secrets", help=compose_secrets.__doc__)
    secrets.add_argument("--force", action="store_true", help="new secrets even if .env exists")
    secrets.set_defaults(handler=compose_secrets)
    ops = _with_json(commands.add_parser("operators", help=operators.__doc__))
    ops.add_argument("action", choices=("list", "add", "rotate", "revoke"))
    ops.add_argument("name", nargs="?", help="the operator id (not for list)")
    ops.add_argument("--yes", action="store_true", help="revoke without asking")
    ops.set_defaults(handler=operators)
    teams = _with_json(commands.add_parser("team", help=team.__doc__))
    teams.add_argument("action", choices=("create", "remove"))
    teams.add_argument("name", help="2-31 characters of a-z, 0-9 and '-', starting with a letter")
    teams.add_argument("--yes", action="store_true", help="remove without asking")
    teams.set_defaults(handler=team)
    arguments = parser.parse_args()
    # A broker that does not answer is reported on its status line; aiokafka would also log it to stderr.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        sys.exit(run_command(arguments.handler, arguments))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - one clear line for the operator, not a traceback
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        sys.exit(f"egis-local {arguments.command}: {first} (logs under {STATE_DIR})")


if __name__ == "__main__":
    main()
