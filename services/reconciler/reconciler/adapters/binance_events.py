"""The Binance user data event parsers live with the executor, which holds the stream; the reconciler reuses them."""

from egis_venues.binance.events import (
    from_account_trade,
    from_algo_order,
    from_algo_update,
    from_order,
    from_order_trade_update,
    venue_time,
)

__all__ = [
    "from_account_trade",
    "from_algo_order",
    "from_algo_update",
    "from_order",
    "from_order_trade_update",
    "venue_time",
]
