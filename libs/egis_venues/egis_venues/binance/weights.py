"""Binance's request-weight limit, kept on our side: every request's weight is counted before it is sent.

The venue counts weight per IP per clock minute (2400 on USDⓈ-M) and reports
its count in `X-MBX-USED-WEIGHT-1M`. Over the limit it answers 429 with
Retry-After; a client that keeps going gets 418, an IP ban of 2 minutes to 3
days that also stops the executor's trading on the same IP. So a
`WeightBudget` spends only a share of the limit, waits for the next minute
when that share is spent, follows the venue's own count when it is higher,
waits out a 429 and retries the read, and stops at a 418.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from egis_common.logs import get_logger

log = get_logger(__name__)

UNLIMITED = 0
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
TOO_MANY_REQUESTS, IP_BANNED = 429, 418
MAX_ATTEMPTS_AFTER_429 = 5
# The venue's published IP weights, by method and path under /fapi/vN/; an unlisted request counts this much.
DEFAULT_WEIGHT = 5
WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "ping"): 1,
    ("GET", "time"): 1,
    ("GET", "exchangeInfo"): 1,
    ("GET", "order"): 1,
    ("GET", "algoOrder"): 1,
    ("DELETE", "order"): 1,
    ("DELETE", "algoOrder"): 1,
    ("POST", "order"): 0,
    ("POST", "algoOrder"): 0,  # order placements count against order limits instead
    ("GET", "userTrades"): 5,
    ("GET", "allOrders"): 5,
    ("GET", "allAlgoOrders"): 5,
    ("GET", "positionRisk"): 5,
    ("GET", "account"): 5,
    ("GET", "balance"): 5,
    ("POST", "leverage"): 1,
    ("GET", "commissionRate"): 20,
    ("GET", "positionSide/dual"): 30,
    ("POST", "listenKey"): 1,
    ("PUT", "listenKey"): 1,
    ("DELETE", "listenKey"): 1,
}
# Weight (with a symbol, without one) of the requests whose weight depends on naming a symbol.
BY_SYMBOL: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "openOrders"): (1, 40),
    ("GET", "openAlgoOrders"): (1, 40),
    ("GET", "premiumIndex"): (1, 10),
    ("GET", "ticker/price"): (1, 2),
}


def request_weight(method: str, path: str, params: dict[str, Any] | None) -> int:
    key = (method.upper(), path)
    if key in BY_SYMBOL:
        with_symbol, without = BY_SYMBOL[key]
        return with_symbol if (params or {}).get("symbol") else without
    return WEIGHTS.get(key, DEFAULT_WEIGHT)


class IpBanned(Exception):
    """The venue banned this IP (418): nothing more is sent until the ban ends."""

    def __init__(self, until_s: float) -> None:
        super().__init__(f"the venue banned this IP for {max(0.0, until_s - time.time()):.0f} s more")
        self.until_s = until_s


@dataclass
class WeightBudget:
    """A share of the venue's weight per minute, in the venue's whole clock minutes; 0 is unlimited."""

    per_minute: int
    window_s: float = 60.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    requests: int = field(default=0, init=False)
    weight_sent: int = field(default=0, init=False)
    waited_s: float = field(default=0.0, init=False)
    refusals: dict[int, int] = field(default_factory=dict, init=False)  # 429s and 418s received
    banned_until_s: float = field(default=0.0, init=False)
    _window: int = field(default=-1, init=False)
    _used: int = field(default=0, init=False)
    _resume_at_s: float = field(default=0.0, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def spend(self, weight: int) -> None:
        """Count the weight, first waiting for as long as the budget, a Retry-After or a ban require."""
        async with self._lock:
            while (wait_s := self._wait_for(weight)) > 0:
                self.waited_s += wait_s
                await self.sleep(wait_s)
            self._used += weight
            self.requests += 1
            self.weight_sent += weight

    def observe(self, used_header: str | None) -> None:
        """The venue's count includes other clients on our IP: follow it whenever it is the higher."""
        if used_header is not None and used_header.isdigit():
            self._roll()
            self._used = max(self._used, int(used_header))

    def refused(self, status: int, retry_after_s: float) -> None:
        """A 429 pauses every request until Retry-After; a 418 bans us until it."""
        self.refusals[status] = self.refusals.get(status, 0) + 1
        until_s = self.clock() + retry_after_s
        if status == IP_BANNED:
            self.banned_until_s = max(self.banned_until_s, until_s)
        self._resume_at_s = max(self._resume_at_s, until_s)
        log.warning("binance_request_refused", status=status, retry_after_s=retry_after_s)

    def report(self) -> dict[str, Any]:
        return {
            "weight_budget_per_minute": self.per_minute or "unlimited",
            "requests": self.requests,
            "weight": self.weight_sent,
            "waited_s": round(self.waited_s, 3),
            "http_429": self.refusals.get(TOO_MANY_REQUESTS, 0),
            "http_418": self.refusals.get(IP_BANNED, 0),
        }

    def _wait_for(self, weight: int) -> float:
        now = self.clock()
        if now < self.banned_until_s:
            raise IpBanned(self.banned_until_s)
        if now < self._resume_at_s:
            return self._resume_at_s - now
        self._roll()
        # A request heavier than the whole budget goes alone in a fresh minute rather than never.
        if self.per_minute == UNLIMITED or self._used == 0 or self._used + weight <= self.per_minute:
            return 0.0
        return (self._window + 1) * self.window_s - now

    def _roll(self) -> None:
        window = int(self.clock() // self.window_s)
        if window != self._window:
            self._window, self._used = window, 0


def metered(factory: Callable[..., AsyncClient], budget: WeightBudget) -> Callable[..., AsyncClient]:
    """A client factory whose clients send every futures request through the budget."""

    def make(*args: Any) -> AsyncClient:
        client = factory(*args)
        send = client._request_futures_api
        # An instance attribute shadows the method that every futures call of python-binance goes through.
        client._request_futures_api = _through_budget(client, send, budget)
        return client

    return make


def _through_budget(
    client: AsyncClient, send: Callable[..., Awaitable[Any]], budget: WeightBudget
) -> Callable[..., Awaitable[Any]]:
    async def request(method: str, path: str, signed: bool = False, version: int = 1, **kwargs: Any) -> Any:
        params = dict(kwargs.pop("data", None) or {})
        weight = request_weight(method, path, params)
        for attempt in range(1, MAX_ATTEMPTS_AFTER_429 + 1):
            await budget.spend(weight)
            try:
                # A copy each time: python-binance writes the timestamp and signature into it.
                answer = await send(method, path, signed, version, data=dict(params), **kwargs)
            except BinanceAPIException as error:
                headers = getattr(error.response, "headers", {})
                budget.observe(headers.get(WEIGHT_HEADER))
                if error.status_code not in (TOO_MANY_REQUESTS, IP_BANNED):
                    raise
                budget.refused(error.status_code, _seconds(headers.get("Retry-After")))
                # Only reads are resent: the venue refused before acting, but a placement is never sent twice.
                if error.status_code == IP_BANNED or method.lower() != "get" or attempt == MAX_ATTEMPTS_AFTER_429:
                    raise
                continue
            budget.observe(getattr(getattr(client, "response", None), "headers", {}).get(WEIGHT_HEADER))
            return answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    return request


def _seconds(retry_after: str | None) -> float:
    try:
        return max(1.0, float(retry_after)) if retry_after is not None else 1.0
    except ValueError:
        return 1.0
