"""Binance USDⓈ-M Futures through python-binance: the exchange port (`exchange.BinanceExchange`), its client,
requests, answers and errors, the request-weight budget, and the user data stream with its REST catch-up.

Nothing is imported here, so that naming the package does not load python-binance."""
