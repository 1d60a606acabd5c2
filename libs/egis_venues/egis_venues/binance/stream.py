"""Binance USDⓈ-M user data stream -> exchange facts, with REST covering every gap.

One `AccountStream` per Binance account, a task for the life of the service that runs it:
1. get a listen key (POST /fapi/v1/listenKey) and connect `<stream_url>/ws/<listenKey>`;
2. catch up over REST (`egis_venues.binance.catch_up`): what happened while no socket listened;
3. read events until the socket ends, each event's facts handed to the service's
   `FactSink` (which publishes them in one transaction); the listen key is kept alive (PUT) meanwhile;
4. on a disconnect or any failure: log, catch up over REST again (facts keep
   flowing while the socket cannot come back), back off, go to 1.
Connecting before catching up leaves no gap: an event during the catch-up is
read from the socket afterwards. A fact published twice is stored once
downstream (the reconciler keys facts naturally); trades already published are
skipped to avoid needless duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from binance import AsyncClient
from binance.exceptions import BinanceAPIException
from binance.ws.streams import BinanceSocketManager
from prometheus_client import Counter, Gauge

from egis_common import contracts as c
from egis_common.logs import get_logger
from egis_venues.binance.catch_up import Seen, missed_facts
from egis_venues.binance.errors import describe
from egis_venues.binance.events import from_algo_update, from_order_trade_update
from egis_venues.port import StopRef

log = get_logger(__name__)

# The names the executor's dashboards and alerts know: the executor is the service that runs the stream.

CONNECTED = Gauge(
    "egis_executor_binance_stream_connected", "1 while the account's user data stream is connected", ["account"]
)
EVENTS = Counter(
    "egis_executor_binance_stream_events_total", "User data stream events received, by type", ["account", "event"]
)
FACTS = Counter(
    "egis_executor_binance_stream_facts_total",
    "Exchange facts published, by source (stream, rest)",
    ["account", "source"],
)
DISCONNECTS = Counter(
    "egis_executor_binance_stream_disconnects_total",
    "User data stream sessions that ended, by cause",
    ["account", "cause"],
)

LISTEN_KEY_GONE = -1125
# A session that lasted this long was healthy: the next reconnect starts from the shortest wait again.
STABLE_SESSION_S = 60.0


class ListenKeyExpired(Exception):
    """The venue ended the listen key: a new one is needed."""


@dataclass(frozen=True)
class StreamOptions:
    stream_url: str  # the websocket base, without /ws/<listenKey>
    keepalive_s: float = 1800.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    catch_up_s: float = 3600.0  # how far back the first catch-up looks for trades
    heartbeat_s: float = 30.0  # websocket pings: a connection silent past this counts as lost


def stream_url(*, configured: str | None, base_url: str | None, live: bool) -> str:
    """Configured; else the local server's (ws:// on base_url); else python-binance's venue URL."""
    if configured:
        return configured.rstrip("/")
    if base_url:
        return "ws" + base_url.rstrip("/").removeprefix("http")  # http->ws, https->wss
    venue = BinanceSocketManager.FSTREAM_URL.format("com") if live else BinanceSocketManager.FSTREAM_TESTNET_URL
    return f"{venue}private"  # python-binance's futures user socket path


class FactSink(Protocol):
    """Where a stream's facts go: the service that runs it publishes them (and what it derives) atomically."""

    async def publish(self, facts: Sequence[c.ExchangeFact]) -> None: ...

    async def fresh_start(self, account: str, since_ms: int) -> tuple[set[str], list[StopRef]]:
        """What the service's own records say a stream starting afresh must look at: symbols, unfinished stops."""
        ...


