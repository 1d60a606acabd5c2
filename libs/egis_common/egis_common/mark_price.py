"""`python -m egis_common.mark_price SYMBOL PRICE`: a mark price for the paper venue, which fills market orders at it.

Publishes a MarkPrice to egis.exchange.mark-prices.v1 at EGIS_KAFKA_BOOTSTRAP_SERVERS, logged in as
EGIS_KAFKA_USERNAME (the price feed's principal, `prices`, is the one allowed to write it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from egis_common.contracts import MarkPrice
from egis_common.kafka_login import LoginSettings, client_options
from egis_common.topics import encode, key_for, topic_for


def mark_price(symbol: str, price: str) -> MarkPrice:
    """The message, or SystemExit with a clear line for a price that is not a positive decimal."""
    try:
        return MarkPrice(symbol=symbol.upper(), price=price)
    except ValidationError as error:
        raise SystemExit(f"invalid price {price!r}: {error.errors()[0]['msg']}") from None


async def publish(bootstrap: str, message: MarkPrice, login: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=10000, **login
    )
    try:
        await producer.start()
        await producer.send_and_wait(topic_for(message).name, encode(message), key=key_for(message))
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m egis_common.mark_price", description=__doc__.split("\n\n")[0])
    parser.add_argument("symbol", help="e.g. ETHUSDT")
    parser.add_argument("price", help="a decimal string, e.g. 2942.67")
    args = parser.parse_args(argv)
    message = mark_price(args.symbol, args.price)
    settings = LoginSettings()
    try:
        asyncio.run(publish(settings.kafka_bootstrap_servers, message, client_options(settings)))
    except Exception as error:  # noqa: BLE001 - one clear line, not a traceback
        print(f"mark price not published: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"{message.symbol} mark price {message.price} published")
    return 0


if __name__ == "__main__":
    sys.exit(main())
