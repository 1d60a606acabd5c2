"""Request weight per minute: the header, the limit, the reset when the minute turns."""

from __future__ import annotations

import pytest
from binance.exceptions import BinanceAPIException

from egis_binance_local import BinanceLocal, local_async_client


class ManualClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


async def test_used_weight_is_reported_in_the_header(server, client):
    await client.futures_exchange_info()
    assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    await client.futures_get_open_orders()  # 40 without a symbol
    assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == "41"
    await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
    assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == "41"  # orders cost no IP weight


async def test_over_the_limit_answers_429_until_the_minute_turns():
    clock = ManualClock(1_700_000_080_000)  # 20 s before a minute boundary
    async with BinanceLocal(weight_limit=3, clock=clock) as server:
        client = local_async_client(server.base_url, None, None)
        try:
            for _ in range(3):
                await client.futures_ping()
            with pytest.raises(BinanceAPIException) as limited:
                await client.futures_ping()
            assert (limited.value.status_code, limited.value.code) == (429, -1003)
            assert limited.value.response.headers["Retry-After"] == "20"
            assert [r.status for r in server.requests()] == [200, 200, 200, 429]
            clock.now_ms += 20_000
            assert await client.futures_ping() == {}
            assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        finally:
            await client.close_connection()


async def test_the_limit_can_be_changed_while_running(server, client):
    server.weight_limit = 5
    await client.futures_account()  # weight 5
    with pytest.raises(BinanceAPIException) as limited:
        await client.futures_ping()
    assert limited.value.status_code == 429
    assert server.used_weight() == 5


async def test_repeated_429s_earn_a_418_ban_with_retry_after_until_it_ends():
    start_ms = 1_700_000_040_000  # a minute boundary
    clock = ManualClock(start_ms)
    async with BinanceLocal(weight_limit=1, clock=clock) as server:
        meter = server.venue.meter
        client = local_async_client(server.base_url, None, None)
        try:
            await client.futures_ping()
            for _ in range(meter.refusals_before_ban + 1):  # the last refusal is one too many
                with pytest.raises(BinanceAPIException) as limited:
                    await client.futures_ping()
                assert limited.value.status_code == 429
            clock.now_ms += 60_000  # the minute turns: the weight is free again, the ban is not over
            with pytest.raises(BinanceAPIException) as banned:
                await client.futures_ping()
            assert (banned.value.status_code, banned.value.code) == (418, -1003)
            ban_ms = meter.ban_s * 1000
            assert banned.value.response.headers["Retry-After"] == str((ban_ms - 60_000) // 1000)
            assert str(start_ms + ban_ms) in banned.value.message
            assert server.used_weight() == 0  # a banned request counts no weight
            clock.now_ms = start_ms + ban_ms
            assert await client.futures_ping() == {}
            assert [r.status for r in server.requests()] == [200] + [429] * 11 + [418, 200]
        finally:
            await client.close_connection()
