"""A fresh local venue per test, one funded account, and the real python-binance client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from binance import AsyncClient

from egis_binance_local import BinanceLocal, local_async_client

API_KEY = "test-key-alice"
API_SECRET = "test-secret-alice"


@pytest.fixture
async def server() -> AsyncIterator[BinanceLocal]:
    async with BinanceLocal() as venue:
        venue.add_account(API_KEY, API_SECRET, usdt="10000")
        yield venue


@pytest.fixture
async def make_client(server: BinanceLocal) -> AsyncIterator[Callable[..., AsyncClient]]:
    clients: list[AsyncClient] = []

    def make(api_key: str = API_KEY, api_secret: str = API_SECRET, **kwargs: Any) -> AsyncClient:
        client = local_async_client(server.base_url, api_key, api_secret, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close_connection()


@pytest.fixture
async def client(make_client: Callable[..., AsyncClient]) -> AsyncClient:
    # Made inside the running loop: python-binance binds its session to `asyncio.get_event_loop()`, which
    # outside a loop may be another one (or a new one) after earlier tests closed or replaced theirs.
    return make_client()


@pytest.fixture
def api_key() -> str:
    return API_KEY
