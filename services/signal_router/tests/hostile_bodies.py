"""Hypothesis strategies for webhook requests that must all be refused.

Most start from a body that would be accepted, with the real bot's secret,
and break it in one to three ways that each make it unacceptable, so the
checks past authentication are reached; the rest are arbitrary bytes and
arbitrary JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from router_support import signal_body

from egis_common.money import MoneyFormatError, parse_decimal
from signal_router.domain import ACTION_WORDS

REQUIRED = ("signal_key", "secret", "action", "symbol")
STRINGS = (*REQUIRED, "signal_id")
MONEY = ("size_usd", "take_profit_price", "stop_loss_price")
FIELDS = (*STRINGS, *MONEY, "timestamp")
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
NON_STRINGS = st.booleans() | st.integers() | st.floats() | st.lists(JSON_SCALARS, max_size=3)
CONTROL = st.characters(codec=None, categories=["Cc", "Cs"])


def _positive_decimal(text: str) -> bool:
    try:
        return parse_decimal(text) > 0
    except MoneyFormatError:
        return False


def _known_action(text: str) -> bool:
    return text.strip().lower().replace("-", "_").replace(" ", "_") in ACTION_WORDS


def _allowed_symbol(text: str, symbols: frozenset[str]) -> bool:
    return text.strip().upper().removesuffix(".P") in symbols


def _stamp(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _breakages(symbols: frozenset[str], max_body: int) -> st.SearchStrategy[Any]:
    """Each draw is a function that makes a valid body unacceptable."""

    def put(field: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return values.map(lambda value: lambda body: {**body, field: value})

    bad_decimal = (st.text(max_size=25) | st.decimals().map(str)).filter(lambda t: not _positive_decimal(t))
    return st.one_of(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in FIELDS).flatmap(lambda k: put(k, JSON)),
        st.sampled_from(REQUIRED).map(lambda f: lambda body: {k: v for k, v in body.items() if k != f}),
        st.sampled_from(STRINGS).flatmap(lambda f: put(f, NON_STRINGS)),
        st.sampled_from(REQUIRED).flatmap(lambda f: put(f, st.none())),
        st.sampled_from(STRINGS).flatmap(lambda f: put(f, st.tuples(st.text(max_size=5), CONTROL).map("".join))),
        st.sampled_from(MONEY).flatmap(lambda f: put(f, st.floats() | st.integers() | st.booleans() | bad_decimal)),
        put(
            "size_usd",
            st.decimals(min_value=Decimal("1000000.01"), allow_nan=False, allow_infinity=False, places=2).map(str)
            | st.sampled_from(["0", "0.5", "-1", "-0.01", "99999999999999999999999"]),
        ),
        put("action", st.text(min_size=1, max_size=40).filter(lambda t: not _known_action(t))),
        put("symbol", st.text(min_size=1, max_size=40).filter(lambda t: not _allowed_symbol(t, symbols))),
        put(
            "timestamp",
            st.floats(120, 1e8).map(lambda s: _stamp(-s))
            | st.floats(60, 1e8).map(_stamp)
            | st.integers()
            | st.text(max_size=30)
            | st.just("2026-01-01T00:00:00"),
        ),
        put("secret", st.text(min_size=1, max_size=60)),
        st.sampled_from(MONEY).map(lambda f: lambda body: {**body, "action": "exit", f: "10"}),
        st.just(lambda body: {**body, "action": "buy", "take_profit_price": "90", "stop_loss_price": "100"}),
        st.just(lambda body: {**body, "signal_id": "x" * max_body}),
    )


@st.composite
def hostile_requests(draw, bot, secret, symbols, max_body) -> tuple[bytes, str]:
    """(body, content type) pairs that must each get a 4xx and publish nothing."""
    kind = draw(st.sampled_from(["broken", "broken", "broken", "broken", "media", "raw", "json", "duplicate"]))
    body = signal_body(bot, secret)
    if kind == "broken":
        for breakage in draw(st.lists(_breakages(symbols, max_body), min_size=1, max_size=3)):
            body = breakage(body)
        return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass"), "application/json"
    if kind == "media":
        media = draw(
            st.sampled_from(
                [
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "",
                    "application/jsonx",
                    "application/json; charset=utf-16",
                    "multipart/form-data",
                ]
            )
        )
        return json.dumps(body).encode(), media
    if kind == "raw":
        return draw(st.binary(max_size=600)), "application/json"
    if kind == "json":
        return json.dumps(draw(JSON), allow_nan=True).encode(), "application/json"
    text = json.dumps(body)  # the real secret and a second one: which would a lax parser take?
    return (text[:-1] + ', "secret": "' + secret + '"}').encode(), "application/json"
