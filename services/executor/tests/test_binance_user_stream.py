"""The Binance user data stream, end to end: the local venue's websocket and REST, the real python-binance
client, the executor's outbox on real Postgres, the facts read back from real Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import of
from sqlalchemy.ext.asyncio import create_async_engine

from egis_binance_local import BinanceLocal, local_async_client
from egis_common import contracts as c
from egis_common.runtime import build_runtime
from egis_localinfra.pytest_plugin import service_login
from egis_localinfra.testing import eventually, stop_service
from egis_venues.binance.stream import AccountStream
from executor.adapters import repository as repo
from executor.adapters.user_streams import start_user_streams, stream_url, user_streams
from executor.domain import Intent, IntentStatus
from executor.settings import BinanceCredentials, ExecutorSettings

API_KEY, API_SECRET = "stream-test-key", "stream-test-secret"
TRADES, LISTEN_KEY = "/fapi/v1/userTrades", "/fapi/v1/listenKey"


def executor_settings(**overrides) -> ExecutorSettings:
    return ExecutorSettings(
        metrics_port=0,
        outbox_poll_interval_seconds=0.2,
        log_level="WARNING",
        **{**service_login("executor"), **overrides},
    )


@pytest.fixture
async def venue() -> AsyncIterator[BinanceLocal]:
    async with BinanceLocal() as server:
        server.add_account(API_KEY, API_SECRET, usdt="100000")
        yield server


@pytest.fixture
async def client(venue):
    binance = local_async_client(venue.base_url, API_KEY, API_SECRET)
    yield binance
    await binance.close_connection()


@pytest.fixture
def account() -> str:
    return f"bn-{uuid.uuid4().hex[:10]}"  # facts are told apart by account: each test has its own


@pytest.fixture
async def streaming(test_database, venue, account):
    """The executor's runtime (outbox relay) with one user data stream task; yields a starter."""
    runtimes = []

    async def start(**overrides) -> AccountStream:
        settings = executor_settings(
            binance_accounts={account: BinanceCredentials(api_key=API_KEY, api_secret=API_SECRET)},
            binance_base_url=venue.base_url,
            binance_stream_reconnect_min_seconds=0.05,
            binance_stream_reconnect_max_seconds=0.3,
            **overrides,
        )
        runtime = build_runtime(settings)
        runtimes.append(runtime)
        await runtime.start_relay()
        [stream] = start_user_streams(runtime)
        return stream

    yield start
    for runtime in runtimes:
        await stop_service(runtime)


async def stream_connected(stream: AccountStream) -> None:
    await eventually(lambda: _is_set(stream), what="the user data stream connected and caught up")


async def _is_set(stream: AccountStream) -> bool:
    return stream.connected.is_set()


async def buy(client, qty: str = "0.002", symbol: str = "BTCUSDT", **extra) -> dict:
    return await client.futures_create_order(
        symbol=symbol, side="BUY", type="MARKET", quantity=qty, newOrderRespType="RESULT", **extra
    )


def from_stream(fact: c.Message) -> bool:
    return fact.raw.get("e") in ("ORDER_TRADE_UPDATE", "ALGO_UPDATE")


async def test_a_filled_market_order_reaches_the_facts_topic_with_exact_decimals(
    streaming, venue, client, tail, account
):
    stream = await streaming()
    await stream_connected(stream)
    placed = await buy(client, "0.002", newClientOrderId="egis-open-1")
    order_id = str(placed["orderId"])

    [trade] = await tail.wait_for(of(c.ExchangeTradeFact, exchange_account=account), what="the trade fact")
    [venue_trade] = venue.trades(API_KEY)
    assert (trade.trade_id, trade.exchange_order_id, trade.symbol, trade.side) == (
        str(venue_trade.trade_id),
        order_id,
        "BTCUSDT",
        "BUY",
    )
    assert (trade.price, trade.qty, trade.commission, trade.commission_asset, trade.realised_pnl_usd) == (
        Decimal("60000.00"),
        Decimal("0.002"),
        Decimal("0.06"),
        "USDT",
        Decimal("0"),
    )
    assert trade.exchange is c.ExchangeName.BINANCE_USDM and from_stream(trade)
    filled = await tail.wait_for(
        of(c.ExchangeOrderFact, exchange_account=account, status="FILLED"), what="the filled order fact"
    )
    assert (filled[0].exchange_order_id, filled[0].client_order_id, filled[0].executed_qty, filled[0].avg_price) == (
        order_id,
        "egis-open-1",
        Decimal("0.002"),
        Decimal("60000"),
    )
    new = await tail.matching(of(c.ExchangeOrderFact, exchange_account=account, status="NEW"))
    assert [f.executed_qty for f in new] == [Decimal("0")]


