"""reconcile-paper-positions: the paper venue's positions table follows what the venue's own fills add up to.

Database only: no venue is called, and the ledger's positions are neither read
nor written. The paper venue lives in this database, and its own module
(`egis_venues.paper.position_repair`) reads its tables and does the
arithmetic; here it runs only when confirmed, and every pair is reported.
"""

from __future__ import annotations

from typing import Any

from egis_common.logs import get_logger
from egis_common.money import format_decimal
from egis_venues.paper import position_repair
from egis_venues.paper.position_repair import Action, Holding, Repair
from sqlalchemy.ext.asyncio import AsyncConnection

log = get_logger(__name__)
# The reconciler knows no bot's exchange account, and paper positions are per account and symbol.
BOT_SCOPE_REFUSED = {"error": "bot_scope_not_supported",
                     "detail": "paper positions are kept per exchange account: run without --bot-id"}


async def reconcile(conn: AsyncConnection, *, confirm: bool) -> list[dict[str, Any]]:
    """One report line per paper account and symbol; the mismatched ones repaired when confirmed."""
    found = await position_repair.examine(conn)
    if confirm:
        await position_repair.apply(conn, found)
    lines = [line(repair, confirm) for repair in found]
    for changed in (entry for entry in lines if entry["changed"]):
        log.info("paper_position_repaired", **changed)
    return lines


def line(repair: Repair, confirm: bool) -> dict[str, Any]:
    would_change = repair.action is not Action.NONE
    return {"account": repair.account, "symbol": repair.symbol, "action": repair.action.value,
            "found": _holding(repair.recorded), "expected": _holding(repair.derived),
            "would_change": would_change, "changed": would_change and confirm,
            "evidence": {"trades": repair.derived.trades, "last_trade_id": _text(repair.derived.last_trade_id)}}


def _holding(holding: Holding | None) -> dict[str, str] | None:
    if holding is None:
        return None
    return {"qty": _amount(holding.qty), "entry_price": _amount(holding.entry_price)}


def _amount(value) -> str:
    return format_decimal(value.normalize())


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)
