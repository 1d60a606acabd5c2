"""reconcile-paper-positions' reading: the paper venue's positions table against what its own fills add up to.

The venue's tables are in the executor's schema: the reconciler reads them
(`egis_venues.paper.position_repair`, a query of the venue as Binance would be
asked), and only the executor writes them. Each account and symbol becomes one
line of the report; the command and the completed report are in `domain`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.money import format_decimal
from egis_venues.paper import position_repair
from egis_venues.paper.position_repair import Action, Holding, Repair


async def examine(conn: AsyncConnection) -> list[dict[str, Any]]:
    """One report line per paper account and symbol; nothing is changed."""
    return [line(repair) for repair in await position_repair.examine(conn)]


def line(repair: Repair) -> dict[str, Any]:
    return {
        "account": repair.account,
        "symbol": repair.symbol,
        "action": repair.action.value,
        "found": _holding(repair.recorded),
        "expected": _holding(repair.derived),
        "would_change": repair.action is not Action.NONE,
        "changed": False,
        "evidence": {"trades": repair.derived.trades, "last_trade_id": _text(repair.derived.last_trade_id)},
    }


def _holding(holding: Holding | None) -> dict[str, str] | None:
    if holding is None:
        return None
    return {"qty": _amount(holding.qty), "entry_price": _amount(holding.entry_price)}


def _amount(value) -> str:
    return format_decimal(value.normalize())


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)