async def test_a_take_profit_that_triggers_gives_its_algo_facts_and_the_spawned_orders_trade(
    streaming, venue, client, tail, account
):
    stream = await streaming()
    await stream_connected(stream)
    await buy(client, "0.003")
    await client.futures_create_algo_order(
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="TAKE_PROFIT_MARKET",
        triggerPrice="61000.00",
        closePosition="true",
        workingType="MARK_PRICE",
        clientAlgoId="egis-tp-1",
    )
    await tail.wait_for(of(c.ExchangeAlgoOrderFact, exchange_account=account, status="NEW"), what="the algo NEW")

    venue.set_mark_price("BTCUSDT", "61000.50")
    [finished] = await tail.wait_for(
        of(c.ExchangeAlgoOrderFact, exchange_account=account, status="FINISHED"), what="the algo order FINISHED"
    )
    [algo] = venue.algo_orders(API_KEY)
    spawned = str(algo.actual_order_id)
    [triggered] = await tail.matching(of(c.ExchangeAlgoOrderFact, exchange_account=account, status="TRIGGERED"))
    assert (triggered.algo_id, triggered.client_algo_id, triggered.spawned_order_id, triggered.order_type) == (
        str(algo.algo_id),
        "egis-tp-1",
        spawned,
        "TAKE_PROFIT_MARKET",
    )
    assert (finished.spawned_order_id, finished.trigger_price) == (spawned, Decimal("61000.00"))
    [closing] = await tail.wait_for(
        of(c.ExchangeTradeFact, exchange_account=account, exchange_order_id=spawned), what="the spawned order's trade"
    )
    assert (closing.side, closing.price, closing.qty) == ("SELL", Decimal("61000.50"), Decimal("0.003"))
    assert closing.realised_pnl_usd == (Decimal("61000.50") - Decimal("60000.00")) * Decimal("0.003")
    assert closing.commission == Decimal("0.09150075")  # 61000.50 * 0.003 * 0.0005 on the venue's 8 decimals
    await tail.wait_for(
        of(c.ExchangeOrderFact, exchange_account=account, exchange_order_id=spawned, status="FILLED", reduce_only=True),
        what="the spawned order FILLED",
    )


async def test_a_fill_while_the_socket_is_down_arrives_over_rest_once_and_the_stream_comes_back(
    streaming, venue, client, tail, account
):
    stream = await streaming()
    await stream_connected(stream)
    venue.user_streams_accepting = False  # the reconnection is refused until the test says otherwise
    assert venue.drop_user_streams(API_KEY) == 1
    await eventually(lambda: _is_down(stream), what="the stream noticed the drop")
    venue.clear_requests()

    placed = await buy(client, "0.004")
    [missed] = await tail.wait_for(of(c.ExchangeTradeFact, exchange_account=account), what="the missed fill")
    assert (missed.exchange_order_id, missed.price, missed.qty, missed.commission) == (
        str(placed["orderId"]),
        Decimal("60000.00"),
        Decimal("0.004"),
        Decimal("0.12"),
    )
    assert not from_stream(missed) and venue.requests("GET", TRADES)  # from userTrades, the socket was down
    await tail.wait_for(
        of(c.ExchangeOrderFact, exchange_account=account, status="FILLED", exchange_order_id=str(placed["orderId"])),
        what="the missed order, over REST",
    )

    venue.user_streams_accepting = True
    await stream_connected(stream)
    closing = await client.futures_create_order(
        symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.004", reduceOnly="true"
    )
    [after] = await tail.wait_for(
        of(c.ExchangeTradeFact, exchange_account=account, exchange_order_id=str(closing["orderId"])),
        what="a fill after the reconnect",
    )
    assert from_stream(after)
    # Facts of one account are relayed in order on one partition: every copy of the missed trade is in by now.
    assert len(await tail.matching(of(c.ExchangeTradeFact, exchange_account=account, trade_id=missed.trade_id))) == 1


