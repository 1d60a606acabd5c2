"""Start a real local PostgreSQL in pytest's tmp_path, use it over TCP, stop it."""

import asyncio
import os
import shutil
from decimal import Decimal

import asyncpg
import pytest

from egis_localinfra import guards
from egis_localinfra.postgres import postgres_status, start_postgres, stop_postgres


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def own_throwaway_server():
    """This test starts, uses and stops a server of its own, outside the suite's test database."""
    with guards.admin_access():
        yield


@pytest.mark.timeout(180)
async def test_postgres_starts_serves_and_stops(tmp_path, own_throwaway_server):
    # tmp_path is under /tmp/pytest-of-root, which is 0700 and reset to 0700 by every pytest
    # session start: the server's files must live elsewhere or it PANICs at a checkpoint.
    state_dir = tmp_path / "egis"
    # start_postgres blocks until the server is ready; keep the shared event loop responsive meanwhile.
    info = await asyncio.to_thread(start_postgres, state_dir)
    try:
        assert info.host == "127.0.0.1" and info.user == "egis"
        assert info.version.split(".")[0].isdigit()
        assert postgres_status(state_dir) == info
        assert "pytest-of-" not in str(info.data_dir)
        assert await asyncio.to_thread(start_postgres, state_dir) == info  # reused, not restarted

        await _exercise_database(info)
        await _check_password_required(info)
    finally:
        await asyncio.to_thread(stop_postgres, state_dir)
        if info.data_dir.parent.name.startswith("egis-postgres-"):
            shutil.rmtree(info.data_dir.parent)  # relocated home: not cleaned with tmp_path

    assert postgres_status(state_dir) is None
    for _ in range(50):  # the postmaster is reaped by init shortly after pg_ctl returns
        if not _pid_alive(info.pid):
            break
        await asyncio.sleep(0.1)
    assert not _pid_alive(info.pid)
    await asyncio.to_thread(stop_postgres, state_dir)  # stopping again is a no-op


async def _exercise_database(info):
    admin = await asyncpg.connect(info.admin_dsn)
    try:
        await admin.execute("create database egis_test")
    finally:
        await admin.close()

    conn = await asyncpg.connect(info.dsn("egis_test"))
    try:
        await conn.execute("create schema ledger")
        await conn.execute("create table ledger.fills (id serial primary key, qty numeric(38, 18) not null)")
        await conn.execute("insert into ledger.fills (qty) values ($1)", Decimal("0.000000000000000001"))
        qty = await conn.fetchval("select qty from ledger.fills")
        assert qty == Decimal("0.000000000000000001") and isinstance(qty, Decimal)
        assert (await conn.fetchval("select inet_server_addr()::text")).startswith("127.0.0.1")
        await conn.execute("checkpoint")  # rewrites global/pg_control by absolute path
    finally:
        await conn.close()


async def _check_password_required(info):
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(host=info.host, port=info.port, user=info.user, password="wrong", database="postgres")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(host=info.host, port=info.port, user=info.user, password="", database="postgres")
