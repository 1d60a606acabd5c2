"""Take-profit and stop-loss for a filled open: recorded as `placing`, placed, then recorded again
together with a ProtectiveOrdersPlaced naming the ones the venue accepted.

They go out after the entry's outcome is committed. A crash in between
leaves `placing` rows behind: visible, never re-sent blindly (a venue keeps
client algo ids unique only among open algo orders).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from egis_common.contracts import ExchangeName
from egis_common.ids import OrderPurpose
from egis_common.logs import get_logger
from egis_common.outbox import Outbox, UnitOfWork
from executor import domain
from executor.adapters import repository as repo
from executor.domain import Intent
from egis_venues.port import ExchangePort, Rejected, StopOrder, StopPlaced, SymbolRules, Unknown

log = get_logger(__name__)
PURPOSES = {OrderPurpose.TAKE_PROFIT: "take_profit", OrderPurpose.STOP_LOSS: "stop_loss"}


async def place_stops(uow: UnitOfWork, outbox: Outbox, exchanges: Mapping[ExchangeName, ExchangePort],
                      filled: list[tuple[Intent, SymbolRules | None]]) -> None:
    """The ids of the stops placed reach the ledger (ProtectiveOrdersPlaced) in the transaction that records them."""
    wanted = [(intent, purpose, order) for intent, rules in filled if rules is not None
              for purpose, order in domain.stop_orders(intent, rules)]
    if not wanted:
        return
    async with uow.begin() as conn:
        await repo.insert_stops(conn, [_row(intent, purpose, order) for intent, purpose, order in wanted])
    results = await asyncio.gather(*(_place(exchanges[intent.exchange], order) for intent, _, order in wanted))
    async with uow.begin() as conn:
        for (_, _, order), result in zip(wanted, results, strict=True):
            await repo.stop_placed(conn, order.client_algo_id, **_outcome(result))
        placed = [stop for stop, result in zip(wanted, results, strict=True) if isinstance(result, StopPlaced)]
        await outbox.add(conn, *domain.protective_orders_placed(placed))


async def _place(port: ExchangePort, order: StopOrder) -> StopPlaced | Rejected | Unknown:
    try:
        return await port.place_stop(order)
    except Exception as error:  # an adapter must not raise; if one does, the outcome is unknown
        log.exception("stop_adapter_raised", client_algo_id=order.client_algo_id)
        return Unknown(f"adapter_error: {type(error).__name__}", {"error": str(error)[:500]})


def _row(intent: Intent, purpose: OrderPurpose, order: StopOrder) -> dict:
    return {
        "client_algo_id": order.client_algo_id, "intent_id": intent.intent_id, "purpose": PURPOSES[purpose],
        "kind": order.kind, "side": order.side.value, "trigger_price": order.trigger_price, "status": "placing",
    }


def _outcome(result: StopPlaced | Rejected | Unknown) -> dict:
    if isinstance(result, StopPlaced):
        return {"status": "placed", "algo_id": result.algo_id}
    if isinstance(result, Rejected):
        return {"status": "rejected", "exchange_code": result.code, "detail": result.message[:1000]}
    return {"status": "unknown", "detail": result.cause[:1000]}
