"""The guards: tests reach loopback only, and only their own ephemeral database."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from egis_localinfra import guards


@contextlib.contextmanager
def expected_violation():
    """The violation is the point of the test: assert it was recorded, then clear it."""
    before = len(guards.violations)
    with pytest.raises(guards.GuardError):
        yield
    assert len(guards.violations) == before + 1
    del guards.violations[before:]


def test_connecting_to_a_non_loopback_address_is_refused_before_anything_is_sent():
    with expected_violation():
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    with expected_violation():
        socket.socket().connect_ex(("10.1.2.3", 80))


def test_resolving_a_remote_name_is_refused():
    with expected_violation():
        socket.getaddrinfo("fapi.binance.com", 443)


async def test_asyncio_connections_are_guarded_too():
    with expected_violation():
        await asyncio.open_connection("198.51.100.20", 443)


async def test_loopback_stays_open(infra):
    host, port = infra.kafka_bootstrap.rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    await writer.wait_closed()


def _other_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def test_the_ephemeral_database_works_and_every_other_database_is_refused(test_database):
    connection = await asyncpg.connect(test_database.dsn)
    assert await connection.fetchval("SELECT current_database()") == test_database.name
    await connection.close()
    with expected_violation():
        await asyncpg.connect(_other_database(test_database.dsn, "postgres"))
    with expected_violation():
        await asyncpg.connect(_other_database(test_database.dsn, "egis"))


async def test_sqlalchemy_engines_are_guarded(test_database):
    engine = create_async_engine(_other_database(test_database.url, "egis_production"))
    try:
        with expected_violation():
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def test_a_violation_fails_the_test_even_when_the_code_swallows_the_error(pytester, monkeypatch):
    for name in ("EGIS_DATABASE_URL", "EGIS_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        """
        import socket

        def test_swallows():
            try:
                socket.create_connection(("203.0.113.9", 80), timeout=1)
            except Exception:
                pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "egis_localinfra.pytest_plugin", "-p", "no:cacheprovider")
    # The test body "passed"; the guard fails it at teardown, so the run fails.
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*non-loopback address*203.0.113.9*"])


def test_the_suite_refuses_to_start_when_pointed_at_another_database(pytester, monkeypatch):
    monkeypatch.setenv("EGIS_DATABASE_URL", "postgresql+asyncpg://egis:hunter2@10.0.0.5:5432/egis")
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest_subprocess("-p", "egis_localinfra.pytest_plugin", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*EGIS_DATABASE_URL is set*only runs against the ephemeral*"])
    assert "hunter2" not in result.stderr.str()
