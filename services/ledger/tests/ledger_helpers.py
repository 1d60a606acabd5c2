"""Helpers shared by the ledger's tests: commands, fills, and waiting for answers and rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from egis_common import contracts as c
from egis_common.ids import client_order_id
from egis_common.topics import EXECUTIONS, LEDGER_COMMANDS, encode, key_for
from egis_localinfra.pytest_plugin import admin_publish
from egis_localinfra.testing import eventually
from ledger import repository as repo


def reserve(bot_id, symbol="ETHUSDT", size="10", intent=c.IntentKind.OPEN, side=c.Side.LONG, account="acct", **extra):
    return c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=bot_id,
        intent=intent,
        side=side,
        symbol=symbol,
        requested_size_usd=Decimal(size) if intent is c.IntentKind.OPEN else None,
        exchange_account=account,
        **extra,
    )


async def send(runtime, *messages) -> None:
    for message in messages:
        topic = LEDGER_COMMANDS.name if LEDGER_COMMANDS.accepts(message) else EXECUTIONS.name
        await admin_publish(topic, encode(message), key_for(message))  # as the executor or reconciler would


async def answer_to(events, intent_id):
    async def found():
        return await events.matching(
            lambda m: isinstance(m, (c.BudgetReserved, c.PreflightRejected)) and m.intent_id == intent_id
        )

    return (await eventually(found, what=f"answer to {intent_id}"))[0]


async def position_rows(runtime, bot_id) -> list:
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(sa.select(repo.positions).where(repo.positions.c.bot_id == bot_id))).all())


async def budget(ledger, runtime, bot_id):
    async with runtime.engine.connect() as conn:
        return await ledger.budget(conn, bot_id)


def fill_for(answer: c.BudgetReserved, qty: str, price: str, **extra) -> c.OrderFilled:
    return c.OrderFilled(
        intent_id=answer.intent_id,
        bot_id=answer.bot_id,
        position_id=answer.position_id,
        intent=answer.intent,
        symbol=answer.symbol,
        side=answer.side,
        client_order_id=f"ego-{answer.intent_id.hex}",
        exchange_order_id=str(uuid.uuid4().int % 10**9),
        executed_qty=Decimal(qty),
        avg_price=Decimal(price),
        fee_usd=Decimal("0.0035"),
        filled_at=datetime.now(UTC),
        **extra,
    )


async def open_position(runtime, events, bot, symbol="ETHUSDT", size="10", qty="0.003", price="2942.67"):
    command = reserve(bot.bot_id, symbol, size, account=bot.exchange_account)
    await send(runtime, command)
    answer = await answer_to(events, command.intent_id)
    assert isinstance(answer, c.BudgetReserved), answer
    await send(runtime, fill_for(answer, qty, price))

    async def opened():
        rows = await position_rows(runtime, bot.bot_id)
        return [r for r in rows if r.position_id == answer.position_id and r.status == "open"]

    return (await eventually(opened, what="position open"))[0], answer


async def reserved(runtime, events, bot, symbol: str) -> c.BudgetReserved:
    command = reserve(bot.bot_id, symbol, account=bot.exchange_account)
    await send(runtime, command)
    answer = await answer_to(events, command.intent_id)
    assert isinstance(answer, c.BudgetReserved), answer
    return answer


def pending_of(answer: c.BudgetReserved, **changes) -> c.OrderPendingReconciliation:
    return c.OrderPendingReconciliation(
        intent_id=answer.intent_id,
        bot_id=answer.bot_id,
        position_id=answer.position_id,
        intent=answer.intent,
        symbol=answer.symbol,
        client_order_id=client_order_id(answer.intent_id),
        exchange=c.ExchangeName.PAPER,
        exchange_account="acct",
        cause="timeout: no answer from the exchange",
        **changes,
    )


# --- the management API -------------------------------------------------------------


def headers(caller: dict[str, str]) -> dict[str, str]:
    return {"Authorization": caller["Authorization"]}


def new_bot(**changes) -> dict:
    return {
        "name": "api bot",
        "signal_key": f"api-{uuid.uuid4().hex}",
        "exchange": "paper",
        "exchange_account": f"acct-{uuid.uuid4().hex[:8]}",
        "initial_budget_usd": "100",
        "default_order_size_usd": "10",
        **changes,
    }


async def create(api, caller, **changes) -> dict:
    response = await api.post("/v1/bots", json=new_bot(**changes), headers=headers(caller))
    assert response.status_code == 201, response.text
    return response.json()


async def ledger_state(runtime) -> tuple:
    """Everything a refused request must leave as it was: bots (count, versions), the outbox, the audit trail."""
    async with runtime.engine.connect() as conn:
        bots = (await conn.execute(sa.select(sa.func.count(), sa.func.sum(repo.bots.c.version)))).one()
        outbox = await conn.scalar(sa.select(sa.func.count()).select_from(runtime.outbox.table))
        audited = await conn.scalar(sa.select(sa.func.count()).select_from(repo.audit_log))
    return tuple(bots), outbox, audited
