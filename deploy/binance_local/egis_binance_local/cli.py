"""`python -m egis_binance_local --port N`: run the local venue for a demo until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from egis_binance_local.server import BinanceLocal


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egis-binance-local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="KEY:SECRET[:USDT]",
        help="create an account at start (repeatable)",
    )
    parser.add_argument("--weight-limit", type=int, default=2400)
    parser.add_argument("--taker-fee-rate", default="0.0005")
    parser.add_argument("--slippage-rate", default="0")
    return parser


def _add_accounts(server: BinanceLocal, specs: list[str]) -> None:
    for spec in specs:
        key, secret, *usdt = spec.split(":")
        server.add_account(key, secret, usdt=usdt[0] if usdt else "10000")


async def _serve(args: argparse.Namespace) -> None:
    server = BinanceLocal(
        host=args.host,
        port=args.port,
        weight_limit=args.weight_limit,
        taker_fee_rate=args.taker_fee_rate,
        slippage_rate=args.slippage_rate,
    )
    _add_accounts(server, args.account)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with server:
        # Scripts wait for this line to learn the port.
        print(f"binance-local listening on {server.base_url} (futures base {server.fapi_url})", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