class AccountStream:
    def __init__(self, account: str, client: AsyncClient, publisher: FactSink, options: StreamOptions) -> None:
        self.account, self.client, self.publisher, self.options = account, client, publisher, options
        self.seen = Seen(horizon_ms=time.time_ns() // 1_000_000 - int(options.catch_up_s * 1000))
        self.connected = asyncio.Event()  # set while a socket is open and caught up

    async def run(self) -> None:
        """Until cancelled; never raises otherwise."""
        failures = 0
        try:
            async with aiohttp.ClientSession() as session:
                while True:
                    started = time.monotonic()
                    cause = await self._session(session)
                    self._disconnected(cause)
                    failures = 0 if time.monotonic() - started > STABLE_SESSION_S else failures + 1
                    await self._catch_up("disconnected")
                    await asyncio.sleep(self._backoff_s(failures))
        finally:
            self.connected.clear()
            CONNECTED.labels(self.account).set(0)
            await self.client.close_connection()

    async def _session(self, session: aiohttp.ClientSession) -> str:
        """One connection, from listen key to disconnect; returns why it ended."""
        try:
            listen_key = await self.client.futures_stream_get_listen_key()
            url = f"{self.options.stream_url}/ws/{listen_key}"
            async with session.ws_connect(url, heartbeat=self.options.heartbeat_s) as ws:
                keepalive = asyncio.create_task(self._keep_alive(listen_key, ws))
                try:
                    return await self._listen(ws)
                finally:
                    keepalive.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await keepalive
        except asyncio.CancelledError:
            raise
        except ListenKeyExpired:
            return "listen_key_expired"
        except Exception as error:  # nothing may end the stream for good: log, reconnect
            cause, evidence = (
                describe(error)
                if not isinstance(error, aiohttp.WSServerHandshakeError)
                else (f"handshake_{error.status}", {})
            )
            log.warning("binance_stream_failed", account=self.account, cause=cause, evidence=evidence)
            return cause

    async def _listen(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        CONNECTED.labels(self.account).set(1)
        log.info("binance_stream_connected", account=self.account)
        await self._catch_up("connected")
        self.connected.set()
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                await self._on_event(message.data)
            elif message.type is aiohttp.WSMsgType.ERROR:
                return "socket_error"
        return f"closed_{ws.close_code}"

    async def _on_event(self, text: str) -> None:
        try:
            event = json.loads(text)
            kind = str(event.get("e"))
            facts = _facts_of(event, self.account)
        except Exception as error:  # one bad event is logged and skipped; the stream goes on
            log.error("binance_stream_event_unparsable", account=self.account, error=repr(error)[:500])
            EVENTS.labels(self.account, "unparsable").inc()
            return
        EVENTS.labels(self.account, kind).inc()
        if kind == "listenKeyExpired":
            raise ListenKeyExpired()
        await self._publish(self.seen.new_facts(facts), "stream")

    async def _catch_up(self, when: str) -> None:
        try:
            if self.seen.fresh:  # what our own records say to look at
                symbols, self.seen.ours = await self.publisher.fresh_start(self.account, self.seen.horizon_ms)
                self.seen.symbols |= symbols
            facts = await missed_facts(self.client, self.account, self.seen)
            await self._publish(facts, "rest")
            self.seen.ours = []  # looked up and published: open_algos and the stream follow them from here
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the next catch-up retries from the same cursors
            cause, _ = describe(error)
            log.warning("binance_stream_catch_up_failed", account=self.account, when=when, cause=cause)
            return
        if facts:
            log.info("binance_stream_caught_up", account=self.account, when=when, facts=len(facts))

    async def _publish(self, facts: list[c.ExchangeFact], source: str) -> None:
        await self.publisher.publish(facts)
        self.seen.record(facts)
        FACTS.labels(self.account, source).inc(len(facts))

    async def _keep_alive(self, listen_key: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await asyncio.sleep(self.options.keepalive_s)
            try:
                await self.client.futures_stream_keepalive(listen_key)
            except BinanceAPIException as error:
                if error.code == LISTEN_KEY_GONE:  # the socket would hear nothing more: start over
                    log.warning("binance_stream_listen_key_gone", account=self.account)
                    await ws.close()
                    return
                log.warning("binance_stream_keepalive_failed", account=self.account, cause=describe(error)[0])
            except Exception as error:  # the key lives 60 minutes: the next keepalive may still save it
                log.warning("binance_stream_keepalive_failed", account=self.account, cause=describe(error)[0])

    def _disconnected(self, cause: str) -> None:
        DISCONNECTS.labels(self.account, cause).inc()
        log.warning("binance_stream_disconnected", account=self.account, cause=cause)
        self.connected.clear()
        CONNECTED.labels(self.account).set(0)

    def _backoff_s(self, failures: int) -> float:
        return min(self.options.reconnect_max_s, self.options.reconnect_min_s * 2.0 ** min(failures, 16))


def _facts_of(event: dict[str, Any], account: str) -> list[c.ExchangeFact]:
    """The facts of one event; events without a fact (ACCOUNT_UPDATE, TRADE_LITE, ...) give none."""
    kind = event.get("e")
    if kind == "ORDER_TRADE_UPDATE":
        return from_order_trade_update(event, account)
    if kind == "ALGO_UPDATE":
        return [from_algo_update(event, account)]
    return []
