"""The paper venue's positions as its own fills add them up, and the repair that makes its table follow them.

`paper_positions` is derived state: every booking writes it in the transaction
that records the trades moving it. Folding an account's trades in booking
order through the venue's own `after_fill` says what each position must be;
`from_fills`, `repairs` and `why_not` are pure. The rest is SQL. Every venue transaction
that books starts by writing the accounts table, so holding that table in
SHARE mode keeps every booking out from before the trades are read until the
rows are written: a booking in flight finishes first, the next one waits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.contracts import PaperRepairSkip
from egis_venues.paper import tables
from egis_venues.paper.matching import ZERO, after_fill
from egis_venues.port import OrderSide

Pair = tuple[str, str]  # (account, symbol)


@dataclass(frozen=True)
class Fill:
    trade_id: int
    account: str
    symbol: str
    side: str  # BUY or SELL
    qty: Decimal
    price: Decimal


@dataclass(frozen=True)
class Holding:
    qty: Decimal  # signed: > 0 long, < 0 short, 0 flat
    entry_price: Decimal
    trades: int = 0  # how many fills made it (0 for a row of the table)
    last_trade_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.qty != 0


FLAT = Holding(ZERO, ZERO)


class Action(str, Enum):
    CREATE = "create"  # the fills hold a position, the table holds none
    CLOSE = "close"  # the table holds a position the fills closed, or never opened
    UPDATE = "update"  # both hold one, of another size or entry price
    NONE = "none"


@dataclass(frozen=True)
class Repair:
    account: str
    symbol: str
    action: Action
    recorded: Holding | None  # the row of the table; None when there is none
    derived: Holding  # what the fills add up to


def from_fills(fills: Iterable[Fill]) -> dict[Pair, Holding]:
    """Every (account, symbol) the fills touched, and the position they leave; fills in booking order."""
    held: dict[Pair, Holding] = {}
    for fill in fills:
        before = held.get((fill.account, fill.symbol), FLAT)
        delta = fill.qty if fill.side == OrderSide.BUY.value else -fill.qty
        qty, entry_price, _realised = after_fill(before.qty, before.entry_price, delta, fill.price)
        held[(fill.account, fill.symbol)] = Holding(qty, entry_price, before.trades + 1, fill.trade_id)
    return held


def action(recorded: Holding | None, derived: Holding) -> Action:
    if not derived.is_open:
        return Action.CLOSE if recorded is not None and recorded.is_open else Action.NONE
    if recorded is None or not recorded.is_open:
        return Action.CREATE
    same = (recorded.qty, recorded.entry_price) == (derived.qty, derived.entry_price)
    return Action.NONE if same else Action.UPDATE


def repairs(derived: Mapping[Pair, Holding], recorded: Mapping[Pair, Holding]) -> list[Repair]:
    """One line per (account, symbol) either side knows, in account and symbol order."""
    lines = []
    for account, symbol in sorted(set(derived) | set(recorded)):
        found, expected = recorded.get((account, symbol)), derived.get((account, symbol), FLAT)
        lines.append(Repair(account, symbol, action(found, expected), found, expected))
    return lines


def why_not(current: Repair | None, qty: Decimal, entry_price: Decimal) -> PaperRepairSkip | None:
    """None while a repair asked for still stands: the row differs from the fills, and the fills still add up to
    (`qty`, `entry_price`), the position the repair was asked for; else why it is left alone."""
    if current is None or current.action is Action.NONE:
        return PaperRepairSkip.ALREADY_MATCHING
    if (current.derived.qty, current.derived.entry_price) != (qty, entry_price):
        return PaperRepairSkip.FILLS_MOVED
    return None


async def examine(conn: AsyncConnection) -> list[Repair]:
    """Every position against its fills, with the venue's bookings held off until the caller commits."""
    await conn.execute(sa.text(f"LOCK TABLE {tables.accounts.fullname} IN SHARE MODE"))
    return repairs(from_fills(await _fills(conn)), await _recorded(conn))


async def apply(conn: AsyncConnection, chosen: Iterable[Repair]) -> None:
    """Rows created, closed (flat, as the venue leaves a closed position) or updated to what the fills say."""
    await tables.save_positions(
        conn,
        {(r.account, r.symbol): (r.derived.qty, r.derived.entry_price) for r in chosen if r.action is not Action.NONE},
    )


async def _fills(conn: AsyncConnection) -> list[Fill]:
    t = tables.trades.c
    query = sa.select(t.trade_id, t.account, t.symbol, t.side, t.qty, t.price).order_by(t.trade_id)
    return [Fill(**row._mapping) for row in (await conn.execute(query)).all()]


async def _recorded(conn: AsyncConnection) -> dict[Pair, Holding]:
    p = tables.positions.c
    rows = (await conn.execute(sa.select(p.account, p.symbol, p.qty, p.entry_price))).all()
    return {(row.account, row.symbol): Holding(row.qty, row.entry_price) for row in rows}
