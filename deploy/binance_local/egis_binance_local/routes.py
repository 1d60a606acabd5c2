"""Every /fapi route with its security type and request weight (the venue's published weights)."""

from __future__ import annotations

from egis_binance_local import fapi
from egis_binance_local import fapi_account as acct
from egis_binance_local.auth import Security
from egis_binance_local.fapi import Route, weight

NONE, STREAM, SIGNED = Security.NONE, Security.USER_STREAM, Security.SIGNED

ROUTES: tuple[Route, ...] = (
    Route("GET", "/fapi/v1/ping", NONE, fapi.ping, weight(1)),
    Route("GET", "/fapi/v1/time", NONE, fapi.server_time, weight(1)),
    Route("GET", "/fapi/v1/exchangeInfo", NONE, fapi.get_exchange_info, weight(1)),
    Route("GET", "/fapi/v1/premiumIndex", NONE, acct.premium_index, weight(1, 10)),
    Route("GET", "/fapi/v1/ticker/price", NONE, acct.ticker_price, weight(1, 2)),
    Route("GET", "/fapi/v2/ticker/price", NONE, acct.ticker_price, weight(1, 2)),
    # Placing orders costs no IP weight on the venue; they count against order limits instead.
    Route("POST", "/fapi/v1/order", SIGNED, fapi.post_order, weight(0)),
    Route("GET", "/fapi/v1/order", SIGNED, fapi.get_order, weight(1)),
    Route("DELETE", "/fapi/v1/order", SIGNED, fapi.delete_order, weight(1)),
    Route("GET", "/fapi/v1/openOrders", SIGNED, fapi.get_open_orders, weight(1, 40)),
    Route("GET", "/fapi/v1/allOrders", SIGNED, fapi.get_all_orders, weight(5)),
    Route("DELETE", "/fapi/v1/allOpenOrders", SIGNED, fapi.delete_all_open_orders, weight(1)),
    Route("POST", "/fapi/v1/algoOrder", SIGNED, fapi.post_algo_order, weight(0)),
    Route("GET", "/fapi/v1/algoOrder", SIGNED, fapi.get_algo_order, weight(1)),
    Route("DELETE", "/fapi/v1/algoOrder", SIGNED, fapi.delete_algo_order, weight(1)),
    Route("GET", "/fapi/v1/openAlgoOrders", SIGNED, fapi.get_open_algo_orders, weight(1, 40)),
    Route("GET", "/fapi/v1/allAlgoOrders", SIGNED, fapi.get_all_algo_orders, weight(5)),
    Route("DELETE", "/fapi/v1/algoOpenOrders", SIGNED, fapi.delete_algo_open_orders, weight(1)),
    Route("GET", "/fapi/v1/userTrades", SIGNED, fapi.get_user_trades, weight(5)),
    Route("GET", "/fapi/v2/positionRisk", SIGNED, acct.position_risk_v2, weight(5)),
    Route("GET", "/fapi/v3/positionRisk", SIGNED, acct.position_risk_v3, weight(5)),
    Route("GET", "/fapi/v2/account", SIGNED, acct.account_v2, weight(5)),
    Route("GET", "/fapi/v3/account", SIGNED, acct.account_v3, weight(5)),
    Route("GET", "/fapi/v2/balance", SIGNED, acct.balance, weight(5)),
    Route("GET", "/fapi/v3/balance", SIGNED, acct.balance, weight(5)),
    Route("POST", "/fapi/v1/leverage", SIGNED, acct.post_leverage, weight(1)),
    Route("GET", "/fapi/v1/positionSide/dual", SIGNED, acct.position_mode, weight(30)),
    Route("GET", "/fapi/v1/commissionRate", SIGNED, acct.commission_rate, weight(20)),
    Route("POST", "/fapi/v1/listenKey", STREAM, acct.listen_key, weight(1)),
    Route("PUT", "/fapi/v1/listenKey", STREAM, acct.keep_listen_key_alive, weight(1)),
    Route("DELETE", "/fapi/v1/listenKey", STREAM, acct.close_listen_key, weight(1)),
)
