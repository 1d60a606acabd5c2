"""Admin commands end to end: the ledger and the reconciler in-process, on real Kafka and Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from reconciler_helpers import (
    OPERATOR_ID,
    OPERATOR_KEY,
    admin_command,
    algo_fact,
    ask,
    order_fact,
    publish,
    reply_parts,
    trade_fact,
)

from egis_common import contracts as c
from egis_common.admin_client import assembled
from egis_common.contracts import AdminCommandName
from egis_common.ids import OrderPurpose, client_order_id
from egis_common.topics import encode
from egis_localinfra.testing import eventually
from ledger import bots
from ledger import repository as ledger_repo
from reconciler import auth, cli
from reconciler.adapters import read_model, runs
from reconciler.adapters.repository import trade_facts

pytestmark = pytest.mark.infra


async def make_bot(ledger_runtime) -> sa.Row:
    spec = bots.NewBot(
        name="reconciled bot",
        signal_key=f"key-{uuid.uuid4().hex}",
        exchange=c.ExchangeName.PAPER,
        exchange_account=f"acct-{uuid.uuid4().hex[:8]}",
        initial_budget_usd=Decimal(100),
        default_order_size_usd=Decimal(10),
    )
    async with ledger_runtime.uow.begin() as conn:
        row, _secret = await bots.create_bot(conn, ledger_runtime.outbox, uuid.uuid4(), spec)
    return row


async def reserve_open(ledger_runtime, messages, bot) -> c.BudgetReserved:
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=bot.bot_id,
        intent=c.IntentKind.OPEN,
        side=c.Side.LONG,
        symbol="ETHUSDT",
        requested_size_usd=Decimal(10),
        exchange_account=bot.exchange_account,
    )
    await publish(ledger_runtime, command)
    return (
        await eventually(
            lambda: messages.matching(lambda m: isinstance(m, c.BudgetReserved) and m.intent_id == command.intent_id),
            what="reservation",
        )
    )[0]


async def fill_open(ledger_runtime, answer: c.BudgetReserved) -> None:
    """The executor's report of the open fill: 0.003 at 2942.67."""
    await publish(
        ledger_runtime,
        c.OrderFilled(
            intent_id=answer.intent_id,
            bot_id=answer.bot_id,
            position_id=answer.position_id,
            intent=c.IntentKind.OPEN,
            symbol="ETHUSDT",
            side=c.Side.LONG,
            client_order_id=client_order_id(answer.intent_id),
            exchange_order_id="100",
            executed_qty=Decimal("0.003"),
            avg_price=Decimal("2942.67"),
            fee_usd=Decimal("0.0035"),
            filled_at=datetime.now(UTC),
        ),
    )


async def open_position(ledger_runtime, messages, bot) -> c.BudgetReserved:
    """Through the ledger's own topics: reserve, then the open fill."""
    answer = await reserve_open(ledger_runtime, messages, bot)
    await fill_open(ledger_runtime, answer)
    return answer


async def read_position(reconciler_runtime, position_id, status):
    async with reconciler_runtime.engine.connect() as conn:
        return [p for p in await read_model.load(conn) if p.position_id == position_id and p.status == status]


async def exchange_closed(reconciler_runtime, bot, open_intent_id, close_intent_id=None, closing=None) -> str:
    """The exchange's facts: the entry filled, then a closing order filled in two trades. The closing order is
    our own close (by `close_intent_id`) or, without one, the take-profit algo order's spawned order."""
    account, closing = bot.exchange_account, closing or str(uuid.uuid4().int % 10**12)
    entry = order_fact(account, "100", client_order_id(open_intent_id), side="BUY", reduce_only=False)
    if close_intent_id is not None:
        linked = [order_fact(account, closing, client_order_id(close_intent_id), status="FILLED", seconds=5)]
    else:
        tp = client_order_id(open_intent_id, OrderPurpose.TAKE_PROFIT)
        linked = [
            algo_fact(account, closing + "1", tp, "NEW"),
            algo_fact(account, closing + "1", tp, "TRIGGERED", closing),
            order_fact(account, closing, "algo-spawned", status="FILLED", seconds=5),
        ]
    await publish(
        reconciler_runtime,
        entry,
        *linked,
        trade_fact(account, closing + "7", closing, "3000", "0.001", pnl="0.05733", commission="0.0012", seconds=4),
        trade_fact(account, closing + "8", closing, "3001.5", "0.002", pnl="0.11766", commission="0.0024", seconds=5),
    )
    return closing


