"""The executor's Binance user data streams: one `AccountStream` per configured account, its facts in our outbox.

The stream itself is the venue library's (`egis_venues.binance.stream`); what
is ours is where its facts go (the outbox, with our stops the venue says have
ended, in one transaction) and what a fresh start looks at (our own orders and
unfinished stops).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from egis_common import contracts as c
from egis_common.logs import get_logger
from egis_common.outbox import Outbox, UnitOfWork
from egis_common.runtime import Runtime
from egis_venues.binance import stream
from egis_venues.binance.client import client_factory
from egis_venues.binance.stream import AccountStream, StreamOptions
from egis_venues.port import StopRef
from executor.adapters import repository as repo
from executor.settings import ExecutorSettings

log = get_logger(__name__)


class FactPublisher:
    """Facts to egis.exchange.facts.v1 through the executor's outbox: committed, then relayed.

    The stream's `FactSink`: it takes what the stream hands it, a venue's facts and nothing else."""

    def __init__(self, uow: UnitOfWork, outbox: Outbox) -> None:
        self.uow, self.outbox = uow, outbox

    async def publish(self, facts: Sequence[c.ExchangeFact]) -> None:
        """The facts, and in the same transaction our stops the venue says have ended."""
        if facts:
            async with self.uow.begin() as conn:
                await self.outbox.add(conn, *facts)
                await repo.stops_finished(conn, facts)

    async def fresh_start(self, account: str, since_ms: int) -> tuple[set[str], list[StopRef]]:
        """What our own records say a stream starting afresh must look at: symbols, and unfinished stops."""
        async with self.uow.read() as conn:
            symbols = await repo.symbols_with_recent_orders(
                conn, c.ExchangeName.BINANCE_USDM, account, datetime.fromtimestamp(since_ms / 1000, UTC)
            )
            stops = await repo.unfinished_stops(conn, c.ExchangeName.BINANCE_USDM, account)
        return symbols | {stop.symbol for stop in stops}, stops


def stream_url(settings: ExecutorSettings) -> str:
    return stream.stream_url(
        configured=settings.binance_stream_url, base_url=settings.binance_base_url, live=settings.binance_live
    )


def stream_options(settings: ExecutorSettings) -> StreamOptions:
    return StreamOptions(
        stream_url=stream_url(settings),
        keepalive_s=settings.binance_stream_keepalive_seconds,
        reconnect_min_s=settings.binance_stream_reconnect_min_seconds,
        reconnect_max_s=settings.binance_stream_reconnect_max_seconds,
        catch_up_s=settings.binance_stream_catch_up_seconds,
    )


def user_streams(runtime: Runtime) -> list[AccountStream]:
    """One stream per configured Binance account; none when the stream is switched off."""
    settings: ExecutorSettings = runtime.settings  # type: ignore[assignment]
    if not settings.binance_stream_enabled or not settings.binance_accounts:
        return []
    factory = client_factory(
        live=settings.binance_live,
        base_url=settings.binance_base_url,
        request_timeout_s=settings.binance_request_timeout_seconds,
    )
    publisher, options = FactPublisher(runtime.uow, runtime.outbox), stream_options(settings)
    return [
        AccountStream(name, factory(credentials), publisher, options)
        for name, credentials in sorted(settings.binance_accounts.items())
    ]


def start_user_streams(runtime: Runtime) -> list[AccountStream]:
    streams = user_streams(runtime)
    for account_stream in streams:
        runtime.start_task(account_stream.run(), f"binance-user-stream-{account_stream.account}")
        log.info("binance_stream_started", account=account_stream.account, url=account_stream.options.stream_url)
    return streams
