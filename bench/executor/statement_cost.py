"""Benchmark: the CPU one small statement costs the calling process, through SQLAlchemy and through asyncpg.

Every service runs its SQL through SQLAlchemy's async engine on asyncpg. This
times the same one-row SELECT with an array parameter (the shape
`egis_common.bulk` produces) on one connection held open, four ways: a
SQLAlchemy text() statement, SQLAlchemy's exec_driver_sql, and asyncpg itself,
and a SQLAlchemy transaction (BEGIN, the statement, COMMIT) from the pool
against the same with asyncpg. CPU is this process's (time.process_time), so
Postgres's own share is left out.

    uv run python bench/executor/statement_cost.py [--statements 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from egis_localinfra.postgres import create_database, start_postgres, stop_postgres

SQL_NAMED = "SELECT n FROM numbers WHERE n = ANY(CAST(:wanted AS INT[]))"
SQL_NUMBERED = "SELECT n FROM numbers WHERE n = ANY($1::int[])"


async def measure(dsn: str, count: int) -> dict[str, float]:
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE numbers (n int PRIMARY KEY)"))
        await conn.execute(sa.text("INSERT INTO numbers SELECT generate_series(1, 1000)"))
    statement = sa.text(SQL_NAMED)
    results: dict[str, float] = {}

    async def timed(name: str, one) -> None:
        for i in range(100):  # warm: prepared statements, caches
            await one(i)
        started = time.process_time()
        for i in range(count):
            await one(i)
        results[name] = round(1e6 * (time.process_time() - started) / count, 1)

    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        await timed("sqlalchemy text() statement, us", lambda i: _all(conn.execute(statement, {"wanted": [i, i + 1]})))
        await timed("sqlalchemy exec_driver_sql, us", lambda i: _all(conn.exec_driver_sql(SQL_NUMBERED, ([i, i + 1],))))
        await timed("asyncpg fetch, us", lambda i: driver.fetch(SQL_NUMBERED, [i, i + 1]))
        await conn.rollback()

    async def sqlalchemy_transaction(i: int) -> None:
        async with engine.begin() as conn:
            (await conn.execute(statement, {"wanted": [i, i + 1]})).all()

    await timed("sqlalchemy transaction from the pool (BEGIN, statement, COMMIT), us", sqlalchemy_transaction)
    connection = await asyncpg.connect(dsn)

    async def asyncpg_transaction(i: int) -> None:
        async with connection.transaction():
            await connection.fetch(SQL_NUMBERED, [i, i + 1])

    await timed("asyncpg transaction (BEGIN, statement, COMMIT), us", asyncpg_transaction)
    await connection.close()
    await engine.dispose()
    return results


async def _all(result_coroutine) -> list:
    return (await result_coroutine).all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=3000)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="egis-bench-statements-"))
    state.chmod(0o755)
    try:
        postgres = start_postgres(state / "postgres", durable=True)
        asyncio.run(create_database(postgres.admin_dsn, "egis_bench"))
        results = asyncio.run(measure(postgres.dsn("egis_bench"), args.statements))
        print(json.dumps({"cpu_per_call": results, "postgres": postgres.version}, indent=2))
    finally:
        stop_postgres(state / "postgres")
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
