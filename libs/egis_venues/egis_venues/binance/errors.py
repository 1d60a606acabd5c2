"""How a failed python-binance call maps onto the port's outcomes.

The rule: only an answer proving the venue did not act is a rejection. Everything
else (timeouts, dropped connections, other 5xx, codes not listed here) is
Unknown, so the intent stays in flight and the order is looked up, never
placed a second time on a guess.

Binance's general API information names the answers with which it did not
process a request at all: 429 (a request rate limit broken), 418 (an IP banned
for going on after 429s), and 503 with "Service Unavailable." or "Internal
error; unable to process your request. Please try again." ("a failure API
operation"; only 503 "Unknown error, please check your request or try again
later." leaves the execution status unknown). After those the same order may
be sent again (`not_processed`), and if it still is not processed it is refused.
"""

from __future__ import annotations

from typing import TypeGuard

import aiohttp
from binance.exceptions import BinanceAPIException, BinanceRequestException

from egis_common.logs import get_logger
from egis_venues.port import NotFound, Rejected, Unknown

log = get_logger(__name__)

# Codes with which the venue refuses a request before acting on it: nothing was placed.
REFUSED_CODES: dict[int, str] = {
    -1100: "illegal characters in a parameter",
    -1102: "a mandatory parameter is missing or malformed",
    -1106: "a parameter was sent that is not required",
    -1111: "precision over the symbol's maximum",
    -1115: "invalid time in force",
    -1116: "invalid order type",
    -1117: "invalid side",
    -1121: "invalid symbol",
    -2010: "new order rejected",
    -2019: "margin insufficient",
    -2021: "the stop would trigger immediately",
    -2022: "reduce-only order rejected: it would not reduce the position",
    -4001: "price below zero",
    -4003: "quantity not positive",
    -4004: "quantity below the minimum",
    -4005: "quantity above the maximum",
    -4014: "price not on the tick size",
    -4015: "client order id not valid",
    -4023: "quantity not on the step size",
    -4061: "position side does not match the account's mode",
    -4131: "best price outside the PERCENT_PRICE filter",
    -4164: "notional below the minimum",
}

# Refusals caused by our configuration, not by the order: loud, because every
# order of the account fails the same way until someone fixes it.
CONFIG_ERROR_CODES: dict[int, str] = {
    -1021: "timestamp outside recvWindow: the host clock is off",
    -1022: "signature not valid: wrong API secret",
    -1131: "recvWindow not accepted",
    -2014: "API key format invalid",
    -2015: "API key invalid, or IP or permissions not allowed",
}

# -4116 (client order id duplicated) is deliberately absent from both: an OPEN order
# with our deterministic id exists, most likely our own earlier attempt. Unknown.
DUPLICATE_CLIENT_ID_CODE = -4116
ORDER_NOT_FOUND_CODE = -2013


# 503 messages with which Binance says the request failed without being processed.
NOT_PROCESSED_503_MESSAGES = ("Service Unavailable.", "Internal error; unable to process your request.")


def not_processed(error: BaseException) -> TypeGuard[BinanceAPIException]:
    """True when the venue says it did not process the request: sending the same order again is safe."""
    if not isinstance(error, BinanceAPIException):
        return False
    if error.status_code in (418, 429):
        return True
    return error.status_code == 503 and (error.message or "").startswith(NOT_PROCESSED_503_MESSAGES)


def retry_after_s(error: BaseException) -> float | None:
    """The venue's Retry-After, in seconds, when it sent one."""
    value = getattr(getattr(error, "response", None), "headers", {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def placement_failure(error: Exception, *, account: str, client_id: str) -> Rejected | Unknown:
    """The outcome of a placement that raised instead of answering with an order."""
    code = getattr(error, "code", None) if isinstance(error, BinanceAPIException) else None
    if not_processed(error):
        log.warning(
            "binance_order_not_processed",
            account=account,
            client_id=client_id,
            status=error.status_code,
            code=code,
            retry_after_s=retry_after_s(error),
        )
        return Rejected(
            f"http_{error.status_code}",
            error.message or "",
            _api_error_raw(error),
            not_processed=True,
            retry_after_s=retry_after_s(error),
        )
    if isinstance(error, BinanceAPIException) and code in CONFIG_ERROR_CODES:
        log.error(
            "binance_configuration_error",
            account=account,
            client_id=client_id,
            code=code,
            reason=CONFIG_ERROR_CODES[code],
        )
        return _rejected(error)
    if isinstance(error, BinanceAPIException) and code in REFUSED_CODES and error.status_code < 500:
        return _rejected(error)
    return unknown_from(error)


def lookup_failure(error: Exception) -> NotFound | Unknown:
    """A look-up that failed: only "does not exist" is an answer, anything else is Unknown."""
    if isinstance(error, BinanceAPIException) and error.code == ORDER_NOT_FOUND_CODE:
        return NotFound()
    return unknown_from(error)


def unknown_from(error: Exception) -> Unknown:
    cause, raw = describe(error)
    log.warning("binance_outcome_unknown", cause=cause)
    return Unknown(cause, raw)


def describe(error: Exception) -> tuple[str, dict[str, object]]:
    """A short cause and the evidence, without request parameters (they carry the signature)."""
    if isinstance(error, BinanceAPIException):
        return f"http_{error.status_code}_code_{error.code}", _api_error_raw(error)
    if isinstance(error, TimeoutError):  # asyncio's, and aiohttp's ServerTimeoutError
        return "timeout", {"error": type(error).__name__}
    if isinstance(error, aiohttp.ClientError):
        return "connection", {"error": type(error).__name__, "detail": str(error)}
    if isinstance(error, BinanceRequestException):
        return "unreadable_response", {"error": type(error).__name__, "detail": error.message[:500]}
    # A bug or an unexpected shape after the request left: the outcome is still unknown.
    log.exception("binance_unexpected_error", error=type(error).__name__)
    return f"unexpected_{type(error).__name__}", {"error": type(error).__name__, "detail": str(error)[:500]}


def _rejected(error: BinanceAPIException) -> Rejected:
    return Rejected(str(error.code), error.message or "", _api_error_raw(error))


def _api_error_raw(error: BinanceAPIException) -> dict[str, object]:
    raw: dict[str, object] = {"status": error.status_code, "code": error.code, "msg": error.message}
    retry_after = getattr(error.response, "headers", {}).get("Retry-After")
    if retry_after is not None:
        raw["retry_after_s"] = retry_after
    return raw


class MarketDataUnavailable(Exception):
    """Symbol rules or a mark price could not be read from the venue (the port has no outcome for it)."""


class UnknownSymbol(LookupError):
    """The venue does not list this symbol."""


def market_data_unavailable(error: Exception) -> MarketDataUnavailable:
    cause, _ = describe(error)
    return MarketDataUnavailable(cause)


def is_duplicate_client_id(error: Exception) -> bool:
    return isinstance(error, BinanceAPIException) and error.code == DUPLICATE_CLIENT_ID_CODE
