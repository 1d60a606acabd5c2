import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from egis_common.money import (
    MoneyFormatError,
    PositiveUsd,
    Price,
    Quantity,
    SignedUsd,
    Usd,
    format_decimal,
    parse_decimal,
)


class Order(BaseModel):
    size_usd: Usd
    qty: Quantity = Decimal("0")
    price: Price = Decimal("1")
    pnl_usd: SignedUsd = Decimal("0")
    requested_usd: PositiveUsd = Decimal("1")


@pytest.mark.parametrize(
    "text, expected",
    [("10", Decimal("10")), ("0.003", Decimal("0.003")), ("2942.67", Decimal("2942.67")), ("0", Decimal("0"))],
)
def test_plain_decimal_strings_parse_exactly(text, expected):
    assert parse_decimal(text) == expected
    assert Order.model_validate_json(json.dumps({"size_usd": text})).size_usd == expected


@pytest.mark.parametrize(
    "raw_json, why",
    [
        ('{"size_usd": "1e3"}', "exponent"),
        ('{"size_usd": "1E3"}', "exponent"),
        ('{"size_usd": "NaN"}', "NaN"),
        ('{"size_usd": "nan"}', "NaN"),
        ('{"size_usd": "Infinity"}', "infinity"),
        ('{"size_usd": "-Infinity"}', "infinity"),
        ('{"size_usd": 0.1}', "JSON float"),
        ('{"size_usd": 10}', "JSON integer"),
        ('{"size_usd": true}', "boolean"),
        ('{"size_usd": "-5"}', "negative size"),
        ('{"size_usd": " 5"}', "whitespace"),
        ('{"size_usd": "5."}', "dangling point"),
        ('{"size_usd": ".5"}', "no leading digit"),
        ('{"size_usd": "0x10"}', "hex"),
        ('{"size_usd": "1_000"}', "underscore"),
        ('{"size_usd": "007"}', "leading zeros"),
        ('{"size_usd": "' + "9" * 30 + '"}', "too many digits"),
        ('{"size_usd": null}', "null"),
    ],
)
def test_wire_codec_rejects_tricks_with_a_clear_error(raw_json, why):
    with pytest.raises(ValidationError) as caught:
        Order.model_validate_json(raw_json)
    assert "size_usd" in str(caught.value), why


def test_error_message_says_what_is_expected():
    with pytest.raises(MoneyFormatError, match="decimal string"):
        parse_decimal(0.1)
    with pytest.raises(MoneyFormatError, match="no exponent"):
        parse_decimal("1e3")


def test_positive_types_refuse_zero_and_signed_accepts_negative():
    with pytest.raises(ValidationError):
        Order(size_usd="1", price="0")
    with pytest.raises(ValidationError):
        Order(size_usd="1", requested_usd="0")
    assert Order(size_usd="0", pnl_usd="-1.25").pnl_usd == Decimal("-1.25")


def test_decimal_instances_are_accepted_but_must_be_finite():
    assert Order(size_usd=Decimal("8.82801")).size_usd == Decimal("8.82801")
    with pytest.raises(ValidationError):
        Order(size_usd=Decimal("NaN"))


def test_serialises_as_plain_strings_never_exponents():
    order = Order(size_usd=Decimal("1E+3"), qty=Decimal("0.00000001"))
    dumped = json.loads(order.model_dump_json())
    assert dumped["size_usd"] == "1000"
    assert dumped["qty"] == "0.00000001"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-(10**12), max_value=10**12))
def test_format_then_parse_round_trips(value):
    assert parse_decimal(format_decimal(value)) == value
