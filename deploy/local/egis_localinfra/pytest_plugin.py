"""Pytest plugin: real Kafka and Postgres for the tests, and the guards.

Where the services come from, in this order:
1. environment: `EGIS_TEST_KAFKA_BOOTSTRAP` and `EGIS_TEST_POSTGRES_ADMIN_DSN`
   (a superuser DSN on a loopback server; the tests create their own database);
2. testcontainers, when a Docker engine answers;
3. otherwise Kafka and PostgreSQL started as local processes by this package.

Each session creates an ephemeral database `egis_test_<random>`, migrates
every service's schema into it, creates every registry topic, and drops the
database at the end. From then on the database guard lets tests open that
database only, and the network guard refuses any non-loopback connection.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from egis_localinfra import guards
from egis_localinfra.kafka_auth import KafkaUser

INFRA_PREFIX = "egis-test-infra-"
OWNER_FILE = "owner.pid"  # the pytest process that owns a state directory
REFUSED_ENV = ("EGIS_DATABASE_URL", "EGIS_KAFKA_BOOTSTRAP_SERVERS")
# The test broker's super user, for test-only services that use every topic (a real service never reads these).
TEST_LOGIN = ("EGIS_TEST_KAFKA_USERNAME", "EGIS_TEST_KAFKA_PASSWORD")


@dataclass(frozen=True)
class Infra:
    source: str  # "environment", "testcontainers" or "local"
    kafka_bootstrap: str
    postgres_admin_dsn: str  # postgresql://user:password@host:port/postgres
    # Kafka logins by principal, "admin" the super user; empty for a broker without authentication.
    kafka_logins: Mapping[str, KafkaUser] = field(default_factory=dict)

    def kafka_options(self, principal: str = "admin") -> dict[str, str]:
        """aiokafka's keyword arguments to log in as `principal`: the tests' own clients read and write as the
        super user; a service's clients log in as the service."""
        user = self._login(principal)
        return user.client_options() if user else {}

    def kafka_settings(self, principal: str) -> dict[str, Any]:
        """A service's settings fields for its login (the signal router's gateway included)."""
        user = self._login(principal)
        if user is None:
            return {}
        fields = {"kafka_username": user.name, "kafka_password": user.password}
        if principal == "signal_router":
            gateway = self._login("gateway")
            fields |= {"gateway_kafka_username": gateway.name, "gateway_kafka_password": gateway.password}
        return fields

    def _login(self, principal: str) -> KafkaUser | None:
        if not self.kafka_logins:
            return None
        if principal not in self.kafka_logins:
            raise KeyError(f"no Kafka principal {principal!r} in the test broker: {sorted(self.kafka_logins)}")
        return self.kafka_logins[principal]


@dataclass(frozen=True)
class TestDatabase:
    name: str
    url: str  # postgresql+asyncpg://.../egis_test_xxx, for SQLAlchemy and the services
    dsn: str  # postgresql://.../egis_test_xxx, for asyncpg


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "infra: needs real Kafka and Postgres")
    for name in REFUSED_ENV:
        if os.environ.get(name):
            raise pytest.UsageError(
                f"{name} is set ({name}={_redact(os.environ[name])}). The test suite only runs "
                "against the ephemeral services and database its fixture creates: unset it "
                "(use EGIS_TEST_KAFKA_BOOTSTRAP / EGIS_TEST_POSTGRES_ADMIN_DSN to supply servers)."
            )
    guards.install_network_guard()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(parts.password, "***"))
    return urlunsplit(parts)


@pytest.fixture(autouse=True)
def _fail_on_guard_violations() -> Iterator[None]:
    """A guard violation fails the test even if the code under test swallowed the error."""
    before = len(guards.violations)
    yield
    new = guards.violations[before:]
    del guards.violations[before:]
    if new:
        pytest.fail("test guard violations:\n" + "\n".join(new), pytrace=False)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    global _session_infra
    with ExitStack() as stack:
        _session_infra = _infra_from_environment() or _infra_from_testcontainers(stack) or _local_infra(stack)
        yield _session_infra
        _session_infra = None


_session_infra: Infra | None = None


def service_login(principal: str) -> dict[str, Any]:
    """`Infra.kafka_settings` of the session's broker, for helpers that build a service's settings outside a
    fixture; it must have started (any fixture that depends on `infra` or `test_database`)."""
    if _session_infra is None:
        raise RuntimeError("no test broker yet: depend on the infra or test_database fixture first")
    return _session_infra.kafka_settings(principal)


_admin_producer: Any = None


async def admin_publish(topic: str, value: bytes, key: bytes | None) -> None:
    """Publish as the super user: a test that plays another service (a venue's facts, the executor's fills, an
    operator's command) may not use the service under test's own login, which the ACLs confine to its topics."""
    global _admin_producer
    if _admin_producer is None:
        from aiokafka import AIOKafkaProducer

        assert _session_infra is not None, "no test broker yet"
        _admin_producer = AIOKafkaProducer(
            bootstrap_servers=_session_infra.kafka_bootstrap, acks="all", enable_idempotence=True, **admin_options()
        )
        await _admin_producer.start()
    await _admin_producer.send_and_wait(topic, value, key=key)