async def test_trades_from_before_the_start_are_caught_up_over_rest(streaming, venue, client, tail, account):
    placed = await buy(client, "0.010", symbol="ETHUSDT")
    await streaming()
    [trade] = await tail.wait_for(of(c.ExchangeTradeFact, exchange_account=account), what="the earlier trade")
    assert (trade.exchange_order_id, trade.symbol, trade.price, trade.qty) == (
        str(placed["orderId"]),
        "ETHUSDT",
        Decimal("3000.00"),
        Decimal("0.010"),
    )
    assert not from_stream(trade)


async def test_a_fresh_start_looks_at_the_symbols_of_our_own_orders_even_when_nothing_is_open_there(
    streaming, venue, client, tail, account, test_database
):
    """A stop closed the position while no stream listened: nothing open points at the symbol any more."""
    opened = await buy(client, "0.10", symbol="SOLUSDT")
    closed = await client.futures_create_order(
        symbol="SOLUSDT", side="SELL", type="MARKET", quantity="0.10", reduceOnly="true", newOrderRespType="RESULT"
    )
    assert not [p for p in await client.futures_position_information() if Decimal(p["positionAmt"]) != 0]
    engine = create_async_engine(test_database.url)
    try:
        async with engine.begin() as conn:  # the executor's record of the open it sent
            await repo.insert_new(
                conn,
                [
                    Intent(
                        intent_id=uuid.uuid4(),
                        signal_id=uuid.uuid4(),
                        bot_id=uuid.uuid4(),
                        kind=c.IntentKind.OPEN,
                        side=c.Side.LONG,
                        symbol="SOLUSDT",
                        exchange=c.ExchangeName.BINANCE_USDM,
                        exchange_account=account,
                        status=IntentStatus.SUBMITTING,
                        requested_size_usd=Decimal("25"),
                        position_id=uuid.uuid4(),
                        client_order_id=f"egx-{uuid.uuid4().hex[:16]}",
                        order_qty=Decimal("0.10"),
                    )
                ],
            )
    finally:
        await engine.dispose()
    await streaming()
    trades = await tail.wait_for(
        of(c.ExchangeTradeFact, exchange_account=account, symbol="SOLUSDT"),
        count=2,
        what="both trades on a symbol with nothing open",
    )
    assert sorted(t.exchange_order_id for t in trades) == sorted(str(o["orderId"]) for o in (opened, closed))


async def test_a_fresh_start_finds_our_stop_that_fired_while_nothing_listened_and_marks_it_finished(
    streaming, venue, client, tail, account, test_database
):
    """Without the algo order's FINISHED fact nothing links the spawned order's trade to the position's
    take-profit: on a fresh start the stream has seen no algo order open, so it asks about ours."""
    await buy(client, "0.003")
    placed = await client.futures_create_algo_order(
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="TAKE_PROFIT_MARKET",
        triggerPrice="61000.00",
        closePosition="true",
        workingType="MARK_PRICE",
        clientAlgoId="egt-fired-while-down",
    )
    intent_id = uuid.uuid4()
    engine = create_async_engine(test_database.url)
    try:
        async with engine.begin() as conn:  # the executor's records of the open and of its two stops
            await repo.insert_new(
                conn,
                [
                    Intent(
                        intent_id=intent_id,
                        signal_id=uuid.uuid4(),
                        bot_id=uuid.uuid4(),
                        kind=c.IntentKind.OPEN,
                        side=c.Side.LONG,
                        symbol="BTCUSDT",
                        exchange=c.ExchangeName.BINANCE_USDM,
                        exchange_account=account,
                        status=IntentStatus.SUBMITTING,
                        requested_size_usd=Decimal("180"),
                        position_id=uuid.uuid4(),
                        client_order_id=f"egx-{uuid.uuid4().hex[:16]}",
                        order_qty=Decimal("0.003"),
                    )
                ],
            )
            await repo.insert_stops(
                conn,
                [
                    {
                        "client_algo_id": client_id,
                        "intent_id": intent_id,
                        "purpose": purpose,
                        "kind": kind,
                        "side": "SELL",
                        "trigger_price": Decimal(trigger),
                        "status": "placing",
                    }
                    for client_id, purpose, kind, trigger in (
                        ("egt-fired-while-down", "take_profit", "TAKE_PROFIT_MARKET", "61000.00"),
                        ("egs-never-reached-the-venue", "stop_loss", "STOP_MARKET", "59000.00"),
                    )
                ],
            )
            await repo.stop_placed(conn, "egt-fired-while-down", status="placed", algo_id=str(placed["algoId"]))
        venue.set_mark_price("BTCUSDT", "61000.50")  # fires while no stream listens
        [algo] = venue.algo_orders(API_KEY)
        spawned = str(algo.actual_order_id)

        await streaming()
        [finished] = await tail.wait_for(
            of(c.ExchangeAlgoOrderFact, exchange_account=account, status="FINISHED"),
            what="the FINISHED fact of the stop that fired while nothing listened",
        )
        assert (finished.client_algo_id, finished.spawned_order_id) == ("egt-fired-while-down", spawned)
        await tail.wait_for(
            of(c.ExchangeTradeFact, exchange_account=account, exchange_order_id=spawned),
            what="the spawned order's trade",
        )
        async with engine.connect() as conn:
            left = await repo.unfinished_stops(conn, c.ExchangeName.BINANCE_USDM, account)
            status = await conn.scalar(
                sa.select(repo.stop_orders.c.detail).where(repo.stop_orders.c.client_algo_id == "egt-fired-while-down")
            )
        assert status == "FINISHED"
        assert [stop.client_algo_id for stop in left] == ["egs-never-reached-the-venue"], (
            "a stop the venue never had stays to be asked about again; the finished one is not"
        )
    finally:
        await engine.dispose()