async def reserve_close(ledger_runtime, messages, bot, opened: c.BudgetReserved) -> c.BudgetReserved:
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=bot.bot_id,
        intent=c.IntentKind.CLOSE,
        side=c.Side.LONG,
        symbol="ETHUSDT",
        exchange_account=bot.exchange_account,
        position_id=opened.position_id,
    )
    await publish(ledger_runtime, command)
    return (
        await eventually(
            lambda: messages.matching(lambda m: isinstance(m, c.BudgetReserved) and m.intent_id == command.intent_id),
            what="close reservation",
        )
    )[0]


async def ledger_position(ledger_runtime, position_id, closed: bool = True):
    async with ledger_runtime.engine.connect() as conn:
        row = await ledger_repo.position(conn, position_id, for_update=False)
    return row if (row.status.value == "closed") == closed and (not closed or row.close_exchange_order_id) else None


async def test_sync_repairs_a_close_whose_fill_was_never_recorded_once_and_only_when_confirmed(
    reconciler_runtime, ledger_runtime, messages
):
    bot = await make_bot(ledger_runtime)
    answer = await open_position(ledger_runtime, messages, bot)
    await eventually(lambda: read_position(reconciler_runtime, answer.position_id, "open"), what="read model open")
    close = await reserve_close(ledger_runtime, messages, bot, answer)
    await eventually(
        lambda: read_position(reconciler_runtime, answer.position_id, "closing"), what="read model closing"
    )
    spawned = await exchange_closed(reconciler_runtime, bot, answer.intent_id, close.intent_id)

    async def evidence_complete():  # every fact stored, the last trade included
        reply = await ask(
            reconciler_runtime, messages, admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot.bot_id)
        )
        return reply if reply.report["would_change"] == 1 else None

    dry = await eventually(evidence_complete, what="closing evidence stored")
    assert dry.dry_run and (dry.report["examined"], dry.report["would_change"], dry.report["sent"]) == (1, 1, 0)
    drift = await ask(reconciler_runtime, messages, admin_command(AdminCommandName.DRIFT_REPORT, bot_id=bot.bot_id))
    assert drift.status == "ok" and drift.report["by_kind"] == {"exchange_filled_close_but_position_open": 1}
    assert drift.report["drift"][0]["exchange_order_id"] == spawned
    line = dry.report["positions"][0]
    assert line["found"] and line["backfill"]["close_price"] == "3001" and line["backfill"]["fee_usd"] == "0.0036"
    assert line["backfill"]["realised_pnl_usd"] == "0.17499" and line["backfill"]["evidence"]["route"] == "close"
    assert await ledger_position(ledger_runtime, answer.position_id, closed=False)  # the dry runs changed nothing

    confirmed = await ask(
        reconciler_runtime,
        messages,
        admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot.bot_id, confirm=True),
    )
    assert not confirmed.dry_run and confirmed.report["sent"] == 1 and "changed" not in confirmed.report
    closed = await eventually(lambda: ledger_position(ledger_runtime, answer.position_id), what="ledger closed")
    assert (closed.close_exchange_order_id, closed.close_price, closed.realised_pnl_usd) == (
        spawned,
        Decimal(3001),
        Decimal("0.17499"),
    )
    assert closed.fee_usd == Decimal("0.0071")  # the open fee and the closing trades' commissions
    await eventually(lambda: read_position(reconciler_runtime, answer.position_id, "closed"), what="read model closed")

    again = await ask(
        reconciler_runtime,
        messages,
        admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot.bot_id, confirm=True),
    )
    assert (again.report["examined"], again.report["sent"]) == (0, 0)
    backfills = await messages.matching(
        lambda m: isinstance(m, c.BackfillClosure) and m.position_id == answer.position_id
    )
    assert len(backfills) == 1 and backfills[0].evidence["trade_ids"] == [spawned + "7", spawned + "8"]
    assert (
        await ask(reconciler_runtime, messages, admin_command(AdminCommandName.DRIFT_REPORT, bot_id=bot.bot_id))
    ).report["by_kind"] == {}


