"""RepairPaperPositions: the reconciler found rows of the paper venue's positions table that no longer follow
the venue's fills; the table is in our schema, so we write it, and answer with what we wrote.

One transaction per command holds the venue's bookings off while it looks again (`position_repair.examine`):
a position is written only if its row still differs and the fills still say what the reconciler saw. A
redelivered or repeated command finds its rows already matching, and writes nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.logs import get_logger
from egis_common.outbox import Outbox
from egis_venues.paper import position_repair
from egis_venues.paper.position_repair import Repair

log = get_logger(__name__)


async def repair_paper_positions(
    conn: AsyncConnection, outbox: Outbox, commands: list[c.RepairPaperPositions]
) -> list[c.PaperPositionsRepaired]:
    answers = [await _repaired(conn, command) for command in commands]
    await outbox.add(conn, *answers)
    return answers


async def _repaired(conn: AsyncConnection, command: c.RepairPaperPositions) -> c.PaperPositionsRepaired:
    current = {(r.account, r.symbol): r for r in await position_repair.examine(conn)}
    chosen: list[Repair] = []
    skipped: list[c.PaperPositionSkipped] = []
    for wanted in command.repairs:
        repair = current.get((wanted.account, wanted.symbol))
        why = position_repair.why_not(repair, wanted.qty, wanted.entry_price)
        if why is None and repair is not None:
            chosen.append(repair)
        else:
            skipped.append(c.PaperPositionSkipped(account=wanted.account, symbol=wanted.symbol, reason=why))
    await position_repair.apply(conn, chosen)
    changed = [
        c.PaperPosition(account=r.account, symbol=r.symbol, qty=r.derived.qty, entry_price=r.derived.entry_price)
        for r in chosen
    ]
    log.info(
        "paper_positions_repaired",
        request_id=str(command.request_id),
        changed=len(changed),
        skipped=[s.model_dump(mode="json") for s in skipped],
    )
    return c.PaperPositionsRepaired(request_id=command.request_id, changed=changed, skipped=skipped)
