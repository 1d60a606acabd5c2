"""Account-side endpoints: positions, account, balance, leverage, fees, listen key, mark prices."""

from __future__ import annotations

from typing import Any

from egis_binance_local import errors, params
from egis_binance_local import render_account as shapes
from egis_binance_local.fapi import Call
from egis_binance_local.margin import PositionFigures, account_figures, position_figures
from egis_binance_local.money import ZERO, render_plain, render_usdt


def _figures(call: Call, symbol: str | None, *, all_symbols: bool) -> list[PositionFigures]:
    """v2 lists every symbol; v3 only those with a position or open orders."""
    exchange, account = call.venue.exchange, call.me
    if symbol is not None:
        exchange.spec(symbol)
    symbols = [s for s in exchange.specs if symbol in (None, s)]
    figures = [position_figures(account, account.position(s), exchange.marks[s]) for s in symbols]
    return [f for f in figures if all_symbols or f.position.amount != ZERO or account.open_orders(f.position.symbol)]


def _taker_rate(call: Call) -> Any:
    return call.venue.exchange.fees.taker_rate


def position_risk_v2(call: Call) -> Any:
    specs = call.venue.exchange.specs
    return [
        shapes.position_risk_v2(f, specs[f.position.symbol], _taker_rate(call))
        for f in _figures(call, params.text(call.params, "symbol"), all_symbols=True)
    ]


def position_risk_v3(call: Call) -> Any:
    specs = call.venue.exchange.specs
    return [
        shapes.position_risk_v3(call.me, f, specs[f.position.symbol], _taker_rate(call))
        for f in _figures(call, params.text(call.params, "symbol"), all_symbols=False)
    ]


def account_v2(call: Call) -> Any:
    totals = account_figures(call.me, call.venue.exchange.marks)
    specs = call.venue.exchange.specs
    return {
        **shapes.account_v2_header(),
        **shapes.totals(totals),
        "assets": [shapes.usdt_asset(totals, call.me.update_ms, v2=True)],
        "positions": [
            shapes.account_position_v2(f, specs[f.position.symbol], _taker_rate(call))
            for f in _figures(call, None, all_symbols=True)
        ],
    }


def account_v3(call: Call) -> Any:
    totals = account_figures(call.me, call.venue.exchange.marks)
    specs = call.venue.exchange.specs
    return {
        **shapes.totals(totals),
        "assets": [shapes.usdt_asset(totals, call.me.update_ms, v2=False)],
        "positions": [
            shapes.account_position_v3(f, specs[f.position.symbol]) for f in _figures(call, None, all_symbols=False)
        ],
    }


def balance(call: Call) -> Any:
    return [shapes.balance_entry(call.me, account_figures(call.me, call.venue.exchange.marks))]


def post_leverage(call: Call) -> Any:
    symbol = call.venue.exchange.spec(params.required(call.params, "symbol")).symbol
    leverage = params.integer(call.params, "leverage")
    if leverage is None:
        raise errors.mandatory("leverage")
    if not 1 <= leverage <= 125:
        raise errors.invalid_leverage()
    call.me.leverage[symbol] = leverage
    return {"leverage": leverage, "maxNotionalValue": shapes.MAX_NOTIONAL, "symbol": symbol}


def position_mode(call: Call) -> Any:
    return {"dualSidePosition": False}  # one-way mode only


def commission_rate(call: Call) -> Any:
    symbol = call.venue.exchange.spec(params.required(call.params, "symbol")).symbol
    fees = call.venue.exchange.fees
    return {
        "symbol": symbol,
        "makerCommissionRate": render_plain(fees.maker_rate),
        "takerCommissionRate": render_plain(fees.taker_rate),
    }


def listen_key(call: Call) -> Any:
    return {"listenKey": call.venue.exchange.listen_key(call.me)}


def keep_listen_key_alive(call: Call) -> Any:
    return {"listenKey": call.venue.exchange.keep_listen_key_alive(call.me, params.text(call.params, "listenKey"))}


def close_listen_key(call: Call) -> Any:
    call.venue.exchange.end_listen_key(call.me, expired=False)
    return {}


def _per_symbol(call: Call, shape: Any) -> Any:
    symbol = params.text(call.params, "symbol")
    if symbol is not None:
        return shape(call.venue.exchange.spec(symbol).symbol)
    return [shape(s) for s in call.venue.exchange.specs]


def premium_index(call: Call) -> Any:
    exchange = call.venue.exchange
    return _per_symbol(
        call,
        lambda s: {
            "symbol": s,
            "markPrice": render_usdt(exchange.marks[s]),
            "indexPrice": render_usdt(exchange.marks[s]),
            "estimatedSettlePrice": render_usdt(exchange.marks[s]),
            "lastFundingRate": "0.00000000",
            "interestRate": "0.00010000",
            "nextFundingTime": 0,
            "time": exchange.clock(),
        },
    )


def ticker_price(call: Call) -> Any:
    # Without a trade feed, the last price is the mark price.
    exchange = call.venue.exchange
    return _per_symbol(
        call,
        lambda s: {
            "symbol": s,
            "price": render_plain(exchange.marks[s]),
            "time": exchange.clock(),
        },
    )
