"""python-binance clients: which venue, which timeout, one per exchange account.

The `account` named on an order selects the API key pair; each pair gets its
own `AsyncClient` (and aiohttp session), created on first use and closed by
`BinanceClients.close()`. Market data goes through one unauthenticated client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp
from binance import AsyncClient

from egis_common.logs import get_logger
from egis_venues.settings import BinanceCredentials

log = get_logger(__name__)

# Builds a client for a key pair, or for public market data when given None.
ClientFactory = Callable[[BinanceCredentials | None], AsyncClient]


def client_factory(*, live: bool, base_url: str | None, request_timeout_s: float) -> ClientFactory:
    """Testnet unless `live`; `base_url` (a local server) overrides both."""
    client_class = _client_class(base_url)
    # Replaces python-binance's 10 s default on every request: a hung order placement
    # becomes Unknown after this long. aiohttp never resends a POST by itself.
    requests_params = {"timeout": aiohttp.ClientTimeout(total=request_timeout_s)}
    venue = base_url or ("live" if live else "testnet")

    def make(credentials: BinanceCredentials | None) -> AsyncClient:
        key, secret = _plain(credentials)
        log.info("binance_client_created", venue=venue)
        # Constructed directly: AsyncClient.create() would call the spot ping and time endpoints.
        return client_class(key, secret, requests_params=dict(requests_params), testnet=not live)

    return make


def _client_class(base_url: str | None) -> type[AsyncClient]:
    if base_url is None:
        return AsyncClient  # type: ignore[no-any-return]  # python-binance has no type hints: its class is Any to mypy
    # python-binance builds futures URLs from these class attributes, whichever flag is set.
    fapi = f"{base_url.rstrip('/')}/fapi"
    attributes = {"FUTURES_URL": fapi, "FUTURES_TESTNET_URL": fapi, "FUTURES_DEMO_URL": fapi}
    return type("AsyncClientAtBaseUrl", (AsyncClient,), attributes)


def _plain(credentials: BinanceCredentials | None) -> tuple[str | None, str | None]:
    if credentials is None:
        return None, None
    return credentials.api_key.get_secret_value(), credentials.api_secret.get_secret_value()


class BinanceClients:
    def __init__(self, accounts: Mapping[str, BinanceCredentials], factory: ClientFactory) -> None:
        self._accounts = dict(accounts)
        self._factory = factory
        self._clients: dict[str | None, AsyncClient] = {}

    def for_account(self, account: str) -> AsyncClient | None:
        """The account's client; None for an account without credentials (nothing is sent)."""
        credentials = self._accounts.get(account)
        if credentials is None:
            return None
        return self._client(account, credentials)

    def public(self) -> AsyncClient:
        return self._client(None, None)

    def _client(self, name: str | None, credentials: BinanceCredentials | None) -> AsyncClient:
        if name not in self._clients:
            log.info("binance_client_for_account", account=name or "(public market data)")
            self._clients[name] = self._factory(credentials)
        return self._clients[name]

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close_connection()
