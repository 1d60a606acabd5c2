"""Decimal arithmetic and Binance-style rendering; no float anywhere.

Binance answers prices, quantities and amounts as JSON strings. Prices and
quantities keep the symbol's grid precision ("60000.00", "0.200"), USDT
amounts keep 8 decimals ("0.14626840"), like the real venue.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
# USDT is booked to 8 decimals on Binance (wallet, fees, realised PnL).
QUOTE_STEP = Decimal("0.00000001")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")


def places(grid: Decimal) -> int:
    """Decimal places of a grid as written: "0.10" has 2, "0.001" has 3, "1" has 0."""
    return max(0, -int(grid.as_tuple().exponent))


def significant_places(value: Decimal) -> int:
    """Decimal places a value really needs: "0.0010" needs 3."""
    return max(0, -int(value.normalize().as_tuple().exponent))


def to_places(value: Decimal, count: int) -> str:
    """Render with exactly `count` decimals, never "-0.00" and never exponent notation."""
    quantized = value.quantize(Decimal(1).scaleb(-count), rounding=ROUND_HALF_UP)
    if quantized.is_zero():
        quantized = quantized.copy_abs()
    return format(quantized, "f")


def on_grid(value: Decimal, grid: Decimal) -> bool:
    return value % grid == 0


def floor_to(value: Decimal, grid: Decimal) -> Decimal:
    return (value / grid).to_integral_value(rounding=ROUND_FLOOR) * grid


def ceil_to(value: Decimal, grid: Decimal) -> Decimal:
    return (value / grid).to_integral_value(rounding=ROUND_CEILING) * grid


def usdt(value: Decimal) -> Decimal:
    """Round an amount of USDT the way the ledger books it (8 decimals, half up)."""
    return value.quantize(QUOTE_STEP, rounding=ROUND_HALF_UP)


def render_usdt(value: Decimal) -> str:
    return to_places(value, 8)


def render_as_written(value: Decimal) -> str:
    """Configured grids keep their written form: a tick of "0.10" stays "0.10", as the venue shows it."""
    return format(value, "f")


def render_plain(value: Decimal) -> str:
    """Shortest exact form ("100", "0.05"): used for configured limits and rates."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def to_decimal(value: Decimal | str) -> Decimal:
    """Control-plane input: a Decimal or a plain decimal string; a float is refused, never rounded."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value):
        result = Decimal(value)
    else:
        raise ValueError(f'expected a Decimal or a plain decimal string such as "10.5", got {value!r}')
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")
    return result
