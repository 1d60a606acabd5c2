"""Which adapter serves which `OrderIntent.exchange`: paper always, Binance when accounts are configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from egis_common.contracts import ExchangeName
from egis_common.logs import get_logger
from egis_common.runtime import Runtime
from egis_venues.paper import PaperExchange
from egis_venues.port import ExchangePort
from executor.adapters import repository as repo
from executor.settings import ExecutorSettings

if TYPE_CHECKING:
    from egis_venues.binance.exchange import BinanceExchange

log = get_logger(__name__)


def build_exchanges(runtime: Runtime) -> dict[ExchangeName, ExchangePort]:
    """An intent for an exchange missing here is skipped (`exchange_unavailable`) before any reservation."""
    settings: ExecutorSettings = runtime.settings  # type: ignore[assignment]
    exchanges: dict[ExchangeName, ExchangePort] = {
        # Our record of a stop whose algo order ended becomes `finished` in the venue's transaction, as with
        # Binance's user data stream.
        ExchangeName.PAPER: PaperExchange(
            runtime.uow, runtime.outbox, settings.paper, on_algo_facts=repo.stops_finished
        ),
    }
    binance = _binance(settings)
    if binance is not None:
        exchanges[ExchangeName.BINANCE_USDM] = binance
    return exchanges


def _binance(settings: ExecutorSettings) -> ExchangePort | None:
    if not getattr(settings, "binance_accounts", None):
        return None
    try:
        return binance_exchange(settings)
    except ImportError:
        log.exception("binance_adapter_unavailable")
        return None


def binance_exchange(settings: ExecutorSettings) -> BinanceExchange:
    # imported here: python-binance is only loaded when it is used
    from egis_venues.binance.exchange import BinanceExchange

    return BinanceExchange(
        settings.binance_accounts,
        live=settings.binance_live,
        base_url=settings.binance_base_url,
        request_timeout_s=settings.binance_request_timeout_seconds,
        rules_ttl_s=settings.binance_symbol_rules_ttl_seconds,
        resend_within_s=settings.binance_resend_within_seconds,
    )


async def close_exchanges(exchanges: dict[ExchangeName, ExchangePort]) -> None:
    for port in exchanges.values():
        close = getattr(port, "close", None)
        if close is not None:
            await close()
