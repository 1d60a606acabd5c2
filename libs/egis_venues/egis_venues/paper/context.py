"""What booking and the stops need of the paper venue, below both: its rules, its outbox, and who hears of
algo orders that ended. `PaperExchange` builds one; nothing here imports the modules that use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.outbox import Outbox
from egis_venues.paper.matching import VenueConfig
from egis_venues.paper.state import VenueState
from egis_venues.port import SymbolRules
from egis_venues.settings import PaperSettings

NO_MARK_PRICE = "no_mark_price"
# Called in the venue's transaction with the algo order facts it announces: a service that keeps its own record
# of the stops it placed marks the ended ones there, as Binance's user data stream lets it.
AlgoFactsHook = Callable[[AsyncConnection, Sequence[c.Message]], Awaitable[None]]


class UnknownSymbol(LookupError):
    pass


@dataclass(frozen=True)
class VenueContext:
    settings: PaperSettings
    outbox: Outbox
    on_algo_facts: AlgoFactsHook | None = None

    @property
    def config(self) -> VenueConfig:
        s = self.settings
        return VenueConfig(s.taker_fee_rate, s.slippage_bps, s.fill_ratio, s.leverage)

    def rules(self, symbol: str) -> SymbolRules:
        spec = self.settings.symbols.get(symbol, self.settings.other_symbols)
        if spec is None:
            raise UnknownSymbol(symbol)
        return SymbolRules(symbol, spec.step_size, spec.tick_size, spec.min_qty, spec.min_notional_usd)

    async def state(self, conn: AsyncConnection, pairs: list[tuple[str, str]]) -> VenueState:
        """The accounts and positions of `pairs`, locked; an account first seen gets its opening balance."""
        s = self.settings
        return await VenueState.load(
            conn, pairs, lambda account: s.balances_usd.get(account, s.default_balance_usd), s.leverage
        )

    async def announce(self, conn: AsyncConnection, *announced: c.Message) -> None:
        """The venue's algo order facts, as its user data stream would tell them, and to the hook in the same
        transaction."""
        await self.outbox.add(conn, *announced)
        if self.on_algo_facts is not None:
            await self.on_algo_facts(conn, announced)
