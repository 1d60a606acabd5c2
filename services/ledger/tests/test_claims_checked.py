"""No identity from a message, at the owner: the ledger refuses a reservation on an account that is not its bot's,
and a backfill or found fill that matches no position (or intent) it holds; refused, a claim changes nothing
and is not dead-lettered. Through the ledger's own topics on real Kafka and Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from ledger_helpers import answer_to, open_position, position_rows, reserve, send
from prometheus_client import REGISTRY
from test_bots_and_backfill import backfill

from egis_common import contracts as c
from egis_common.ids import client_order_id
from egis_common.topics import DEAD_LETTER_TOPIC
from egis_localinfra.testing import eventually

pytestmark = pytest.mark.infra


def sample(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def refused_claims(command: str, reason: str) -> float:
    return sample("egis_ledger_claims_refused_total", command=command, reason=reason)


async def dead_letters(runtime) -> int:
    outbox = runtime.outbox.table
    async with runtime.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.topic == DEAD_LETTER_TOPIC)
        return await conn.scalar(query)


async def refused(command: str, reason: str, before: float, times: int = 1) -> None:
    async def counted():
        return refused_claims(command, reason) == before + times

    await eventually(counted, what=f"{command} refused {reason}")


def found_fill(position, intent_id, **changes) -> c.ApplyFoundFill:
    fields = dict(
        bot_id=position.bot_id,
        intent_id=intent_id,
        position_id=position.position_id,
        intent=c.IntentKind.OPEN,
        client_order_id=client_order_id(intent_id),
        exchange_order_id="777",
        executed_qty=Decimal("0.003"),
        avg_price=Decimal("2942.67"),
        fee_usd=Decimal("0.0035"),
        filled_at=datetime.now(UTC),
    )
    return c.ApplyFoundFill(**{**fields, **changes})


async def test_every_reason_is_a_series_from_the_start(ledger_runtime):
    assert sample("egis_ledger_preflight_decisions_total", outcome="rejected", reason="account_mismatch") is not None
    assert all(
        refused_claims(command, reason) is not None
        for command in ("BackfillClosure", "ApplyFoundFill")
        for reason in ("unknown_position", "intent_mismatch", "client_order_id_mismatch")
    )


async def test_a_reservation_on_another_bots_account_is_refused_account_mismatch(
    ledger_runtime, make_bot, ledger_events
):
    a, b = await make_bot("100"), await make_bot("100")
    labels = {"outcome": "rejected", "reason": "account_mismatch"}
    before = sample("egis_ledger_preflight_decisions_total", **labels)
    for kind in (c.IntentKind.OPEN, c.IntentKind.CLOSE):
        forged = reserve(b.bot_id, intent=kind, account=a.exchange_account)
        await send(ledger_runtime, forged)
        answer = await answer_to(ledger_events, forged.intent_id)
        assert isinstance(answer, c.PreflightRejected) and answer.reason is c.PreflightRejectReason.ACCOUNT_MISMATCH
    assert sample("egis_ledger_preflight_decisions_total", **labels) == before + 2
    assert await position_rows(ledger_runtime, b.bot_id) == [] and await position_rows(ledger_runtime, a.bot_id) == []


async def test_a_backfill_of_a_position_the_bot_does_not_hold_changes_nothing(ledger_runtime, make_bot, ledger_events):
    holder, claimant = await make_bot("100"), await make_bot("100")
    held, _ = await open_position(ledger_runtime, ledger_events, holder)
    letters = await dead_letters(ledger_runtime)
    before = refused_claims("BackfillClosure", "unknown_position")
    for false_claim in (backfill(claimant, held.position_id), backfill(holder, uuid.uuid4())):
        await send(ledger_runtime, false_claim)
    await refused("BackfillClosure", "unknown_position", before, times=2)
    (row,) = await position_rows(ledger_runtime, holder.bot_id)
    assert row == held and row.status == "open"
    assert await position_rows(ledger_runtime, claimant.bot_id) == []
    assert (
        await ledger_events.matching(lambda m: isinstance(m, c.PositionClosed) and m.position_id == held.position_id)
        == []
    )
    assert await dead_letters(ledger_runtime) == letters


async def test_a_found_fill_must_be_of_the_intent_and_order_that_holds_the_position(
    ledger_runtime, ledger, make_bot, ledger_events
):
    bot, other = await make_bot("100"), await make_bot("100")
    command = reserve(bot.bot_id, account=bot.exchange_account)
    async with ledger_runtime.uow.begin() as conn:
        (opening,) = (await ledger.reserve(conn, command)).created
    letters = await dead_letters(ledger_runtime)
    false_claims = {
        "intent_mismatch": found_fill(opening, uuid.uuid4()),
        "client_order_id_mismatch": found_fill(opening, command.intent_id, client_order_id="egE-forged"),
        "unknown_position": found_fill(opening, command.intent_id, bot_id=other.bot_id),
    }
    for reason, claim in false_claims.items():
        before = refused_claims("ApplyFoundFill", reason)
        await send(ledger_runtime, claim)
        await refused("ApplyFoundFill", reason, before)
    (row,) = await position_rows(ledger_runtime, bot.bot_id)
    assert (row.status, row.executed_qty, row.open_exchange_order_id) == ("opening", Decimal("0"), None)
    assert await dead_letters(ledger_runtime) == letters
    # The true claim still opens it: the checks refuse forgeries, not the reconciler.
    await send(ledger_runtime, found_fill(opening, command.intent_id))

    async def opened():
        return [r for r in await position_rows(ledger_runtime, bot.bot_id) if r.status == "open"]

    (row,) = await eventually(opened, what="the true found fill applied")
    assert row.open_exchange_order_id == "777"
