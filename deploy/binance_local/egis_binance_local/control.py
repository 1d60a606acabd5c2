"""The test-control API under /_control: not Binance's, for demos and out-of-process tests.

Every handler calls the matching `BinanceLocal` method, so HTTP and Python
control do the same thing. Amounts are decimal strings; a JSON number with a
fraction is refused rather than read through a float.

    POST   /_control/accounts              {"apiKey", "apiSecret", "usdt"?, "leverage"?}
    POST   /_control/accounts/{key}/fund   {"amount"}
    GET    /_control/accounts/{key}        wallet, positions, orders, algo orders, trades
    POST   /_control/mark_price            {"symbol", "price"}   fills and triggers what crossed
    GET    /_control/mark_price            {"BTCUSDT": "60000.00", ...}
    POST   /_control/faults                {"kind", "count"?, "method"?, "path"?, "code"?, "msg"?,
                                            "status"?, "retryAfterS"?, "delayS"?}
    DELETE /_control/faults
    GET    /_control/requests?method=&path=
    DELETE /_control/requests
    POST   /_control/weight_limit          {"limit"}
    GET    /_control/user_streams          {"connected", "accepting"}
    POST   /_control/user_streams/drop     {"apiKey"?}           aborts the sockets: a network drop
    POST   /_control/user_streams/accepting {"accepting"}        false: new sockets are refused
    POST   /_control/accounts/{key}/listen_key/expire            listenKeyExpired, sockets closed
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from egis_binance_local.money import render_plain

if TYPE_CHECKING:
    from egis_binance_local.server import BinanceLocal

_FAULT_OPTIONS = {"code": "code", "msg": "msg", "status": "status", "retryAfterS": "retry_after_s", "delayS": "delay_s"}


def register(app: web.Application, server: BinanceLocal) -> None:
    def route(method: str, path: str, handler: Any) -> None:
        app.router.add_route(method, path, _guarded(server, handler))

    route("POST", "/_control/accounts", add_account)
    route("POST", "/_control/accounts/{api_key}/fund", fund)
    route("GET", "/_control/accounts/{api_key}", show_account)
    route("POST", "/_control/mark_price", set_mark_price)
    route("GET", "/_control/mark_price", mark_prices)
    route("POST", "/_control/faults", add_fault)
    route("DELETE", "/_control/faults", clear_faults)
    route("GET", "/_control/requests", list_requests)
    route("DELETE", "/_control/requests", clear_requests)
    route("POST", "/_control/weight_limit", set_weight_limit)
    route("GET", "/_control/user_streams", user_streams)
    route("POST", "/_control/user_streams/drop", drop_user_streams)
    route("POST", "/_control/user_streams/accepting", set_user_streams_accepting)
    route("POST", "/_control/accounts/{api_key}/listen_key/expire", expire_listen_key)


def _guarded(server: BinanceLocal, handler: Any) -> Any:
    async def run(request: web.Request) -> web.Response:
        try:
            return web.json_response(await handler(server, request))
        except (ValueError, KeyError, TypeError) as error:
            return web.json_response({"error": f"{type(error).__name__}: {error}"}, status=400)

    return run


async def _body(request: web.Request) -> dict[str, Any]:
    def refuse_float(text: str) -> Any:
        raise ValueError(f"amounts are decimal strings, got the JSON number {text}")

    body = json.loads(await request.text() or "{}", parse_float=refuse_float)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


async def add_account(server: BinanceLocal, request: web.Request) -> Any:
    body = await _body(request)
    account = server.add_account(
        body["apiKey"], body["apiSecret"], usdt=body.get("usdt", "10000"), leverage=int(body.get("leverage", 20))
    )
    return _account_summary(server, account.api_key)


async def fund(server: BinanceLocal, request: web.Request) -> Any:
    server.fund(request.match_info["api_key"], (await _body(request))["amount"])
    return _account_summary(server, request.match_info["api_key"])


async def show_account(server: BinanceLocal, request: web.Request) -> Any:
    return _account_summary(server, request.match_info["api_key"])


async def set_mark_price(server: BinanceLocal, request: web.Request) -> Any:
    body = await _body(request)
    server.set_mark_price(body["symbol"], body["price"])
    return {"symbol": body["symbol"], "markPrice": render_plain(server.mark_price(body["symbol"]))}


async def mark_prices(server: BinanceLocal, request: web.Request) -> Any:
    return {symbol: render_plain(price) for symbol, price in server.venue.exchange.marks.items()}


async def add_fault(server: BinanceLocal, request: web.Request) -> Any:
    body = await _body(request)
    options = {field: body[name] for name, field in _FAULT_OPTIONS.items() if name in body}
    fault = server.inject_fault(
        body["kind"], count=int(body.get("count", 1)), method=body.get("method"), path=body.get("path"), **options
    )
    return {**dataclasses.asdict(fault), "kind": fault.kind.value}


async def clear_faults(server: BinanceLocal, request: web.Request) -> Any:
    server.clear_faults()
    return {}


async def list_requests(server: BinanceLocal, request: web.Request) -> Any:
    query = request.query
    return [r.as_json() for r in server.requests(query.get("method"), query.get("path"))]


async def clear_requests(server: BinanceLocal, request: web.Request) -> Any:
    server.clear_requests()
    return {}


async def set_weight_limit(server: BinanceLocal, request: web.Request) -> Any:
    server.weight_limit = int((await _body(request))["limit"])
    return {"limit": server.weight_limit, "used": server.used_weight()}


async def user_streams(server: BinanceLocal, request: web.Request) -> Any:
    return {"connected": server.user_streams(), "accepting": server.user_streams_accepting}


async def drop_user_streams(server: BinanceLocal, request: web.Request) -> Any:
    return {"dropped": server.drop_user_streams((await _body(request)).get("apiKey"))}


async def set_user_streams_accepting(server: BinanceLocal, request: web.Request) -> Any:
    accepting = (await _body(request))["accepting"]
    if not isinstance(accepting, bool):
        raise TypeError("accepting is true or false")
    server.user_streams_accepting = accepting
    return await user_streams(server, request)


async def expire_listen_key(server: BinanceLocal, request: web.Request) -> Any:
    server.expire_listen_key(request.match_info["api_key"])
    return {}


def _account_summary(server: BinanceLocal, api_key: str) -> dict[str, Any]:
    account = server.account(api_key)
    return {
        "apiKey": account.api_key,
        "walletUsdt": render_plain(account.wallet_usdt),
        "positions": {
            s: {"amount": render_plain(p.amount), "entryPrice": render_plain(p.entry_price)}
            for s, p in account.positions.items()
            if p.amount
        },
        "orders": [
            {
                "orderId": o.order_id,
                "clientOrderId": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side,
                "type": o.type,
                "status": o.status,
                "executedQty": render_plain(o.executed_qty),
            }
            for o in account.orders.values()
        ],
        "algoOrders": [
            {
                "algoId": a.algo_id,
                "clientAlgoId": a.client_algo_id,
                "symbol": a.symbol,
                "orderType": a.order_type,
                "algoStatus": a.status,
                "actualOrderId": a.actual_order_id,
            }
            for a in account.algo_orders.values()
        ],
        "trades": len(account.trades),
    }
