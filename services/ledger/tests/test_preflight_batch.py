"""One account shared by two bots: a batch sees every holder, found in the database or made in the batch."""

from __future__ import annotations

import uuid

import pytest
from ledger_helpers import reserve

from egis_common import contracts as c

pytestmark = pytest.mark.infra
IN_USE = c.PreflightRejectReason.ACCOUNT_SYMBOL_IN_USE


async def test_a_batch_sees_the_account_holders_in_the_database_and_in_the_batch(ledger_runtime, ledger, make_bot):
    account = f"shared-{uuid.uuid4().hex[:8]}"
    a, b, outsider = await make_bot(account=account), await make_bot(account=account), await make_bot(account=account)
    async with ledger_runtime.uow.begin() as conn:
        await ledger.reserve_batch(
            conn, [reserve(a.bot_id, "ETHUSDT", account=account), reserve(outsider.bot_id, "XRPUSDT", account=account)]
        )
    batch = [
        reserve(a.bot_id, "BTCUSDT", account=account),  # a is in this batch and holds ETH from before
        reserve(b.bot_id, "ETHUSDT", account=account),  # held by a: a bot of this batch
        reserve(b.bot_id, "XRPUSDT", account=account),  # held by a bot outside this batch
        reserve(a.bot_id, "SOLUSDT", account=account),
        reserve(b.bot_id, "SOLUSDT", account=account),  # held by a since the command before
        reserve(b.bot_id, "ADAUSDT", account=account),
    ]
    async with ledger_runtime.uow.begin() as conn:
        outcomes = await ledger.reserve_batch(conn, batch)
    assert [o.rejection for o in outcomes] == [None, IN_USE, IN_USE, None, IN_USE, None]
    assert [o.note.split(" holds")[0] for o in outcomes if o.rejection] == [
        f"bot {a.bot_id}",
        f"bot {outsider.bot_id}",
        f"bot {a.bot_id}",
    ]
