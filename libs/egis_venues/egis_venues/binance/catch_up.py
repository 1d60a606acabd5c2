"""REST as the user data stream's fallback: the facts of whatever happened while no socket listened.

What the stream could have missed, and how it is found again:
- trades: `userTrades` per symbol, after the last trade id seen (or from the
  catch-up horizon for a symbol without one), with the order each belongs to;
- algo orders: those last seen open are looked up; a changed one (triggered,
  finished, canceled) gives its fact, and open ones not seen before give theirs.
  A stream that starts afresh has seen none open, so it first takes the
  service's own stops not known to be finished and looks up those no longer
  open: a take-profit that fired while nothing listened gives its FINISHED
  fact, the only link from the spawned order's trades to the position.
The symbols asked about: every symbol seen so far, plus those with a position,
an open order or an open algo order now (USDⓈ-M `userTrades` needs a symbol).
A stream that starts afresh has seen nothing, so it first takes the symbols of
the service's own orders within the horizon and of its stops not known to be
finished: a stop that closed a position while nothing listened leaves no
position, order or algo order open to point at its symbol.
A closed order without trades (canceled, expired) is not looked for. A stop of
ours the venue refuses to look up (-2013: it does not know it) is logged and
asked about again at the next fresh start.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from egis_common import contracts as c
from egis_common.logs import get_logger
from egis_venues.binance.events import from_account_trade, from_algo_order, from_order
from egis_venues.binance.parse import account_trade, venue_decimal
from egis_venues.port import StopRef

log = get_logger(__name__)
TRADES_PAGE = 1000  # the venue's maximum
OPEN_ALGO_STATUSES = frozenset({"NEW", "TRIGGERING"})


class Recent:
    """A bounded set of ids already published: enough to skip the overlap of stream and REST."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def add(self, item: str) -> None:
        self._ids[item] = None
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


@dataclass
class Seen:
    """What one account's stream has seen so far; lives as long as the process."""

    horizon_ms: int  # how far back a symbol without a trade cursor is searched
    symbols: set[str] = field(default_factory=set)
    last_trade_id: dict[str, int] = field(default_factory=dict)
    open_algos: dict[str, str] = field(default_factory=dict)  # algo id -> symbol
    published_trades: Recent = field(default_factory=Recent)
    ours: list[StopRef] = field(default_factory=list)  # a fresh start's stops to look up, until a catch-up succeeds

    @property
    def fresh(self) -> bool:
        return not self.symbols and not self.open_algos

    def new_facts(self, facts: list[c.ExchangeFact]) -> list[c.ExchangeFact]:
        """The facts without trades already published."""
        return [f for f in facts if not (isinstance(f, c.ExchangeTradeFact) and f.trade_id in self.published_trades)]

    def record(self, facts: list[c.ExchangeFact]) -> None:
        """After the facts were committed: cursors move, trades count as published."""
        for fact in facts:
            self.symbols.add(fact.symbol)
            if isinstance(fact, c.ExchangeTradeFact):
                self.published_trades.add(fact.trade_id)
                previous = self.last_trade_id.get(fact.symbol, 0)
                self.last_trade_id[fact.symbol] = max(previous, int(fact.trade_id))
            elif isinstance(fact, c.ExchangeAlgoOrderFact):
                if fact.status in OPEN_ALGO_STATUSES:
                    self.open_algos[fact.algo_id] = fact.symbol
                else:
                    self.open_algos.pop(fact.algo_id, None)


async def missed_facts(client: AsyncClient, account: str, seen: Seen) -> list[c.ExchangeFact]:
    """Every fact REST shows that the stream may have missed; the caller publishes, then `seen.record`s."""
    open_algos = await client.futures_get_open_algo_orders()
    symbols = seen.symbols | await _active_symbols(client) | {a["symbol"] for a in open_algos}
    facts: list[c.ExchangeFact] = []
    for symbol in sorted(symbols):
        facts += await _trade_facts(client, account, symbol, seen)
    facts += await _algo_facts(client, account, open_algos, seen)
    facts += await _our_stops(client, account, open_algos, seen)
    return seen.new_facts(facts)


async def _active_symbols(client: AsyncClient) -> set[str]:
    positions = await client.futures_position_information()
    held = {p["symbol"] for p in positions if venue_decimal(p["positionAmt"]) != 0}
    return held | {o["symbol"] for o in await client.futures_get_open_orders()}


async def _trade_facts(client: AsyncClient, account: str, symbol: str, seen: Seen) -> list[c.ExchangeFact]:
    trades = [account_trade(body) for body in await _trades_after(client, symbol, seen)]
    trades = [t for t in trades if t.trade_id not in seen.published_trades]
    facts: list[c.ExchangeFact] = [from_account_trade(t, account) for t in trades]
    for order_id in sorted({t.order_id for t in trades}, key=int):
        facts.append(from_order(await client.futures_get_order(symbol=symbol, orderId=int(order_id)), account))
    return facts


async def _trades_after(client: AsyncClient, symbol: str, seen: Seen) -> list[dict[str, Any]]:
    last = seen.last_trade_id.get(symbol)
    if last is None:  # the venue refuses fromId together with startTime
        page = await client.futures_account_trades(symbol=symbol, startTime=seen.horizon_ms, limit=TRADES_PAGE)
    else:
        page = await client.futures_account_trades(symbol=symbol, fromId=last + 1, limit=TRADES_PAGE)
    bodies = list(page)
    while len(page) == TRADES_PAGE:
        next_id = max(int(body["id"]) for body in page) + 1
        page = await client.futures_account_trades(symbol=symbol, fromId=next_id, limit=TRADES_PAGE)
        bodies += page
    return bodies


async def _algo_facts(
    client: AsyncClient, account: str, open_algos: list[dict[str, Any]], seen: Seen
) -> list[c.ExchangeFact]:
    still_open = {str(body["algoId"]) for body in open_algos}
    facts: list[c.ExchangeFact] = [
        from_algo_order(body, account) for body in open_algos if str(body["algoId"]) not in seen.open_algos
    ]
    for algo_id in sorted(set(seen.open_algos) - still_open):
        facts.append(from_algo_order(await client.futures_get_algo_order(algoId=int(algo_id)), account))
    return facts


async def _our_stops(
    client: AsyncClient, account: str, open_algos: list[dict[str, Any]], seen: Seen
) -> list[c.ExchangeFact]:
    """A fresh start's stops of ours that are neither open now nor followed already: their current state."""
    known = {str(body["algoId"]) for body in open_algos} | set(seen.open_algos)
    known_clients = {body["clientAlgoId"] for body in open_algos}
    facts: list[c.ExchangeFact] = []
    for stop in seen.ours:
        if stop.algo_id in known or stop.client_algo_id in known_clients:
            continue
        reference = (
            {"algoId": int(stop.algo_id)}
            if stop.algo_id and stop.algo_id.isdigit()
            else {"clientAlgoId": stop.client_algo_id}
        )
        try:
            facts.append(from_algo_order(await client.futures_get_algo_order(**reference), account))
        except BinanceAPIException as error:
            if error.status_code != 400:  # rate limits, 5xx: the whole catch-up is tried again later
                raise
            # Refused for this stop alone (-2013: the venue does not know it): the rest must not wait on it.
            log.warning(
                "binance_stop_look_up_refused",
                account=account,
                client_algo_id=stop.client_algo_id,
                algo_id=stop.algo_id,
                code=error.code,
                message=error.message,
            )
    return facts
