"""The paper exchange: a simulated venue in the executor's own tables (`PaperExchange`)."""

from executor.adapters.paper.booking import NO_MARK_PRICE
from executor.adapters.paper.venue import NoMarkPrice, PaperExchange, UnknownSymbol

__all__ = ["NO_MARK_PRICE", "NoMarkPrice", "PaperExchange", "UnknownSymbol"]
