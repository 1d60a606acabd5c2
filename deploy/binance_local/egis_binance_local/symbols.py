"""Tradable symbols: their grids and limits, and the `exchangeInfo` they publish."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from egis_binance_local.money import places, render_as_written


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    base_asset: str
    tick_size: Decimal  # written with the venue's price precision: "0.10" renders prices as "60000.00"
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    mark_price: Decimal  # where the mark price starts
    quote_asset: str = "USDT"
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")

    @property
    def price_precision(self) -> int:
        return places(self.tick_size)

    @property
    def quantity_precision(self) -> int:
        return places(self.step_size)


DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    SymbolSpec(
        "BTCUSDT",
        "BTC",
        Decimal("0.10"),
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("1000"),
        Decimal("120"),
        Decimal("100"),
        Decimal("60000.00"),
    ),
    SymbolSpec(
        "ETHUSDT",
        "ETH",
        Decimal("0.01"),
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("10000"),
        Decimal("2000"),
        Decimal("20"),
        Decimal("3000.00"),
    ),
    # Minimum notional 5: small orders (a $10 bot) work on these two.
    SymbolSpec(
        "SOLUSDT",
        "SOL",
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("1000000"),
        Decimal("5000"),
        Decimal("5"),
        Decimal("150.00"),
    ),
    SymbolSpec(
        "DOGEUSDT",
        "DOGE",
        Decimal("0.00001"),
        Decimal("1"),
        Decimal("1"),
        Decimal("50000000"),
        Decimal("30000000"),
        Decimal("5"),
        Decimal("0.15000"),
        min_price=Decimal("0.00001"),
        max_price=Decimal("30"),
    ),
)


def exchange_info(specs: list[SymbolSpec], server_time_ms: int, weight_limit: int) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [_symbol_info(spec) for spec in specs],
    }


def _symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.quote_asset,
        "pricePrecision": spec.price_precision,
        "quantityPrecision": spec.quantity_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": _filters(spec),
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


def _filters(spec: SymbolSpec) -> list[dict[str, Any]]:
    step, min_qty = render_as_written(spec.step_size), render_as_written(spec.min_qty)
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": render_as_written(spec.min_price),
            "maxPrice": render_as_written(spec.max_price),
            "tickSize": render_as_written(spec.tick_size),
        },
        {"filterType": "LOT_SIZE", "stepSize": step, "minQty": min_qty, "maxQty": render_as_written(spec.max_qty)},
        {
            "filterType": "MARKET_LOT_SIZE",
            "stepSize": step,
            "minQty": min_qty,
            "maxQty": render_as_written(spec.market_max_qty),
        },
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": render_as_written(spec.min_notional)},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
    ]
