"""Repair runs: every accepted admin command and the report it answered with."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from reconciler.adapters.repository import metadata

repair_runs = sa.Table(
    "repair_runs",
    metadata,
    sa.Column("request_id", sa.Uuid, primary_key=True),
    sa.Column("command", sa.Text),
    sa.Column("operator_id", sa.Text),
    sa.Column("confirm", sa.Boolean),
    sa.Column("bot_id", sa.Uuid),
    sa.Column("status", sa.Text),
    sa.Column("report", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)


async def stored(conn: AsyncConnection, request_id: UUID) -> sa.Row | None:
    return (await conn.execute(sa.select(repair_runs).where(repair_runs.c.request_id == request_id))).first()


async def held(conn: AsyncConnection, request_id: UUID) -> sa.Row | None:
    """The stored run of this request, holding the request until the transaction ends: a concurrent duplicate
    waits here, then finds this run stored."""
    key = sa.func.hashtextextended(str(request_id), 0)
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
    return await stored(conn, request_id)


async def record(conn: AsyncConnection, command: c.AdminCommand, status: str, report: dict[str, Any]) -> None:
    await conn.execute(
        insert(repair_runs).values(
            request_id=command.request_id,
            command=command.command.value,
            operator_id=command.operator_id,
            confirm=command.confirm,
            bot_id=command.bot_id,
            status=status,
            report=report,
        )
    )


async def complete(conn: AsyncConnection, request_id: UUID, status: str, report: dict[str, Any]) -> None:
    """A run that awaited another service's answer, completed with it."""
    await conn.execute(
        repair_runs.update().where(repair_runs.c.request_id == request_id).values(status=status, report=report)
    )
