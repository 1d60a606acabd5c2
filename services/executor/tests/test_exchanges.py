"""Which venues the executor builds from its settings: Binance from the environment, on the account it names."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from egis_binance_local import BinanceLocal
from egis_common.ids import client_order_id
from egis_venues.port import Filled, MarketOrder, OrderSide
from executor.adapters.exchanges import binance_exchange
from executor.settings import ExecutorSettings

API_KEY, API_SECRET = "egis-test-key", "egis-test-secret"


@pytest.fixture
async def server() -> AsyncIterator[BinanceLocal]:
    async with BinanceLocal() as venue:
        venue.add_account(API_KEY, API_SECRET, usdt="10000")
        yield venue


async def test_settings_from_the_environment_select_the_account_and_the_server(server, monkeypatch):
    monkeypatch.setenv("EGIS_BINANCE_ACCOUNTS", json.dumps({"env": {"api_key": API_KEY, "api_secret": API_SECRET}}))
    monkeypatch.setenv("EGIS_BINANCE_BASE_URL", server.base_url)
    settings = ExecutorSettings()
    assert API_SECRET not in repr(settings) and not settings.binance_live
    adapter = binance_exchange(settings)
    order = MarketOrder("env", "BTCUSDT", OrderSide.BUY, Decimal("0.002"), client_order_id(uuid.uuid4()), False)
    try:
        assert isinstance(await adapter.place_market_order(order), Filled)
    finally:
        await adapter.close()
