"""One /fapi request end to end: log it, meter it, inject a fault, authenticate, handle, answer.

Order of the steps, and why:
1. the request log records every request that reached the server, whatever
   happens next (tests assert "no second order was placed" on it);
2. a banned IP gets 418 until the ban ends, and the weight limit answers 429,
   before anything else, as the venue does (enough 429s in a minute earn a ban);
3. a fault "before processing" answers without touching any state;
4. authentication, then the handler, which may raise `BinanceError`;
5. a fault "after processing" withholds the answer of a request that took effect.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from egis_binance_local import errors
from egis_binance_local.auth import API_KEY_HEADER, RawRequest, authenticate
from egis_binance_local.exchange import Exchange
from egis_binance_local.fapi import Call, Route
from egis_binance_local.faults import Fault, FaultBook, FaultKind, RequestRecord
from egis_binance_local.limits import WEIGHT_HEADER, WeightMeter

Outcome = tuple[int, Any, dict[str, str]]

_FAULT_DEFAULTS = {
    # "occured" is the venue's spelling.
    FaultKind.HTTP_500: errors.BinanceError(-1000, "An unknown error occured while processing the request.", 500),
    FaultKind.HTTP_503: errors.BinanceError(
        -1001, "Internal error; unable to process your request. Please try again.", 503
    ),
    FaultKind.REJECT: errors.BinanceError(-1000, "Rejected by an injected fault.", 400),
}


@dataclass
class Venue:
    exchange: Exchange
    meter: WeightMeter
    faults: FaultBook = field(default_factory=FaultBook)
    log: list[RequestRecord] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, route: Route, request: web.Request) -> web.StreamResponse:
        raw = await _raw_request(request)
        params = _params(raw)
        record = RequestRecord(
            request.method,
            request.path,
            {k: v for k, v in params.items() if k != "signature"},
            route.weight(params),
            raw.api_key,
            self.exchange.clock(),
        )
        self.log.append(record)
        fault, (status, body, headers) = self._outcome(route, raw, params, record)
        record.status = status
        headers[WEIGHT_HEADER] = str(self.meter.used())
        response = web.json_response(body, status=status, headers=headers)
        if fault is not None and fault.kind.after_processing:
            await self._withhold(request, fault)
        return response

    async def not_served(self, request: web.Request) -> web.StreamResponse:
        """A /fapi path or method this server lacks: logged like any request, answered 404 in JSON."""
        raw = await _raw_request(request)
        record = RequestRecord(request.method, request.path, _params(raw), 1, raw.api_key, self.exchange.clock(), 404)
        self.log.append(record)
        error = errors.BinanceError(-1000, f"binance-local does not serve {request.method} {request.path}", 404)
        return web.json_response(error.body(), status=404)

    def _outcome(
        self, route: Route, raw: RawRequest, params: dict[str, str], record: RequestRecord
    ) -> tuple[Fault | None, Outcome]:
        if (until_ms := self.meter.banned_until_ms()) is not None:
            return None, _error(errors.ip_banned(until_ms), _seconds_until(until_ms, self.exchange.clock()))
        if not self.meter.try_spend(record.weight):
            return None, _error(errors.too_many_requests(self.meter.limit), self.meter.retry_after_s())
        fault = self.faults.take(record.method, record.path)
        record.fault = fault.kind.value if fault else None
        if fault is not None and not fault.kind.after_processing:
            return fault, self._fault_answer(fault)
        return fault, self._process(route, raw, params)

    def _process(self, route: Route, raw: RawRequest, params: dict[str, str]) -> Outcome:
        try:
            account = authenticate(route.security, raw, params, self.exchange.accounts, self.exchange.clock())
            return 200, route.handle(Call(self, account, params)), {}
        except errors.BinanceError as error:
            return error.status, error.body(), {}

    def _fault_answer(self, fault: Fault) -> Outcome:
        kind = fault.kind
        if kind is FaultKind.HTTP_429:
            return _error(errors.too_many_requests(self.meter.limit), fault.retry_after_s)
        if kind is FaultKind.HTTP_418:
            return _error(errors.ip_banned(self.exchange.clock() + fault.retry_after_s * 1000), fault.retry_after_s)
        default = _FAULT_DEFAULTS[kind]
        answer = errors.BinanceError(
            fault.code or default.code, fault.msg or default.msg, fault.status or default.status
        )
        return answer.status, answer.body(), {}

    async def _withhold(self, request: web.Request, fault: Fault) -> None:
        if fault.kind is FaultKind.ACCEPT_THEN_DROP:
            if request.transport is not None:
                request.transport.abort()  # a reset, not an answer
            return
        # Hold the answer past the client's timeout; wake early when the server stops.
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=fault.delay_s)
        except TimeoutError:
            pass


def _error(error: errors.BinanceError, retry_after_s: int) -> Outcome:
    return error.status, error.body(), {"Retry-After": str(retry_after_s)}


def _seconds_until(until_ms: int, now_ms: int) -> int:
    return max(1, -(-(until_ms - now_ms) // 1000))  # whole seconds, rounded up: never "retry now" while banned


async def _raw_request(request: web.Request) -> RawRequest:
    # `raw_path` keeps the query string exactly as sent; the signature was computed over that.
    _, _, query = request.raw_path.partition("?")
    body = (await request.read()).decode("utf-8", errors="replace")
    return RawRequest(query, body, request.headers.get(API_KEY_HEADER))


def _params(raw: RawRequest) -> dict[str, str]:
    # The venue's rule: a parameter in both places takes the query string's value.
    params = dict(parse_qsl(raw.body, keep_blank_values=True))
    params.update(parse_qsl(raw.query, keep_blank_values=True))
    return params
