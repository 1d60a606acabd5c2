"""Money, quantities and prices: `Decimal` end to end, decimal strings on the wire.

The wire codec accepts only plain decimal strings such as "10", "0.003" or
"-1.5". A JSON number is refused even when it looks harmless (0.1 has already
been through a float by the time it is a JSON number), and so are NaN,
infinity and exponent notation ("1e3"), which would let a tiny string stand
for an absurd amount.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# At most 20 digits before and 18 after the point: wide enough for any USD
# amount, quantity or price, small enough that no string expands into work.
_DECIMAL_PATTERN = re.compile(r"-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,18})?")
_MAX_TEXT_LENGTH = 40


class MoneyFormatError(ValueError):
    """A value is not an acceptable decimal for money, sizes or prices."""


def parse_decimal(value: Any) -> Decimal:
    """Parse a wire value into a finite `Decimal`, accepting decimal strings only."""
    if isinstance(value, Decimal):
        return _check_finite(value)
    if isinstance(value, bool) or isinstance(value, (int, float)):
        raise MoneyFormatError(f'expected a decimal string such as "10.5", got a JSON number {value!r}')
    if not isinstance(value, str):
        raise MoneyFormatError(f"expected a decimal string, got {type(value).__name__}")
    if len(value) > _MAX_TEXT_LENGTH or not _DECIMAL_PATTERN.fullmatch(value):
        raise MoneyFormatError(
            f"{value[:_MAX_TEXT_LENGTH]!r} is not a plain decimal string "
            "(digits with an optional sign and point; no exponent, NaN or infinity)"
        )
    try:
        return Decimal(value)
    except InvalidOperation as error:  # unreachable after the pattern, kept as a guard
        raise MoneyFormatError(f"{value!r} is not a decimal") from error


def _check_finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise MoneyFormatError(f"{value} is not a finite decimal")
    return value


def format_decimal(value: Decimal) -> str:
    """Render a `Decimal` as a plain string that `parse_decimal` accepts back."""
    _check_finite(value)
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def _non_negative(value: Any) -> Decimal:
    parsed = parse_decimal(value)
    if parsed < 0:
        raise MoneyFormatError(f"{format_decimal(parsed)} is negative; a size cannot be")
    return parsed


def _positive(value: Any) -> Decimal:
    parsed = parse_decimal(value)
    if parsed <= 0:
        raise MoneyFormatError(f"{format_decimal(parsed)} must be greater than zero")
    return parsed


_AS_STRING = PlainSerializer(format_decimal, return_type=str, when_used="always")
# JSON Schema patterns match anywhere in the string: anchor it.
_SCHEMA = WithJsonSchema({"type": "string", "pattern": f"^{_DECIMAL_PATTERN.pattern}$"})

# Signed amounts: realised PnL, budget deltas.
SignedUsd = Annotated[Decimal, BeforeValidator(parse_decimal), _AS_STRING, _SCHEMA]
# Sizes, fees, budgets: zero allowed, negative refused.
Usd = Annotated[Decimal, BeforeValidator(_non_negative), _AS_STRING, _SCHEMA]
Quantity = Annotated[Decimal, BeforeValidator(_non_negative), _AS_STRING, _SCHEMA]
# Prices and requested sizes must be strictly positive.
Price = Annotated[Decimal, BeforeValidator(_positive), _AS_STRING, _SCHEMA]
PositiveUsd = Annotated[Decimal, BeforeValidator(_positive), _AS_STRING, _SCHEMA]
# A percentage of a price (a bot's take-profit or stop-loss distance from the entry): strictly positive.
Percent = Annotated[Decimal, BeforeValidator(_positive), _AS_STRING, _SCHEMA]
