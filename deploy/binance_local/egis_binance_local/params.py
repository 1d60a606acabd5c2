"""Typed reads of request parameters, with the venue's errors for bad input.

Parameters arrive as strings. Decimals must be plain decimal strings (no
exponent, no NaN), exactly as Binance demands; a float that leaked into a
client shows up here as too many decimals, not as a silent rounding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from egis_binance_local import errors

_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_DECIMAL_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_INTEGER_LEGAL = r"^[0-9]{1,20}$"

Params = Mapping[str, str]


def text(params: Params, name: str) -> str | None:
    value = params.get(name)
    return value if value else None


def required(params: Params, name: str) -> str:
    value = text(params, name)
    if value is None:
        raise errors.mandatory(name)
    return value


def decimal(params: Params, name: str) -> Decimal | None:
    value = text(params, name)
    if value is None:
        return None
    if not _DECIMAL.fullmatch(value):
        raise errors.illegal_characters(name, _DECIMAL_LEGAL)
    return Decimal(value)


def required_decimal(params: Params, name: str) -> Decimal:
    value = decimal(params, name)
    if value is None:
        raise errors.mandatory(name)
    return value


def integer(params: Params, name: str) -> int | None:
    value = text(params, name)
    if value is None:
        return None
    if not _INTEGER.fullmatch(value):
        raise errors.illegal_characters(name, _INTEGER_LEGAL)
    return int(value)


def boolean(params: Params, name: str) -> bool | None:
    # python-binance sends Python's str(True) == "True"; the venue accepts any case.
    value = text(params, name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise errors.illegal_characters(name, "true, false")
    return value.lower() == "true"


def choice(params: Params, name: str, allowed: tuple[str, ...], error: errors.BinanceError) -> str:
    value = required(params, name)
    if value not in allowed:
        raise error
    return value


def first_present(params: Params, *names: str) -> str | None:
    """The first of several spellings: the algo endpoints document `algoid` and clients send `algoId`."""
    for name in names:
        if text(params, name) is not None:
            return name
    return None