@pytest.mark.parametrize(
    "operator_id,key,reason",
    [
        (OPERATOR_ID, None, "unsigned"),
        ("mallory", "guess", "unknown_operator"),
        (OPERATOR_ID, "wrong", "bad_signature"),
    ],
)
async def test_commands_not_signed_by_a_known_operator_are_refused_and_change_nothing(
    reconciler_runtime, messages, operator_id, key, reason
):
    command = admin_command(
        AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, confirm=True, operator_id=operator_id, key=key
    )
    reply = await ask(reconciler_runtime, messages, command)
    assert (reply.status, reply.report) == ("refused", {"reason": reason})
    async with reconciler_runtime.engine.connect() as conn:
        assert await runs.stored(conn, command.request_id) is None
    assert (
        await messages.matching(lambda m: isinstance(m, c.BackfillClosure) and m.message_id == command.message_id) == []
    )


async def test_the_same_request_twice_is_run_once(reconciler_runtime, messages):
    command = admin_command(AdminCommandName.DRIFT_REPORT, bot_id=uuid.uuid4())
    first = await ask(reconciler_runtime, messages, command)
    # The operator resends it (a new message, signed again, same request id): the stored report comes back.
    await publish(
        reconciler_runtime, auth.signed(command.model_copy(update={"message_id": uuid.uuid4()}), OPERATOR_KEY)
    )
    replies = await eventually(lambda: _two(messages, command.request_id), what="second reply")
    no_pending = {"under_1m": 0, "1m_to_10m": 0, "10m_to_1h": 0, "over_1h": 0}
    assert first.report == {"positions_examined": 0, "by_kind": {}, "pending_by_age": no_pending, "drift": []}
    assert replies[1].report == {**first.report, "repeated_request": True}


async def test_an_expired_command_is_refused_and_changes_nothing(reconciler_runtime, messages):
    # Signed by a known operator, with the right key, but captured and sent again after its time was up.
    old = c.AdminCommand(
        request_id=uuid.uuid4(),
        command=AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS,
        confirm=True,
        operator_id=OPERATOR_ID,
        signature="",
        occurred_at=datetime.now(UTC) - timedelta(minutes=10),
    )
    reply = await ask(reconciler_runtime, messages, auth.signed(old, OPERATOR_KEY))
    assert (reply.status, reply.report) == ("refused", {"reason": "stale"})
    async with reconciler_runtime.engine.connect() as conn:
        assert await runs.stored(conn, old.request_id) is None


async def test_a_replayed_command_is_not_run_again(reconciler_runtime, messages):
    command = admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=uuid.uuid4(), confirm=True)
    first = await ask(reconciler_runtime, messages, command)
    assert first.status == "ok"
    async with reconciler_runtime.engine.connect() as conn:
        run = await runs.stored(conn, command.request_id)
    ran = REGISTRY.get_sample_value(
        "egis_reconciler_repair_runs_total", {"command": command.command.value, "outcome": "ok"}
    )
    await publish(reconciler_runtime, command)  # the very same record, as captured off the topic
    # The admin topic has one partition: once a command sent after the replay is answered, the replay was handled.
    await ask(reconciler_runtime, messages, admin_command(AdminCommandName.DRIFT_REPORT))
    replies = await messages.matching(lambda m: isinstance(m, c.AdminReply) and m.request_id == command.request_id)
    assert all(r.report.get("repeated_request") for r in replies[1:])  # answered from the stored run, if at all
    async with reconciler_runtime.engine.connect() as conn:
        assert await runs.stored(conn, command.request_id) == run
    assert (
        REGISTRY.get_sample_value(
            "egis_reconciler_repair_runs_total", {"command": command.command.value, "outcome": "ok"}
        )
        == ran
    )


