"""The paper exchange: a simulated venue in tables of the executor's schema (`PaperExchange`).

Its modules, lowest first: `matching` (pure rules), `tables` (SQL), `facts`,
`state`, `context` (what booking and stops share), `recording`, `stops`,
`booking`, and `venue` on top; `lookup` and `position_repair` read the
tables for other services. None imports one above it.
"""

from egis_venues.paper.context import NO_MARK_PRICE
from egis_venues.paper.venue import NoMarkPrice, PaperExchange, UnknownSymbol

__all__ = ["NO_MARK_PRICE", "NoMarkPrice", "PaperExchange", "UnknownSymbol"]
