"""The user data stream: a websocket per listen key, fed by every order and algo order change.

    ws://<host>:<port>/ws/<listenKey>              (also /private/ws/<listenKey>, /private/ws?listenKey=)

The exchange announces each change synchronously, inside the request (or mark
price move) that made it; the event is rendered at once, so it shows the order
as it was then, and queued to every socket of the account. An account without
a socket loses its events, as on the venue: a client catches up over REST.

Test controls: `drop` aborts the sockets (a network drop, no close frame),
`accepting = False` refuses new ones, a listen key that ends (DELETE, expiry)
sends `listenKeyExpired` and closes its sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from egis_binance_local import render_stream
from egis_binance_local.exchange import Exchange
from egis_binance_local.model import Account, AlgoOrder, Order, Trade

PATHS = ("/ws/{listen_key}", "/private/ws/{listen_key}", "/private/ws")


@dataclass(eq=False)
class _Socket:
    api_key: str
    listen_key: str
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[dict[str, Any] | str | None] = field(default_factory=asyncio.Queue)


class UserStreams:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.accepting = True
        self._sockets: set[_Socket] = set()
        exchange.listeners.append(self)

    def register(self, app: web.Application) -> None:
        for path in PATHS:
            app.router.add_get(path, self.handle)

    # --- the websocket -----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        listen_key = request.match_info.get("listen_key") or request.query.get("listenKey", "")
        account = self._account_of(listen_key)
        if not self.accepting:
            return web.json_response({"code": -1001, "msg": "binance-local refuses user streams now"}, status=503)
        if account is None:
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        socket = _Socket(account.api_key, listen_key, ws, request)
        self._sockets.add(socket)
        writer = asyncio.create_task(self._write(socket))
        try:
            async for message in ws:  # the client sends nothing we need; this ends when it closes
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(socket)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer  # a socket aborted mid-send ends its writer with a connection error
        return ws

    async def _write(self, socket: _Socket) -> None:
        while (event := await socket.queue.get()) is not None:
            if isinstance(event, str):
                await socket.ws.send_str(event)
            else:
                await socket.ws.send_json(event)
        await socket.ws.close()

    def _account_of(self, listen_key: str) -> Account | None:
        for account in self.exchange.accounts.values():
            if listen_key and self.exchange.valid_listen_key(account) == listen_key:
                return account
        return None

    # --- what the exchange announces (the exchange's Listener) ----------------------

    def order_changed(self, account: Account, order: Order, execution: str, trade: Trade | None) -> None:
        spec = self.exchange.spec(order.symbol)
        self._push(account, render_stream.order_trade_update(order, spec, execution, trade, self.exchange.clock()))

    def algo_changed(self, account: Account, algo: AlgoOrder) -> None:
        actual = account.orders.get(algo.actual_order_id) if algo.actual_order_id else None
        spec = self.exchange.spec(algo.symbol)
        self._push(account, render_stream.algo_update(algo, spec, actual, self.exchange.clock()))

    def listen_key_ended(self, account: Account, listen_key: str, expired: bool) -> None:
        event = render_stream.listen_key_expired(listen_key, self.exchange.clock())
        for socket in self._of(account.api_key, listen_key):
            if expired:
                socket.queue.put_nowait(event)
            socket.queue.put_nowait(None)  # then close

    def _push(self, account: Account, event: dict[str, Any]) -> None:
        listen_key = self.exchange.valid_listen_key(account)  # may end an expired key first
        for socket in self._of(account.api_key, listen_key):
            socket.queue.put_nowait(event)

    def _of(self, api_key: str, listen_key: str | None) -> list[_Socket]:
        return [s for s in self._sockets if s.api_key == api_key and s.listen_key == listen_key]

    # --- test controls --------------------------------------------------------------

    def inject(self, api_key: str, event: dict[str, Any] | str) -> None:
        """Send anything (an event the venue might send, or garbage) to the account's sockets."""
        for socket in [s for s in self._sockets if s.api_key == api_key]:
            socket.queue.put_nowait(event)

    def connected(self, api_key: str | None = None) -> int:
        return sum(1 for s in self._sockets if api_key in (None, s.api_key))

    def drop(self, api_key: str | None = None) -> int:
        """Abort the sockets (of one account, or all): the client sees the connection lost."""
        dropped = [s for s in self._sockets if api_key in (None, s.api_key)]
        for socket in dropped:
            self._sockets.discard(socket)
            if socket.request.transport is not None:
                socket.request.transport.abort()
        return len(dropped)

    async def close_all(self) -> None:
        sockets = list(self._sockets)
        self._sockets.clear()
        for socket in sockets:
            await socket.ws.close()
