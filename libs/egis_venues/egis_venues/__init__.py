"""The venues Egis trades on, as a library: the exchange port (`port`), the paper venue (`paper`) and Binance
USDⓈ-M Futures (`binance`). Services use it; it imports no service."""
