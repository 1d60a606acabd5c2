"""sync-wrong-closed-positions asks the venue within a request-weight budget, and backs off when refused.

The sync use case runs directly on Postgres here; the venue is the local Binance
server, its weight windows shortened to two seconds so that waiting for the next
window takes seconds, not a minute.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from pydantic import SecretStr
from reconciler_helpers import admin_command
from venue_closes import close_on_venue, known_to_reconciler, store

from egis_binance_local import limits
from egis_common.contracts import AdminCommandName, ExchangeName
from egis_localinfra.testing import eventually
from egis_venues.binance.exchange import BinanceExchange
from egis_venues.binance.weights import UNLIMITED, WeightBudget
from egis_venues.settings import BinanceCredentials
from reconciler.admin import sync_wrong_closed_positions
from reconciler.settings import ReconcilerSettings

pytestmark = pytest.mark.infra

WINDOW_S = 2
WEIGHT_PER_TAKE_PROFIT_CLOSE = 1 + 1 + 5  # algo order, its spawned order, the order's trades
ASK_FOR_S = ReconcilerSettings().admin_ask_for_s()


@pytest.fixture
async def venue(binance_server, monkeypatch):
    """The session's local venue (its order ids never repeat), with short windows and no limit to speak of."""
    monkeypatch.setattr(limits, "_MINUTE_MS", WINDOW_S * 1000)
    limit, binance_server.weight_limit = binance_server.weight_limit, 10**6
    yield binance_server
    binance_server.weight_limit = limit
    binance_server.clear_faults()


async def broken_positions(runtime, server, count: int) -> tuple[uuid.UUID, str]:
    """`count` positions closed by their take-profit on the venue, known to the reconciler without close facts.

    A fresh venue account for each test (its name is its API key), so no other position trades on it.
    """
    bot_id, account = uuid.uuid4(), f"rate-{uuid.uuid4().hex[:8]}"
    server.add_account(account, _secret(account), usdt="100000")
    closed = await close_on_venue(server, account, _secret(account), count, stop_loss_every=count + 1)
    async with runtime.engine.begin() as conn:
        await store(conn, *known_to_reconciler(closed, bot_id, account))
    server.clear_requests()
    return bot_id, account


async def sync(
    runtime, server, positions: tuple[uuid.UUID, str], budget: WeightBudget, ask_for_s: float = ASK_FOR_S
) -> dict:
    bot_id, account = positions
    credentials = BinanceCredentials(api_key=SecretStr(account), api_secret=SecretStr(_secret(account)))
    exchange = BinanceExchange({account: credentials}, base_url=server.base_url, weights=budget)
    command = admin_command(AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, bot_id=bot_id)
    try:
        venues = {ExchangeName.BINANCE_USDM.value: exchange}
        outcome = await sync_wrong_closed_positions(runtime.engine, command, venues, ask_for_s)
    finally:
        await exchange.close()
    return outcome.report


async def test_a_small_budget_waits_for_the_next_window_instead_of_exceeding_the_limit(reconciler_runtime, venue):
    positions = await broken_positions(reconciler_runtime, venue, 4)
    limit = 2 * WEIGHT_PER_TAKE_PROFIT_CLOSE + 1  # two positions' look-ups per window, not three
    venue.weight_limit = limit
    await eventually(lambda: _fresh_window(venue), what="a weight window without the set-up's requests")
    budget = WeightBudget(limit, window_s=WINDOW_S)

    report = await sync(reconciler_runtime, venue, positions, budget)

    assert report["would_change"] == 4 and report["venue"]["stopped"] is None
    sent = venue.requests()
    assert [r.status for r in sent] == [200] * len(sent)  # never refused: the budget waited instead
    by_window = Counter()
    for request in sent:
        by_window[request.time_ms // (WINDOW_S * 1000)] += request.weight
    assert max(by_window.values()) <= limit and len(by_window) >= 2
    assert budget.weight_sent == sum(r.weight for r in sent) == 4 * WEIGHT_PER_TAKE_PROFIT_CLOSE
    assert budget.waited_s > 0


def _secret(account: str) -> str:
    return f"{account}-secret"


async def _fresh_window(server) -> bool:
    return server.used_weight() == 0


async def test_a_429_is_waited_out_and_the_refused_reads_are_sent_again(reconciler_runtime, venue):
    positions = await broken_positions(reconciler_runtime, venue, 3)
    venue.inject_fault("http_429", count=2, method="GET", path="/fapi/v1/userTrades", retry_after_s=1)
    budget = WeightBudget(UNLIMITED)

    report = await sync(reconciler_runtime, venue, positions, budget)

    assert report["would_change"] == 3
    trades = venue.requests("GET", "/fapi/v1/userTrades")
    assert [r.status for r in trades] == [429, 429, 200, 200, 200]
    assert trades[2].time_ms - trades[1].time_ms >= 1000  # Retry-After honoured
    assert report["venue"]["weight"][ExchangeName.BINANCE_USDM.value]["http_429"] == 2


async def test_a_418_ban_stops_the_look_ups_and_a_later_run_finishes_the_work(reconciler_runtime, venue):
    positions = await broken_positions(reconciler_runtime, venue, 3)
    venue.inject_fault("http_418", count=1, method="GET", path="/fapi/v1/order", retry_after_s=120)

    banned = await sync(reconciler_runtime, venue, positions, WeightBudget(UNLIMITED))

    assert banned["venue"]["stopped"] == "venue_banned" and banned["would_change"] == 0
    assert sorted(line["venue_not_asked"] for line in banned["positions"]) == ["venue_banned"] * 3
    sent = venue.requests()
    assert sent[-1].status == 418  # nothing more was sent once banned
    # The ban is over (a fresh budget stands for a later run): the same positions are all repaired.
    later = await sync(reconciler_runtime, venue, positions, WeightBudget(UNLIMITED))
    assert later["would_change"] == 3 and later["venue"]["stopped"] is None


async def test_a_run_out_of_time_leaves_the_rest_for_the_next_run(reconciler_runtime, venue):
    positions = await broken_positions(reconciler_runtime, venue, 2)

    report = await sync(reconciler_runtime, venue, positions, WeightBudget(UNLIMITED), ask_for_s=0)

    assert report["venue"]["stopped"] == "run_out_of_time" and venue.requests() == []
    assert [line["venue_not_asked"] for line in report["positions"]] == ["run_out_of_time"] * 2
    later = await sync(reconciler_runtime, venue, positions, WeightBudget(UNLIMITED))
    assert later["would_change"] == 2