async def _two(messages, request_id):
    found = await messages.matching(lambda m: isinstance(m, c.AdminReply) and m.request_id == request_id)
    return found if len(found) == 2 else None


@pytest.fixture
def operator_shell(infra, monkeypatch):
    """An operator's environment: the signing key, and the operator's own Kafka principal, which may only
    write admin commands and read their replies."""
    monkeypatch.setenv("EGIS_OPERATOR_ID", OPERATOR_ID)
    monkeypatch.setenv("EGIS_OPERATOR_KEY", OPERATOR_KEY)
    login = infra.kafka_settings("operator")
    monkeypatch.setenv("EGIS_KAFKA_USERNAME", login["kafka_username"])
    monkeypatch.setenv("EGIS_KAFKA_PASSWORD", login["kafka_password"])


async def test_the_cli_signs_sends_waits_and_prints_the_report(reconciler_runtime, operator_shell, monkeypatch, capsys):
    bot_id = uuid.uuid4()
    assert await cli.run(["drift-report", "--bot-id", str(bot_id)]) == 0
    out = capsys.readouterr().out.splitlines()  # logs share stdout in tests: look for the report's lines
    assert any(line.startswith("drift-report: ok (dry run), request ") for line in out)
    assert "positions_examined: 0" in out and "drift: 0" in out
    monkeypatch.setenv("EGIS_OPERATOR_KEY", "not-the-key")
    assert await cli.run(["sync-wrong-closed-positions", "--confirm"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("sync-wrong-closed-positions: refused (confirmed)") for line in out)
    assert "reason: bad_signature" in out


async def insert_corrupt_closed_position(ledger_runtime, reconciler_runtime, bot) -> tuple[uuid.UUID, ...]:
    """Historical corruption: closed in the ledger without close facts (it predates the constraint, so the
    constraint is dropped for the insert and restored NOT VALID), and known to the reconciler as closed."""
    position_id, open_intent, close_intent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with ledger_runtime.engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE ledger.positions DROP CONSTRAINT positions_closed_has_close_facts"))
        await conn.execute(
            ledger_repo.positions.insert().values(
                position_id=position_id,
                bot_id=bot.bot_id,
                symbol="ETHUSDT",
                side="long",
                status="closed",
                exchange="paper",
                exchange_account=bot.exchange_account,
                requested_size_usd=Decimal(10),
                size_usd=Decimal("8.82801"),
                executed_qty=Decimal("0.003"),
                avg_entry_price=Decimal("2942.67"),
                open_intent_id=open_intent,
                open_exchange_order_id="100",
                opened_at=datetime.now(UTC),
                fee_usd=Decimal("0.0035"),
                close_intent_id=close_intent,
            )
        )
        await conn.execute(
            sa.text(
                "ALTER TABLE ledger.positions ADD CONSTRAINT positions_closed_has_close_facts "
                "CHECK (status <> 'closed' OR "
                "(close_exchange_order_id IS NOT NULL AND close_price IS NOT NULL AND closed_at IS NOT NULL "
                "AND realised_pnl_usd IS NOT NULL)) NOT VALID"
            )
        )
    async with reconciler_runtime.engine.begin() as conn:
        await conn.execute(
            read_model.positions.insert().values(
                position_id=position_id,
                bot_id=bot.bot_id,
                symbol="ETHUSDT",
                side="long",
                status="closed",
                open_intent_id=open_intent,
                close_intent_id=close_intent,
                executed_qty=Decimal("0.003"),
                avg_entry_price=Decimal("2942.67"),
                updated_at=datetime.now(UTC),
            )
        )
    return position_id, open_intent, close_intent


async def test_a_closed_position_missing_its_close_facts_gets_them_from_the_evidence(
    reconciler_runtime, ledger_runtime, messages
):
    bot = await make_bot(ledger_runtime)
    position_id, open_intent, close_intent = await insert_corrupt_closed_position(
        ledger_runtime, reconciler_runtime, bot
    )
    spawned = await exchange_closed(reconciler_runtime, bot, open_intent, close_intent)

    async def repairable():
        reply = await ask(
            reconciler_runtime, messages, admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot.bot_id)
        )
        return reply if reply.report["would_change"] == 1 else None

    dry = await eventually(repairable, what="evidence stored")
    assert dry.report["positions"][0]["drift"] == ["closed_without_close_facts"]
    confirmed = await ask(
        reconciler_runtime,
        messages,
        admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot.bot_id, confirm=True),
    )
    assert confirmed.report["sent"] == 1

    repaired = await eventually(lambda: ledger_position(ledger_runtime, position_id), what="ledger repaired")
    assert (repaired.status.value, repaired.close_exchange_order_id, repaired.close_price, repaired.fee_usd) == (
        "closed",
        spawned,
        Decimal(3001),
        Decimal("0.0071"),
    )
    assert repaired.closed_at == datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC)
    await eventually(lambda: _complete(reconciler_runtime, position_id), what="read model complete")
    async with ledger_runtime.engine.begin() as conn:  # every closed ledger row has its facts again
        await conn.execute(sa.text("ALTER TABLE ledger.positions VALIDATE CONSTRAINT positions_closed_has_close_facts"))


