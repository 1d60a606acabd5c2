"""`BinanceLocal`: the server object tests start in-process, and its control methods.

    async with BinanceLocal() as server:
        server.add_account("key", "secret", usdt="10000")
        client = local_async_client(server.base_url, "key", "secret")
        ...
        server.set_mark_price("BTCUSDT", "61000")   # fills and triggers what crossed

The same controls are reachable over HTTP under /_control (see `control.py`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial
from typing import Any

from aiohttp import web

from egis_binance_local import control
from egis_binance_local.exchange import Exchange, Fees, wall_clock_ms
from egis_binance_local.faults import Fault, FaultKind, RequestRecord
from egis_binance_local.limits import DEFAULT_WEIGHT_LIMIT, WeightMeter
from egis_binance_local.model import Account, AlgoOrder, Order, Position, Trade
from egis_binance_local.money import ZERO, to_decimal
from egis_binance_local.routes import ROUTES
from egis_binance_local.symbols import DEFAULT_SYMBOLS, SymbolSpec
from egis_binance_local.user_stream import UserStreams
from egis_binance_local.venue import Venue

Amount = Decimal | str


class BinanceLocal:
    def __init__(
        self,
        *,
        symbols: Iterable[SymbolSpec] = DEFAULT_SYMBOLS,
        taker_fee_rate: Amount = "0.0005",
        maker_fee_rate: Amount = "0.0002",
        slippage_rate: Amount = ZERO,
        weight_limit: int = DEFAULT_WEIGHT_LIMIT,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        fees = Fees(to_decimal(taker_fee_rate), to_decimal(maker_fee_rate))
        exchange = Exchange(symbols, fees=fees, slippage_rate=to_decimal(slippage_rate), clock=clock)
        self.venue = Venue(exchange, WeightMeter(clock, weight_limit))
        self.streams = UserStreams(exchange)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self.venue.stopping = asyncio.Event()
        self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        self.venue.stopping.set()  # releases answers held by accept_then_timeout
        await self.streams.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BinanceLocal:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _app(self) -> web.Application:
        app = web.Application()
        for route in ROUTES:
            app.router.add_route(route.method, route.path, partial(self.venue.handle, route))
        self.streams.register(app)
        control.register(app, self)
        # Registered last, so it only catches what no route above serves.
        app.router.add_route("*", "/fapi/{tail:.*}", self.venue.not_served)
        return app

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def fapi_url(self) -> str:
        """What python-binance's FUTURES_URL / FUTURES_TESTNET_URL should be."""
        return f"{self.base_url}/fapi"

    @property
    def stream_url(self) -> str:
        """The user data stream's base: connect to f"{stream_url}/ws/{listen_key}"."""
        return f"ws://{self._host}:{self._port}"

    # --- accounts and market -----------------------------------------------------

    def add_account(self, api_key: str, api_secret: str, *, usdt: Amount = "10000", leverage: int = 20) -> Account:
        return self.venue.exchange.add_account(api_key, api_secret, to_decimal(usdt), leverage)

    def fund(self, api_key: str, amount: Amount) -> Account:
        return self.venue.exchange.fund(api_key, to_decimal(amount))

    def set_mark_price(self, symbol: str, price: Amount) -> None:
        self.venue.exchange.set_mark_price(symbol, to_decimal(price))

    def mark_price(self, symbol: str) -> Decimal:
        return self.venue.exchange.marks[symbol]

    # --- faults, request log, weight ------------------------------------------------

    def inject_fault(
        self,
        kind: FaultKind | str,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        **options: Any,
    ) -> Fault:
        """Arm a fault for the next `count` requests matching method and path (None: any)."""
        fault = Fault(FaultKind(kind), count, method.upper() if method else None, path, **options)
        return self.venue.faults.add(fault)

    def clear_faults(self) -> None:
        self.venue.faults.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        return [r for r in self.venue.log if method in (None, r.method) and path in (None, r.path)]

    def clear_requests(self) -> None:
        self.venue.log.clear()

    @property
    def weight_limit(self) -> int:
        return self.venue.meter.limit

    @weight_limit.setter
    def weight_limit(self, limit: int) -> None:
        self.venue.meter.limit = limit

    def used_weight(self) -> int:
        return self.venue.meter.used()

    # --- the user data stream ---------------------------------------------------------

    def drop_user_streams(self, api_key: str | None = None) -> int:
        """Abort the user data stream sockets (of one account, or all); returns how many."""
        return self.streams.drop(api_key)

    @property
    def user_streams_accepting(self) -> bool:
        return self.streams.accepting

    @user_streams_accepting.setter
    def user_streams_accepting(self, accepting: bool) -> None:
        """False: new user data stream sockets are refused (503) until set back to True."""
        self.streams.accepting = accepting

    def user_streams(self, api_key: str | None = None) -> int:
        """How many user data stream sockets are open (of one account, or all)."""
        return self.streams.connected(api_key)

    def inject_user_stream_event(self, api_key: str, event: dict[str, Any] | str) -> None:
        """Push any event (a dict, sent as JSON) or raw text to the account's user data stream sockets."""
        self.streams.inject(api_key, event)

    def expire_listen_key(self, api_key: str) -> None:
        """The account's listen key expires now: `listenKeyExpired`, sockets closed, PUT answers -1125."""
        self.venue.exchange.end_listen_key(self.account(api_key), expired=True)

    # --- what the venue holds ------------------------------------------------------------

    def account(self, api_key: str) -> Account:
        return self.venue.exchange.accounts[api_key]

    def orders(self, api_key: str, symbol: str | None = None) -> list[Order]:
        return [o for o in self.account(api_key).orders.values() if symbol in (None, o.symbol)]

    def algo_orders(self, api_key: str, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.account(api_key).algo_orders.values() if symbol in (None, a.symbol)]

    def trades(self, api_key: str, symbol: str | None = None) -> list[Trade]:
        return [t for t in self.account(api_key).trades if symbol in (None, t.symbol)]

    def position(self, api_key: str, symbol: str) -> Position:
        return self.account(api_key).position(self.venue.exchange.spec(symbol).symbol)
