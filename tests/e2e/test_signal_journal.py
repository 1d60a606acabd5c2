"""A signal's fate, read back by its sender: `GET /v1/signals/{signal_id}` on the ledger, fed by the journal.

Everything real: the gateway and router, the executor on the paper venue, the ledger, Kafka with logins and
ACLs (the router and the gateway write the journal topic, the ledger reads it), Postgres.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from e2e_helpers import paper_mark_price, position_in

from egis_common.ids import client_order_id, intent_id_for
from egis_localinfra.testing import eventually
from ledger import auth
from ledger.journal import signal_journal

pytestmark = pytest.mark.infra
ENTRY_MARK = Decimal("2942.67")


def webhook(bot: dict, secret: str, action: str = "buy", **fields) -> dict:
    return {"signal_key": bot["signal_key"], "secret": secret, "action": action, "symbol": "ETHUSDT", **fields}


async def fate(ledger_api: httpx.AsyncClient, signal_id: str, credential: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"} if credential else None
    return await ledger_api.get(f"/v1/signals/{signal_id}", headers=headers)


async def fate_when(ledger_api, signal_id: str, predicate, what: str) -> dict:
    async def probe():
        response = await fate(ledger_api, signal_id)
        return response.json() if response.status_code == 200 and predicate(response.json()) else None

    return await eventually(probe, timeout=30, what=what)


async def test_a_routed_signal_shows_its_intent_order_and_position_once_filled_and_a_repeat_is_a_duplicate(
    create_bot, gateway, ledger_api, ledger_runtime, executor, producer
):
    bot, secret = await create_bot("paper", f"paper-{uuid.uuid4().hex[:8]}", default_order_size_usd="10")
    await paper_mark_price(producer, executor, "ETHUSDT", ENTRY_MARK)
    body = webhook(bot, secret, signal_id=uuid.uuid4().hex)

    first = await gateway.post("/v1/signals", json=body)
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    signal_id = first.json()["signal_id"]
    opened = await position_in(ledger_runtime, bot["bot_id"], "open")

    filled = await fate_when(ledger_api, signal_id, lambda f: f["orders"] and f["position"], "the filled fate")
    intent_id = intent_id_for(uuid.UUID(signal_id))
    assert (filled["status"], filled["outcome"], filled["bot_id"]) == ("accepted", "routed", bot["bot_id"])
    assert filled["intent"] == {
        "intent_id": str(intent_id),
        "intent": "open",
        "preflight": "reserved",
        "preflight_reason": None,
    }
    assert filled["orders"][0] == {
        "purpose": "entry",
        "client_order_id": client_order_id(intent_id),
        "exchange_order_id": opened.open_exchange_order_id,
        "status": "filled",
    }
    position = filled["position"]
    assert (position["position_id"], position["status"], position["size_usd"]) == (
        str(opened.position_id),
        "open",
        str(opened.size_usd),
    )

    # The router decided it: the same post again is answered as a duplicate, and not published again.
    started = time.perf_counter()
    again = await gateway.post("/v1/signals", json=body)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert (again.status_code, again.json()) == (200, {"signal_id": signal_id, "status": "duplicate"})
    assert elapsed_ms < 500, elapsed_ms  # milliseconds in practice; the bound only catches a wait on Kafka
    repeated = await fate_when(ledger_api, signal_id, lambda f: f["duplicates"] == 1, "the duplicate journalled")
    assert repeated["status"] == "accepted"
    assert [e["outcome"] for e in repeated["entries"]] == ["routed", "duplicate"]

    # The sender reads it with the bot's secret; another owner's token and another bot's secret read nothing.
    assert (await fate(ledger_api, signal_id, secret)).status_code == 200
    other_bot, other_secret = await create_bot("paper", f"paper-{uuid.uuid4().hex[:8]}", default_order_size_usd="10")
    async with ledger_runtime.engine.begin() as conn:
        stranger = await auth.create_token(conn, auth.Role.USER, uuid.uuid4(), "stranger")
    for credential in (other_secret, stranger.token, "not-a-secret"):
        refused = await fate(ledger_api, signal_id, credential)
        assert (refused.status_code, refused.json()["reason"]) == (404, "signal_not_found")
    assert (await ledger_api.get(f"/v1/signals/{signal_id}", headers={"Authorization": ""})).status_code == 401
    # The owner's own user token reads it.
    async with ledger_runtime.engine.begin() as conn:
        owner = await auth.create_token(conn, auth.Role.USER, uuid.UUID(bot["owner_id"]), "owner")
    assert (await fate(ledger_api, signal_id, owner.token)).json()["signal_id"] == signal_id
    assert other_bot["bot_id"] != bot["bot_id"]


async def test_a_paused_bots_signal_is_skipped_with_its_reason(create_bot, gateway, ledger_api, router):
    bot, secret = await create_bot("paper", f"paper-{uuid.uuid4().hex[:8]}", default_order_size_usd="10")
    assert (await ledger_api.patch(f"/v1/bots/{bot['bot_id']}", json={"paused": True})).status_code == 200
    await eventually(lambda: _paused(router, bot["bot_id"]), what="the pause in the router's view")

    posted = await gateway.post("/v1/signals", json=webhook(bot, secret, signal_id=uuid.uuid4().hex))
    assert posted.status_code == 202
    skipped = await fate_when(ledger_api, posted.json()["signal_id"], lambda f: f["outcome"], "the skip journalled")
    assert (skipped["status"], skipped["outcome"], skipped["reason"]) == ("accepted", "skipped", "bot_paused")
    assert (skipped["intent"], skipped["orders"], skipped["position"]) == (None, [], None)


async def _paused(router, bot_id: str) -> bool:
    snapshot = router.view.get(uuid.UUID(bot_id))
    return snapshot is not None and snapshot.paused


async def test_a_wrong_secret_is_journalled_for_the_bot_with_its_reason_and_never_the_secret(
    create_bot, gateway, ledger_runtime
):
    bot, _secret = await create_bot("paper", f"paper-{uuid.uuid4().hex[:8]}", default_order_size_usd="10")
    wrong = f"wrong-{uuid.uuid4().hex}"
    refused = await gateway.post("/v1/signals", json=webhook(bot, wrong))
    assert (refused.status_code, refused.json()["reason"]) == (401, "unauthorized")

    async def journalled():
        query = sa.select(signal_journal).where(signal_journal.c.bot_id == uuid.UUID(bot["bot_id"]))
        async with ledger_runtime.engine.connect() as conn:
            return (await conn.execute(query)).all()

    (row,) = await eventually(journalled, timeout=30, what="the refusal in the journal")
    assert (row.outcome, row.reason, row.signal_id) == ("rejected", "unauthorized", None)
    assert wrong not in json.dumps(dict(row._mapping), default=str)
