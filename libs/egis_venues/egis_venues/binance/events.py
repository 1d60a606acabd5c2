"""Binance USDⓈ-M user data events, and their REST equivalents, as exchange facts: pure parsers, no I/O.

`ORDER_TRADE_UPDATE` gives the order's state as a fact and, when it reports an
execution (`x` = TRADE), the trade as a second fact. `ALGO_UPDATE` gives the
algo order's state; once triggered, `ai` names the regular order it spawned.
The REST answers (userTrades, order, algoOrder) give the same facts when the
stream was down. Money stays in the venue's decimal strings until the
contracts parse them.

The executor publishes these facts (`egis_venues.binance.stream`); the reconciler parses
REST trades with them when it repairs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from egis_common import contracts as c
from egis_common.contracts import ExchangeName

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def venue_time(milliseconds: int) -> datetime:
    """A venue timestamp in milliseconds, exactly (no float on the way)."""
    return EPOCH + timedelta(milliseconds=int(milliseconds))


def _common(event: dict[str, Any], order: dict[str, Any], account: str) -> dict[str, Any]:
    return {
        "exchange": ExchangeName.BINANCE_USDM,
        "exchange_account": account,
        "symbol": order["s"],
        "event_time": venue_time(order.get("T") or event.get("T") or event["E"]),
        "raw": event,
    }


def from_order_trade_update(event: dict[str, Any], account: str) -> list[c.ExchangeFact]:
    """The order fact, plus a trade fact when the event reports an execution."""
    order = event["o"]
    facts: list[c.ExchangeFact] = [
        c.ExchangeOrderFact(
            **_common(event, order, account),
            exchange_order_id=str(order["i"]),
            client_order_id=order["c"],
            status=order["X"],
            side=order["S"],
            order_type=order.get("ot") or order["o"],
            reduce_only=bool(order["R"]),
            orig_qty=order["q"],
            executed_qty=order["z"],
            avg_price=order["ap"],
        )
    ]
    if order["x"] == "TRADE":
        facts.append(
            c.ExchangeTradeFact(
                **_common(event, order, account),
                trade_id=str(order["t"]),
                exchange_order_id=str(order["i"]),
                side=order["S"],
                price=order["L"],
                qty=order["l"],
                realised_pnl_usd=order["rp"],
                commission=order.get("n") or "0",
                commission_asset=order.get("N") or "USDT",
            )
        )
    return facts


def from_account_trade(trade: Any, account: str) -> c.ExchangeTradeFact:
    """A fill from REST (`BinanceExchange.account_trades`, GET /fapi/v1/userTrades): the stream's fallback."""
    return c.ExchangeTradeFact(
        exchange=ExchangeName.BINANCE_USDM,
        exchange_account=account,
        symbol=trade.symbol,
        event_time=trade.traded_at,
        raw=trade.raw,
        trade_id=trade.trade_id,
        exchange_order_id=trade.order_id,
        side=trade.side.value,
        price=trade.price,
        qty=trade.qty,
        realised_pnl_usd=trade.realised_pnl_usd,
        commission=trade.commission,
        commission_asset=trade.commission_asset,
    )


def from_algo_update(event: dict[str, Any], account: str) -> c.ExchangeAlgoOrderFact:
    algo = event["o"]
    return c.ExchangeAlgoOrderFact(
        **_common(event, algo, account),
        algo_id=str(algo["aid"]),
        client_algo_id=algo["caid"],
        status=algo["X"],
        order_type=algo["o"],
        side=algo["S"],
        trigger_price=algo["tp"],
        spawned_order_id=_spawned(algo.get("ai")),
    )


def from_order(body: dict[str, Any], account: str) -> c.ExchangeOrderFact:
    """An order from REST (GET /fapi/v1/order): the stream's fallback after a disconnect."""
    return c.ExchangeOrderFact(
        exchange=ExchangeName.BINANCE_USDM,
        exchange_account=account,
        symbol=body["symbol"],
        # An order never updated may carry only its creation time.
        event_time=venue_time(body.get("updateTime") or body["time"]),
        raw=body,
        exchange_order_id=str(body["orderId"]),
        client_order_id=body["clientOrderId"],
        status=body["status"],
        side=body["side"],
        order_type=body.get("origType") or body["type"],
        reduce_only=bool(body["reduceOnly"]),
        orig_qty=body["origQty"],
        executed_qty=body["executedQty"],
        avg_price=body["avgPrice"],
    )


def from_algo_order(body: dict[str, Any], account: str) -> c.ExchangeAlgoOrderFact:
    """An algo order from REST (GET /fapi/v1/algoOrder, openAlgoOrders): the stream's fallback."""
    return c.ExchangeAlgoOrderFact(
        exchange=ExchangeName.BINANCE_USDM,
        exchange_account=account,
        symbol=body["symbol"],
        event_time=venue_time(body.get("updateTime") or body["createTime"]),
        raw=body,
        algo_id=str(body["algoId"]),
        client_algo_id=body["clientAlgoId"],
        status=body["algoStatus"],
        order_type=body["orderType"],
        side=body["side"],
        trigger_price=body["triggerPrice"],
        spawned_order_id=_spawned(body.get("actualOrderId")),
    )


def _spawned(order_id: Any) -> str | None:
    # The venue writes "no order yet" as "", and has been seen to write 0.
    return str(order_id) if order_id not in (None, "", 0, "0") else None
