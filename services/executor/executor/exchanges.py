"""Which adapter serves which `OrderIntent.exchange`: paper always, Binance when accounts are configured."""

from __future__ import annotations

from egis_common.contracts import ExchangeName
from egis_common.logs import get_logger
from egis_common.runtime import Runtime
from executor.adapters.paper import PaperExchange
from executor.exchange import ExchangePort
from executor.settings import ExecutorSettings

log = get_logger(__name__)


def build_exchanges(runtime: Runtime) -> dict[ExchangeName, ExchangePort]:
    """An intent for an exchange missing here is skipped (`exchange_unavailable`) before any reservation."""
    settings: ExecutorSettings = runtime.settings  # type: ignore[assignment]
    exchanges: dict[ExchangeName, ExchangePort] = {
        ExchangeName.PAPER: PaperExchange(runtime.uow, runtime.outbox, settings.paper),
    }
    binance = _binance(settings)
    if binance is not None:
        exchanges[ExchangeName.BINANCE_USDM] = binance
    return exchanges


def _binance(settings: ExecutorSettings) -> ExchangePort | None:
    if not getattr(settings, "binance_accounts", None):
        return None
    try:  # imported lazily: python-binance is only loaded when it is used
        from executor.adapters.binance import BinanceExchange
    except ImportError:
        log.exception("binance_adapter_unavailable")
        return None
    return BinanceExchange.from_settings(settings)


async def close_exchanges(exchanges: dict[ExchangeName, ExchangePort]) -> None:
    for port in exchanges.values():
        close = getattr(port, "close", None)
        if close is not None:
            await close()
