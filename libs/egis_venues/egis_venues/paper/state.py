"""The accounts and positions a batch of orders trades against, loaded and locked for the venue's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_venues.paper import tables
from egis_venues.paper.matching import ZERO, Book, Execution

Pair = tuple[str, str]  # (account, symbol)


@dataclass
class VenueState:
    leverage: Decimal
    wallets_usd: dict[str, Decimal]
    used_margin_usd: dict[str, Decimal]
    positions: dict[Pair, tuple[Decimal, Decimal]]  # signed qty, entry price
    changed_positions: dict[Pair, tuple[Decimal, Decimal]] = field(default_factory=dict)
    changed_wallets: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    async def load(
        cls, conn: AsyncConnection, pairs: Iterable[Pair], opening_usd: Callable[[str], Decimal], leverage: Decimal
    ) -> VenueState:
        """Accounts first, in account order, then positions: every venue transaction locks in this order."""
        pairs = set(pairs)
        wallets = await tables.lock_accounts(conn, {account: opening_usd(account) for account, _ in pairs})
        held = await tables.positions_of(conn, pairs)
        used = await tables.used_margins(conn, wallets, leverage)
        return cls(leverage, wallets, used, held)

    def book(self, account: str, symbol: str) -> Book:
        qty, entry = self.positions.get((account, symbol), (ZERO, ZERO))
        return Book(qty, entry, self.wallets_usd[account], self.used_margin_usd.get(account, ZERO))

    def apply(self, account: str, symbol: str, execution: Execution) -> None:
        """What the next order of the batch on the same account sees."""
        qty, entry = self.positions.get((account, symbol), (ZERO, ZERO))
        margin_delta = (abs(execution.position_qty) * execution.entry_price - abs(qty) * entry) / self.leverage
        self.used_margin_usd[account] = self.used_margin_usd.get(account, ZERO) + margin_delta
        self.positions[(account, symbol)] = self.changed_positions[(account, symbol)] = (
            execution.position_qty,
            execution.entry_price,
        )
        self.wallets_usd[account] = self.changed_wallets[account] = execution.wallet_usd

    async def save(self, conn: AsyncConnection) -> None:
        await tables.save_positions(conn, self.changed_positions)
        await tables.set_wallets(conn, self.changed_wallets)

    def flat(self) -> list[Pair]:
        return [pair for pair, (qty, _) in self.changed_positions.items() if qty == 0]
