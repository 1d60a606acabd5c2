"""Bots against the database's constraints, and backfills of historical corruption."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from ledger_helpers import reserve
from sqlalchemy.exc import IntegrityError

from egis_common import contracts as c
from egis_common.topics import BOTS
from ledger import bots
from ledger import repository as repo

pytestmark = pytest.mark.infra


async def test_duplicate_live_signal_key_is_refused_by_the_database(ledger_runtime, make_bot):
    key = f"dup-{uuid.uuid4().hex}"
    await make_bot(signal_key=key)
    with pytest.raises(bots.DuplicateSignalKey):
        await make_bot(signal_key=key)
    # The database itself enforces it, whatever the code above does:
    async with ledger_runtime.engine.connect() as conn:
        first = (await conn.execute(sa.select(repo.bots).where(repo.bots.c.signal_key == key))).one()
        values = {
            col: getattr(first, col) for col in first._fields if col not in ("bot_id", "created_at", "updated_at")
        }
        with pytest.raises(IntegrityError, match="bots_live_signal_key"):
            await conn.execute(repo.bots.insert().values(**values, bot_id=uuid.uuid4()))


async def test_editing_a_bot_with_its_own_key_works(ledger_runtime, make_bot):
    bot = await make_bot(signal_key=f"own-{uuid.uuid4().hex}")
    async with ledger_runtime.uow.begin() as conn:
        edited = await bots.edit_bot(
            conn, ledger_runtime.outbox, bot.bot_id, {"signal_key": bot.signal_key, "name": "renamed", "paused": True}
        )
    assert edited.name == "renamed" and edited.paused and edited.version == bot.version + 1


async def test_deleting_a_bot_with_an_open_position_is_refused(ledger_runtime, ledger, make_bot):
    bot = await make_bot("100")
    async with ledger_runtime.uow.begin() as conn:
        outcome = await ledger.reserve(conn, reserve(bot.bot_id, account=bot.exchange_account))
    assert outcome.rejection is None
    with pytest.raises(bots.BotHasActivePositions, match="opening"):
        async with ledger_runtime.uow.begin() as conn:
            await bots.delete_bot(conn, ledger_runtime.outbox, bot.bot_id)
    async with ledger_runtime.engine.connect() as conn:
        assert (await repo.bot_row(conn, bot.bot_id)).deleted_at is None


async def test_a_deleted_bots_key_can_be_reused_and_the_bot_disappears_from_listings(ledger_runtime, make_bot):
    key = f"reuse-{uuid.uuid4().hex}"
    owner = uuid.uuid4()
    old = await make_bot(signal_key=key, owner_id=owner)
    async with ledger_runtime.uow.begin() as conn:
        deleted = await bots.delete_bot(conn, ledger_runtime.outbox, old.bot_id)
    assert deleted.deleted_at is not None
    new = await make_bot(signal_key=key, owner_id=owner)
    async with ledger_runtime.engine.connect() as conn:
        listed = await bots.list_bots(conn, owner)
        assert [b.bot_id for b in listed] == [new.bot_id]
        assert (await repo.bot_row(conn, old.bot_id)).signal_key == key  # history intact
        with pytest.raises(bots.BotNotFound):
            await bots.get_live_bot(conn, old.bot_id)


async def test_every_bot_change_is_a_snapshot_in_the_outbox(ledger_runtime, make_bot):
    bot = await make_bot()
    async with ledger_runtime.uow.begin() as conn:
        await bots.edit_bot(conn, ledger_runtime.outbox, bot.bot_id, {"paused": True})
        await bots.delete_bot(conn, ledger_runtime.outbox, bot.bot_id)
    outbox = ledger_runtime.outbox.table
    async with ledger_runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox.c.payload)
                .where(outbox.c.topic == BOTS.name, outbox.c.key == str(bot.bot_id).encode())
                .order_by(outbox.c.id)
            )
        ).all()
    snapshots = [BOTS.decode(bytes(r.payload)) for r in rows]
    assert [(s.version, s.paused, s.deleted) for s in snapshots] == [
        (1, False, False),
        (2, True, False),
        (3, True, True),
    ]
    assert all(s.webhook_secret_hash.startswith("sha256$") for s in snapshots)


# --- backfill -----------------------------------------------------------------


async def insert_corrupt_closed_position(runtime, bot) -> uuid.UUID:
    """Historical corruption: closed, but without close facts. It predates the constraint,
    so the constraint is dropped for the insert and restored NOT VALID, as a migration over
    legacy data would; `VALIDATE CONSTRAINT` after the repair proves the data is clean."""
    position_id = uuid.uuid4()
    opened_at = datetime.now(UTC) - timedelta(hours=2)
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE ledger.positions DROP CONSTRAINT positions_closed_has_close_facts"))
        await conn.execute(
            repo.positions.insert().values(
                position_id=position_id,
                bot_id=bot.bot_id,
                symbol="ETHUSDT",
                side="long",
                status="closed",
                exchange="paper",
                exchange_account=bot.exchange_account,
                requested_size_usd=Decimal("10"),
                size_usd=Decimal("8.82801"),
                executed_qty=Decimal("0.003"),
                avg_entry_price=Decimal("2942.67"),
                open_intent_id=uuid.uuid4(),
                open_exchange_order_id="111",
                opened_at=opened_at,
                fee_usd=Decimal("0.0035"),
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
    return position_id


def backfill(bot, position_id) -> c.BackfillClosure:
    return c.BackfillClosure(
        bot_id=bot.bot_id,
        position_id=position_id,
        close_exchange_order_id="222",
        close_price=Decimal("3000"),
        closed_at=datetime.now(UTC) - timedelta(hours=1),
        realised_pnl_usd=Decimal("0.17199"),
        fee_usd=Decimal("0.0036"),
        evidence={"trades": ["9001"]},
    )


async def test_a_backfill_repairs_a_closed_position_missing_its_facts_and_a_second_changes_nothing(
    ledger_runtime, ledger, make_bot
):
    bot = await make_bot("100")
    position_id = await insert_corrupt_closed_position(ledger_runtime, bot)
    command = backfill(bot, position_id)
    async with ledger_runtime.uow.begin() as conn:
        first = await ledger.backfill(conn, command)
    assert first.positions and "close_price" in first.note
    async with ledger_runtime.engine.connect() as conn:
        repaired = await repo.position(conn, position_id, for_update=False)
    assert (repaired.close_exchange_order_id, repaired.close_price, repaired.realised_pnl_usd) == (
        "222",
        Decimal("3000"),
        Decimal("0.17199"),
    )
    assert repaired.fee_usd == Decimal("0.0071") and repaired.closed_at == command.closed_at

    again = command.model_copy(update={"message_id": uuid.uuid4(), "close_price": Decimal("2999")})
    async with ledger_runtime.uow.begin() as conn:
        second = await ledger.backfill(conn, again)
    # Nothing changes, and the ledger's own facts (not the command's) go out again for a copy that lacks them.
    [announced] = second.messages
    assert second.positions == () and isinstance(announced, c.PositionClosed) and announced.backfilled
    assert (announced.close_exchange_order_id, announced.close_price, announced.closed_at, announced.fee_usd) == (
        "222",
        Decimal("3000"),
        command.closed_at,
        Decimal("0.0071"),
    )
    async with ledger_runtime.engine.connect() as conn:
        assert await repo.position(conn, position_id, for_update=False) == repaired
    async with ledger_runtime.engine.begin() as conn:  # every closed row has its facts now
        await conn.execute(sa.text("ALTER TABLE ledger.positions VALIDATE CONSTRAINT positions_closed_has_close_facts"))


async def test_the_database_refuses_a_closed_position_without_close_facts(ledger_runtime, make_bot):
    bot = await make_bot()
    with pytest.raises(IntegrityError, match="positions_closed_has_close_facts"):
        async with ledger_runtime.engine.begin() as conn:
            await conn.execute(
                repo.positions.insert().values(
                    position_id=uuid.uuid4(),
                    bot_id=bot.bot_id,
                    symbol="BTCUSDT",
                    side="long",
                    status="closed",
                    exchange="paper",
                    exchange_account=bot.exchange_account,
                    requested_size_usd=Decimal("10"),
                    executed_qty=Decimal("0.001"),
                    avg_entry_price=Decimal("100000"),
                    opened_at=datetime.now(UTC),
                    open_intent_id=uuid.uuid4(),
                )
            )


async def test_the_database_allows_one_active_position_per_bot_and_symbol(ledger_runtime, make_bot):
    bot = await make_bot()
    row = dict(
        bot_id=bot.bot_id,
        symbol="BTCUSDT",
        side="long",
        status="opening",
        exchange="paper",
        exchange_account=bot.exchange_account,
        requested_size_usd=Decimal("10"),
    )
    async with ledger_runtime.engine.begin() as conn:
        await conn.execute(repo.positions.insert().values(**row, position_id=uuid.uuid4(), open_intent_id=uuid.uuid4()))
    with pytest.raises(IntegrityError, match="positions_one_active_per"):
        async with ledger_runtime.engine.begin() as conn:
            await conn.execute(
                repo.positions.insert().values(**row, position_id=uuid.uuid4(), open_intent_id=uuid.uuid4())
            )
    with pytest.raises(IntegrityError, match="positions_sizes_not_negative"):
        async with ledger_runtime.engine.begin() as conn:
            await conn.execute(
                repo.positions.insert().values(
                    **{**row, "symbol": "XRPUSDT", "requested_size_usd": Decimal("-1")},
                    position_id=uuid.uuid4(),
                    open_intent_id=uuid.uuid4(),
                )
            )