async def close_in_ledger(ledger_runtime, bot, close: c.BudgetReserved, exchange_order_id: str) -> None:
    """The executor's report of the close fill: 0.003 at 3001."""
    await publish(
        ledger_runtime,
        c.OrderFilled(
            intent_id=close.intent_id,
            bot_id=bot.bot_id,
            position_id=close.position_id,
            intent=c.IntentKind.CLOSE,
            symbol="ETHUSDT",
            side=c.Side.LONG,
            client_order_id=client_order_id(close.intent_id),
            exchange_order_id=exchange_order_id,
            executed_qty=Decimal("0.003"),
            avg_price=Decimal("3001"),
            fee_usd=Decimal("0.0036"),
            filled_at=datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC),
        ),
    )


async def test_a_reconciler_copy_that_lost_the_close_facts_the_ledger_has_is_repaired_and_a_second_run_sends_nothing(
    reconciler_runtime, ledger_runtime, messages
):
    bot = await make_bot(ledger_runtime)
    answer = await open_position(ledger_runtime, messages, bot)
    await eventually(lambda: read_position(reconciler_runtime, answer.position_id, "open"), what="read model open")
    close = await reserve_close(ledger_runtime, messages, bot, answer)
    spawned = await exchange_closed(reconciler_runtime, bot, answer.intent_id, close.intent_id)
    await close_in_ledger(ledger_runtime, bot, close, spawned)
    ledger_row = await eventually(lambda: ledger_position(ledger_runtime, answer.position_id), what="ledger closed")
    await eventually(lambda: _complete(reconciler_runtime, answer.position_id), what="read model closed")
    async with reconciler_runtime.engine.begin() as conn:  # the reconciler's copy loses the close facts
        await conn.execute(
            read_model.positions.update()
            .where(
                read_model.positions.c.position_id == answer.position_id,
            )
            .values(close_exchange_order_id=None, close_price=None, closed_at=None, realised_pnl_usd=None)
        )

    async def repairable():
        reply = await ask(
            reconciler_runtime, messages, admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot.bot_id)
        )
        return reply if reply.report["would_change"] == 1 else None

    assert (await eventually(repairable, what="evidence stored")).report["positions"][0]["drift"] == [
        "closed_without_close_facts"
    ]
    first = await ask(
        reconciler_runtime,
        messages,
        admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot.bot_id, confirm=True),
    )
    assert (first.report["examined"], first.report["sent"]) == (1, 1) and "changed" not in first.report

    [copy] = await eventually(lambda: _complete(reconciler_runtime, answer.position_id), what="copy repaired")
    assert (copy.close_exchange_order_id, copy.close_price, copy.closed_at, copy.realised_pnl_usd) == (
        ledger_row.close_exchange_order_id,
        ledger_row.close_price,
        ledger_row.closed_at,
        ledger_row.realised_pnl_usd,
    )
    assert await ledger_position(ledger_runtime, answer.position_id) == ledger_row  # the ledger changed nothing
    second = await ask(
        reconciler_runtime,
        messages,
        admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot.bot_id, confirm=True),
    )
    assert (second.report["examined"], second.report["would_change"], second.report["sent"]) == (0, 0, 0)
    backfills = await messages.matching(
        lambda m: isinstance(m, c.BackfillClosure) and m.position_id == answer.position_id
    )
    assert len(backfills) == 1  # the first run's only
    announced = await messages.matching(
        lambda m: isinstance(m, c.PositionClosed) and m.backfilled and m.position_id == answer.position_id
    )
    assert [(m.close_exchange_order_id, m.close_price) for m in announced] == [(spawned, Decimal(3001))]
    drift = await ask(reconciler_runtime, messages, admin_command(AdminCommandName.DRIFT_REPORT, bot_id=bot.bot_id))
    assert drift.report["by_kind"] == {}


