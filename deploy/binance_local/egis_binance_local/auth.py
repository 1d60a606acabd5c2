"""API keys, HMAC-SHA256 signatures and the recvWindow, checked the way the venue checks them.

The signature covers `totalParams`: the raw query string followed directly by
the raw request body, each exactly as received and without the `signature`
parameter. Nothing is decoded or re-encoded first, so a client that signs one
string and sends another (for instance one that form-encodes `:` as `%3A`
after signing the unencoded value) fails here as it fails on the venue.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from egis_binance_local import errors, params
from egis_binance_local.model import Account
from egis_binance_local.params import Params

API_KEY_HEADER = "X-MBX-APIKEY"
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
MAX_CLOCK_AHEAD_MS = 1000


class Security(enum.Enum):
    NONE = "NONE"  # market data: no key
    USER_STREAM = "USER_STREAM"  # key, no signature
    SIGNED = "SIGNED"  # key, signature, timestamp


@dataclass(frozen=True)
class RawRequest:
    query: str  # as received, without the leading "?"
    body: str  # as received
    api_key: str | None


def authenticate(
    security: Security, raw: RawRequest, p: Params, accounts: Mapping[str, Account], now_ms: int
) -> Account | None:
    if security is Security.NONE:
        return None
    account = _account_for(raw.api_key, accounts)
    if security is Security.SIGNED:
        _check_signature(raw, p, account.api_secret)
        check_timestamp(p, now_ms)
    return account


def _account_for(api_key: str | None, accounts: Mapping[str, Account]) -> Account:
    if not api_key:
        raise errors.missing_api_key()
    account = accounts.get(api_key)
    if account is None:
        raise errors.invalid_api_key()
    return account


def _check_signature(raw: RawRequest, p: Params, secret: str) -> None:
    params.required(p, "timestamp")
    given = params.required(p, "signature")
    payload = strip_signature(raw.query) + strip_signature(raw.body)
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise errors.invalid_signature()


def strip_signature(part: str) -> str:
    """The raw string minus its `signature=...` segment, everything else untouched."""
    if not part:
        return ""
    return "&".join(s for s in part.split("&") if not s.startswith("signature="))


def check_timestamp(p: Params, now_ms: int) -> None:
    timestamp = params.integer(p, "timestamp")
    window = params.integer(p, "recvWindow") or DEFAULT_RECV_WINDOW_MS
    if timestamp is None:
        raise errors.mandatory("timestamp")
    if window > MAX_RECV_WINDOW_MS:
        raise errors.bad_recv_window()
    # The venue's rule: not more than 1 s ahead of its clock, not older than the window.
    if timestamp >= now_ms + MAX_CLOCK_AHEAD_MS or now_ms - timestamp > window:
        raise errors.outside_recv_window()
