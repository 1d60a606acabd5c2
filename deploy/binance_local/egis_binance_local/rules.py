"""The symbol filters an order must pass, as pure checks that raise `BinanceError`.

The order of the checks follows the venue's: precision first, then the grid,
then the limits, then the notional.
"""

from __future__ import annotations

import re
from decimal import Decimal

from egis_binance_local import errors
from egis_binance_local.money import ZERO, on_grid, render_plain, significant_places
from egis_binance_local.symbols import SymbolSpec

# The venue's own pattern for client order ids (and client algo ids).
CLIENT_ID_PATTERN = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
CLIENT_ID_LEGAL = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"


def check_quantity(spec: SymbolSpec, quantity: Decimal, *, market: bool) -> None:
    if quantity <= ZERO:
        raise errors.quantity_not_positive()
    if significant_places(quantity) > spec.quantity_precision:
        raise errors.precision_over_maximum()
    if not on_grid(quantity, spec.step_size):
        raise errors.quantity_off_step()
    if quantity < spec.min_qty:
        raise errors.quantity_below_minimum()
    if quantity > (spec.market_max_qty if market else spec.max_qty):
        raise errors.quantity_above_maximum()


def check_price(spec: SymbolSpec, price: Decimal) -> None:
    if price <= ZERO:
        raise errors.price_not_positive()
    if significant_places(price) > spec.price_precision:
        raise errors.precision_over_maximum()
    if not on_grid(price, spec.tick_size):
        raise errors.price_off_tick()


def check_notional(spec: SymbolSpec, quantity: Decimal, price: Decimal, *, reduce_only: bool) -> None:
    # Reduce-only orders are exempt: closing a small remainder must stay possible.
    if not reduce_only and quantity * price < spec.min_notional:
        raise errors.notional_too_small(render_plain(spec.min_notional))


def check_client_id(value: str, name: str) -> None:
    if len(value) > 36:
        raise errors.client_id_too_long()
    if not CLIENT_ID_PATTERN.fullmatch(value):
        raise errors.illegal_characters(name, CLIENT_ID_LEGAL)