async def _complete(reconciler_runtime, position_id):
    async with reconciler_runtime.engine.connect() as conn:
        return [p for p in await read_model.load(conn) if p.position_id == position_id and not p.missing_close_facts]


async def test_a_triggered_take_profit_closes_the_position_in_the_ledger_by_itself_once(
    reconciler_runtime, ledger_runtime, messages
):
    bot = await make_bot(ledger_runtime)
    answer = await open_position(ledger_runtime, messages, bot)
    await eventually(lambda: read_position(reconciler_runtime, answer.position_id, "open"), what="read model open")
    spawned = await exchange_closed(reconciler_runtime, bot, answer.intent_id)
    closed = await eventually(lambda: ledger_position(ledger_runtime, answer.position_id), what="ledger closed")
    assert (closed.close_exchange_order_id, closed.close_price, closed.realised_pnl_usd, closed.fee_usd) == (
        spawned,
        Decimal(3001),
        Decimal("0.17499"),
        Decimal("0.0071"),
    )
    # The venue's stream replayed: the same facts in new messages; stored once, and no second backfill.
    await exchange_closed(reconciler_runtime, bot, answer.intent_id, closing=spawned)
    await eventually(lambda: read_position(reconciler_runtime, answer.position_id, "closed"), what="read model closed")
    drift = await ask(reconciler_runtime, messages, admin_command(AdminCommandName.DRIFT_REPORT, bot_id=bot.bot_id))
    assert drift.report["by_kind"] == {}
    backfills = await messages.matching(
        lambda m: isinstance(m, c.BackfillClosure) and m.position_id == answer.position_id
    )
    assert len(backfills) == 1 and backfills[0].evidence["route"] == f"take_profit:algo:{spawned}1"


async def test_a_take_profit_that_filled_before_the_ledger_recorded_the_open_is_backfilled_once_it_opens(
    reconciler_runtime, ledger_runtime, messages
):
    bot = await make_bot(ledger_runtime)
    answer = await reserve_open(ledger_runtime, messages, bot)
    spawned = await exchange_closed(reconciler_runtime, bot, answer.intent_id)  # the ledger still says "opening"
    await eventually(lambda: _stored_trades(reconciler_runtime, spawned), what="facts stored")
    assert await messages.matching(lambda m: isinstance(m, c.BackfillClosure) and m.bot_id == bot.bot_id) == []
    await fill_open(ledger_runtime, answer)
    closed = await eventually(lambda: ledger_position(ledger_runtime, answer.position_id), what="ledger closed")
    assert (closed.close_exchange_order_id, closed.realised_pnl_usd) == (spawned, Decimal("0.17499"))