# pytest_asyncio's own decorator: a plain async fixture would be refused where asyncio_mode is not "auto".
@pytest_asyncio.fixture(scope="session", loop_scope="session", autouse=True)
async def _close_admin_producer() -> AsyncIterator[None]:
    global _admin_producer
    yield
    if _admin_producer is not None:
        await _admin_producer.stop()
        _admin_producer = None


def service_env(principal: str) -> dict[str, str]:
    """`service_login` as the environment of a service run as its own process (`python -m <service>.main`)."""
    return {f"EGIS_{name.upper()}": str(value) for name, value in service_login(principal).items()}


def admin_options() -> dict[str, str]:
    """aiokafka's login options of the session's super user, for the tests' own observers."""
    if _session_infra is None:
        raise RuntimeError("no test broker yet: depend on the infra or test_database fixture first")
    return _session_infra.kafka_options()


def _infra_from_environment() -> Infra | None:
    bootstrap = os.environ.get("EGIS_TEST_KAFKA_BOOTSTRAP")
    admin_dsn = os.environ.get("EGIS_TEST_POSTGRES_ADMIN_DSN")
    if not (bootstrap and admin_dsn):
        return None
    return Infra("environment", bootstrap, admin_dsn)


def _docker_answers() -> bool:
    if not shutil.which("docker") and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _infra_from_testcontainers(stack: ExitStack) -> Infra | None:
    if os.environ.get("EGIS_TEST_NO_DOCKER") or not _docker_answers():
        return None
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    # testcontainers drives Confluent's image of Apache Kafka (7.9 = Kafka 3.9) in KRaft mode.
    kafka = stack.enter_context(KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft())
    postgres = stack.enter_context(PostgresContainer("postgres:16", driver=None))
    admin_dsn = postgres.get_connection_url().replace(f"/{postgres.dbname}", "/postgres")
    return Infra("testcontainers", kafka.get_bootstrap_server(), admin_dsn)


def _local_infra(stack: ExitStack) -> Infra:
    from egis_localinfra.kafka import start_kafka, stop_kafka
    from egis_localinfra.postgres import start_postgres, stop_postgres

    reap_orphans(Path(tempfile.gettempdir()))
    state_dir = Path(tempfile.mkdtemp(prefix=INFRA_PREFIX))
    state_dir.chmod(0o755)
    (state_dir / OWNER_FILE).write_text(str(os.getpid()))
    stack.callback(shutil.rmtree, state_dir, ignore_errors=True)
    kafka = start_kafka(state_dir / "kafka", secure=True)
    stack.callback(stop_kafka, state_dir / "kafka")
    logins = _provision_principals(state_dir / "kafka", kafka.bootstrap)
    postgres = start_postgres(state_dir / "postgres")
    stack.callback(stop_postgres, state_dir / "postgres")
    return Infra("local", kafka.bootstrap, postgres.admin_dsn, logins)


def _provision_principals(kafka_state: Path, bootstrap: str) -> dict[str, KafkaUser]:
    """Every principal of the local system, with its grants: the suite runs with authentication and ACLs on."""
    from egis_localinfra import kafka_auth
    from egis_localinfra.kafka import provision_access
    from egis_localinfra.local_access import PRINCIPALS, grants

    logins = {name: KafkaUser(name, kafka_auth.new_password()) for name in PRINCIPALS}
    provision_access(kafka_state, bootstrap, users=logins.values(), grants=grants())
    admin = kafka_auth.admin_user(kafka_state)
    assert admin is not None, "a secure broker has its super user"
    return {"admin": admin, **logins}


def reap_orphans(temp_dir: Path) -> list[Path]:
    """Stop the Kafka and Postgres of earlier test sessions that died without their teardown (killed)."""
    from egis_localinfra.kafka import stop_kafka
    from egis_localinfra.postgres import stop_postgres

    reaped = []
    for state_dir in sorted(temp_dir.glob(f"{INFRA_PREFIX}*")):
        try:
            owner = int((state_dir / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours to judge: no owner recorded
        if _pid_alive(owner):
            continue
        stop_kafka(state_dir / "kafka")
        stop_postgres(state_dir / "postgres")
        shutil.rmtree(state_dir, ignore_errors=True)
        reaped.append(state_dir)
    return reaped


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def test_database(infra: Infra) -> Iterator[TestDatabase]:
    from egis_common.setup import prepare_system

    name = f"egis_test_{secrets.token_hex(6)}"
    with guards.admin_access():
        asyncio.run(_admin_execute(infra.postgres_admin_dsn, f'CREATE DATABASE "{name}"'))
    guards.allow_only_database(name)
    guards.install_database_guard()
    dsn = _with_database(infra.postgres_admin_dsn, name)
    database = TestDatabase(name, dsn.replace("postgresql://", "postgresql+asyncpg://", 1), dsn)
    prepare_system(database.url, infra.kafka_bootstrap, **infra.kafka_options())
    os.environ["EGIS_DATABASE_URL"] = database.url
    os.environ["EGIS_KAFKA_BOOTSTRAP_SERVERS"] = infra.kafka_bootstrap
    if admin := infra.kafka_logins.get("admin"):
        os.environ[TEST_LOGIN[0]], os.environ[TEST_LOGIN[1]] = admin.name, admin.password
    try:
        yield database
    finally:
        for variable in (*REFUSED_ENV, *TEST_LOGIN):
            os.environ.pop(variable, None)
        with guards.admin_access():
            asyncio.run(_admin_execute(infra.postgres_admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


async def _admin_execute(admin_dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()
