"""A local Binance USDⓈ-M Futures compatible HTTP server for tests and demos."""

from egis_binance_local.errors import BinanceError
from egis_binance_local.faults import Fault, FaultKind, RequestRecord
from egis_binance_local.server import BinanceLocal
from egis_binance_local.symbols import DEFAULT_SYMBOLS, SymbolSpec
from egis_binance_local.testing import local_async_client, local_client_class

__all__ = [
    "DEFAULT_SYMBOLS",
    "BinanceError",
    "BinanceLocal",
    "Fault",
    "FaultKind",
    "RequestRecord",
    "SymbolSpec",
    "local_async_client",
    "local_client_class",
]