async def _stored_trades(reconciler_runtime, order_id) -> bool:
    query = sa.select(trade_facts).where(trade_facts.c.exchange_order_id == order_id)
    async with reconciler_runtime.engine.connect() as conn:
        return len((await conn.execute(query)).all()) == 2


async def test_a_liquidation_is_found_by_the_account_and_symbol_of_the_positions_entry(reconciler_runtime, messages):
    bot_id, position_id, open_intent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    account, liquidation_id = f"acct-{uuid.uuid4().hex[:8]}", str(uuid.uuid4().int % 10**12)
    async with reconciler_runtime.engine.begin() as conn:
        await conn.execute(
            read_model.positions.insert().values(
                position_id=position_id,
                bot_id=bot_id,
                symbol="ETHUSDT",
                side="long",
                status="open",
                open_intent_id=open_intent,
                executed_qty=Decimal("0.003"),
                avg_entry_price=Decimal("2942.67"),
                updated_at=datetime.now(UTC),
            )
        )
    await publish(
        reconciler_runtime,
        order_fact(account, "100", client_order_id(open_intent), side="BUY", reduce_only=False),
        order_fact(account, liquidation_id, f"autoclose-{liquidation_id}", seconds=60),
        trade_fact(account, liquidation_id + "1", liquidation_id, "2500", "0.003", seconds=60),
    )

    async def repairable():
        reply = await ask(
            reconciler_runtime, messages, admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot_id)
        )
        return reply if reply.report["would_change"] == 1 else None

    backfill = (await eventually(repairable, what="liquidation found")).report["positions"][0]["backfill"]
    assert (backfill["close_exchange_order_id"], backfill["close_price"], backfill["realised_pnl_usd"]) == (
        liquidation_id,
        "2500",
        "-1.32801",
    )
    assert backfill["evidence"]["route"] == "liquidation"
    sent = await eventually(
        lambda: messages.matching(  # the exchange's own close: sent without being asked, once
            lambda m: isinstance(m, c.BackfillClosure) and m.position_id == position_id
        ),
        what="automatic backfill",
    )
    assert len(sent) == 1 and sent[0].close_exchange_order_id == liquidation_id


async def test_a_report_over_the_size_limit_comes_in_parts_that_the_cli_joins_into_the_whole_report(
    reconciler_runtime, messages, operator_shell, capsys
):
    bot_id, count = uuid.uuid4(), 40
    async with reconciler_runtime.engine.begin() as conn:  # open positions without an entry fill fact: all drift
        await conn.execute(
            read_model.positions.insert(),
            [
                {
                    "position_id": uuid.uuid4(),
                    "bot_id": bot_id,
                    "symbol": "ETHUSDT",
                    "side": "long",
                    "status": "open",
                    "open_intent_id": uuid.uuid4(),
                    "updated_at": datetime.now(UTC),
                }
                for _ in range(count)
            ],
        )

    assert await cli.run(["drift-report", "--bot-id", str(bot_id)]) == 0

    out = capsys.readouterr().out.splitlines()
    [title] = [line for line in out if line.startswith("drift-report: ok (dry run), request ")]
    request_id = uuid.UUID(title.rsplit(" ", 1)[1])
    parts = await reply_parts(messages, request_id)
    limit = reconciler_runtime.settings.admin_reply_part_bytes
    assert parts is not None and len(parts) > 1 and all(len(encode(p)) <= limit for p in parts)
    async with reconciler_runtime.engine.connect() as conn:  # the run keeps the whole report
        stored = (await runs.stored(conn, request_id)).report
    assert len(stored["drift"]) == count and stored == assembled(parts).report
    assert f"drift: {count}" in out and "by_kind: {'position_open_but_no_fill_fact': 40}" in out
    printed = {line.split("position_id=")[1].split(",")[0] for line in out if line.startswith("  - position_id=")}
    assert printed == {line["position_id"] for line in stored["drift"]}
