"""JSON shapes of positions, account and balance (v2 and v3 differ in fields and in which symbols they list)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from egis_binance_local.margin import AccountFigures, PositionFigures
from egis_binance_local.model import Account
from egis_binance_local.money import ZERO, render_plain, render_usdt, to_places
from egis_binance_local.symbols import SymbolSpec

MAX_NOTIONAL = "1000000"


def break_even_price(figures: PositionFigures, taker_rate: Decimal) -> Decimal:
    # The price at which closing pays back the opening fee, as the venue computes it.
    amount, entry = figures.position.amount, figures.position.entry_price
    if amount == ZERO:
        return ZERO
    return entry * (1 + taker_rate) if amount > ZERO else entry * (1 - taker_rate)


def _side_notional(account: Account, symbol: str, side: str) -> str:
    total = sum((o.remaining_qty * o.price for o in account.open_orders(symbol) if o.side == side), ZERO)
    return render_plain(total)


def position_risk_v3(account: Account, f: PositionFigures, spec: SymbolSpec, taker_rate: Decimal) -> dict[str, Any]:
    p = f.position
    return {
        "symbol": p.symbol,
        "positionSide": "BOTH",
        "positionAmt": to_places(p.amount, spec.quantity_precision),
        "entryPrice": render_plain(p.entry_price),
        "breakEvenPrice": render_plain(break_even_price(f, taker_rate)),
        "markPrice": render_usdt(f.mark_price),
        "unRealizedProfit": render_usdt(f.unrealized),
        "liquidationPrice": "0",  # no liquidation engine here
        "isolatedMargin": "0",
        "notional": render_usdt(f.notional),
        "marginAsset": "USDT",
        "isolatedWallet": "0",
        "initialMargin": render_usdt(f.initial_margin + f.open_order_margin),
        "maintMargin": render_usdt(f.maint_margin),
        "positionInitialMargin": render_usdt(f.initial_margin),
        "openOrderInitialMargin": render_usdt(f.open_order_margin),
        "adl": 0 if p.amount == ZERO else 1,
        "bidNotional": _side_notional(account, p.symbol, "BUY"),
        "askNotional": _side_notional(account, p.symbol, "SELL"),
        "updateTime": p.update_ms,
    }


def position_risk_v2(f: PositionFigures, spec: SymbolSpec, taker_rate: Decimal) -> dict[str, Any]:
    p = f.position
    return {
        "symbol": p.symbol,
        "positionAmt": to_places(p.amount, spec.quantity_precision),
        "entryPrice": render_plain(p.entry_price),
        "breakEvenPrice": render_plain(break_even_price(f, taker_rate)),
        "markPrice": render_usdt(f.mark_price),
        "unRealizedProfit": render_usdt(f.unrealized),
        "liquidationPrice": "0",
        "leverage": str(f.leverage),
        "maxNotionalValue": MAX_NOTIONAL,
        "marginType": "cross",
        "isolatedMargin": "0.00000000",
        "isAutoAddMargin": "false",
        "positionSide": "BOTH",
        "notional": render_usdt(f.notional),
        "isolatedWallet": "0",
        "updateTime": p.update_ms,
    }


def account_position_v3(f: PositionFigures, spec: SymbolSpec) -> dict[str, Any]:
    p = f.position
    return {
        "symbol": p.symbol,
        "positionSide": "BOTH",
        "positionAmt": to_places(p.amount, spec.quantity_precision),
        "unrealizedProfit": render_usdt(f.unrealized),
        "isolatedMargin": "0",
        "notional": render_usdt(f.notional),
        "isolatedWallet": "0",
        "initialMargin": render_usdt(f.initial_margin + f.open_order_margin),
        "maintMargin": render_usdt(f.maint_margin),
        "updateTime": p.update_ms,
    }


def account_position_v2(f: PositionFigures, spec: SymbolSpec, taker_rate: Decimal) -> dict[str, Any]:
    p = f.position
    return {
        "symbol": p.symbol,
        "initialMargin": render_usdt(f.initial_margin + f.open_order_margin),
        "maintMargin": render_usdt(f.maint_margin),
        "unrealizedProfit": render_usdt(f.unrealized),
        "positionInitialMargin": render_usdt(f.initial_margin),
        "openOrderInitialMargin": render_usdt(f.open_order_margin),
        "leverage": str(f.leverage),
        "isolated": False,
        "entryPrice": render_plain(p.entry_price),
        "breakEvenPrice": render_plain(break_even_price(f, taker_rate)),
        "maxNotional": MAX_NOTIONAL,
        "bidNotional": "0",
        "askNotional": "0",
        "positionSide": "BOTH",
        "positionAmt": to_places(p.amount, spec.quantity_precision),
        "updateTime": p.update_ms,
    }


def totals(a: AccountFigures) -> dict[str, Any]:
    return {
        "totalInitialMargin": render_usdt(a.initial_margin),
        "totalMaintMargin": render_usdt(a.maint_margin),
        "totalWalletBalance": render_usdt(a.wallet),
        "totalUnrealizedProfit": render_usdt(a.unrealized),
        "totalMarginBalance": render_usdt(a.margin_balance),
        "totalPositionInitialMargin": render_usdt(a.position_margin),
        "totalOpenOrderInitialMargin": render_usdt(a.open_order_margin),
        "totalCrossWalletBalance": render_usdt(a.wallet),
        "totalCrossUnPnl": render_usdt(a.unrealized),
        "availableBalance": render_usdt(a.available),
        "maxWithdrawAmount": render_usdt(a.max_withdraw),
    }


def usdt_asset(a: AccountFigures, update_ms: int, *, v2: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "asset": "USDT",
        "walletBalance": render_usdt(a.wallet),
        "unrealizedProfit": render_usdt(a.unrealized),
        "marginBalance": render_usdt(a.margin_balance),
        "maintMargin": render_usdt(a.maint_margin),
        "initialMargin": render_usdt(a.initial_margin),
        "positionInitialMargin": render_usdt(a.position_margin),
        "openOrderInitialMargin": render_usdt(a.open_order_margin),
        "crossWalletBalance": render_usdt(a.wallet),
        "crossUnPnl": render_usdt(a.unrealized),
        "availableBalance": render_usdt(a.available),
        "maxWithdrawAmount": render_usdt(a.max_withdraw),
    }
    if v2:
        shape["marginAvailable"] = True
    shape["updateTime"] = update_ms
    return shape


def account_v2_header() -> dict[str, Any]:
    return {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "tradeGroupId": -1,
        "updateTime": 0,
        "multiAssetsMargin": False,
    }


def balance_entry(account: Account, a: AccountFigures) -> dict[str, Any]:
    return {
        "accountAlias": hashlib.sha256(account.api_key.encode()).hexdigest()[:8],
        "asset": "USDT",
        "balance": render_usdt(a.wallet),
        "crossWalletBalance": render_usdt(a.wallet),
        "crossUnPnl": render_usdt(a.unrealized),
        "availableBalance": render_usdt(a.available),
        "maxWithdrawAmount": render_usdt(a.max_withdraw),
        "marginAvailable": True,
        "updateTime": account.update_ms,
    }