async def test_an_expired_listen_key_is_replaced_and_a_kept_one_is_put(streaming, venue, client, tail, account):
    stream = await streaming(binance_stream_keepalive_seconds=0.1)
    await stream_connected(stream)
    await eventually(lambda: _requested(venue, "PUT", LISTEN_KEY), what="a keepalive")
    venue.expire_listen_key(API_KEY)
    await eventually(lambda: _requested(venue, "POST", LISTEN_KEY, 2), what="a new listen key")
    await stream_connected(stream)
    placed = await buy(client)
    [trade] = await tail.wait_for(of(c.ExchangeTradeFact, exchange_account=account), what="a fill on the new key")
    assert trade.exchange_order_id == str(placed["orderId"])


async def test_no_stream_without_accounts_or_when_switched_off_and_urls_follow_the_settings(test_database):
    credentials = {"main": BinanceCredentials(api_key="k", api_secret="s")}
    assert user_streams(build_runtime(executor_settings())) == []
    assert (
        user_streams(build_runtime(executor_settings(binance_accounts=credentials, binance_stream_enabled=False))) == []
    )
    assert stream_url(executor_settings(binance_base_url="http://127.0.0.1:8765/")) == "ws://127.0.0.1:8765"
    assert stream_url(executor_settings(binance_base_url="https://venue.example")) == "wss://venue.example"
    assert stream_url(executor_settings(binance_stream_url="wss://elsewhere/x/")) == "wss://elsewhere/x"
    assert stream_url(executor_settings()) == "wss://fstream.binancefuture.com/private"
    assert stream_url(executor_settings(binance_live=True)) == "wss://fstream.binance.com/private"


async def _is_down(stream: AccountStream) -> bool:
    return not stream.connected.is_set()


async def _requested(venue: BinanceLocal, method: str, path: str, count: int = 1) -> bool:
    return len(venue.requests(method, path)) >= count


async def test_events_without_facts_and_garbage_are_skipped_and_the_stream_goes_on(
    streaming, venue, client, tail, account
):
    stream = await streaming()
    await stream_connected(stream)
    venue.inject_user_stream_event(API_KEY, "not json at all")
    venue.inject_user_stream_event(API_KEY, {"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "BTCUSDT"}})  # truncated
    venue.inject_user_stream_event(API_KEY, {"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "ORDER"}})
    placed = await buy(client)
    [trade] = await tail.wait_for(of(c.ExchangeTradeFact, exchange_account=account), what="a fill after garbage")
    assert trade.exchange_order_id == str(placed["orderId"]) and from_stream(trade)
    assert stream.connected.is_set() and len(venue.requests("POST", LISTEN_KEY)) == 1  # never reconnected
