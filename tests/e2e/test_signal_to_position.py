"""A signal POSTed to the gateway over HTTP ends as a position in the ledger, and a close signal closes it.

Everything between is real: the gateway and the router (signal_router), the
executor, the ledger, Kafka, Postgres; the paper venue in the executor's
tables, or Binance USDⓈ-M as a local server reached by python-binance over
HTTP with signed requests. The sizes are what the venue executed: a requested
size is rounded down to the step size, so `size_usd` is less than asked.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from e2e_helpers import (
    BINANCE_ACCOUNT,
    BINANCE_KEY,
    budget,
    intent_row,
    paper_mark_price,
    paper_orders,
    position_in,
    post_signal,
)

from egis_common.ids import client_order_id

pytestmark = pytest.mark.infra
D = Decimal
ENTRY_MARK, EXIT_MARK = D("2942.67"), D("3000")


def assert_closed_with_every_close_fact(closed, opened, close_intent_id, close_order_id: str, pnl: str, fee: str):
    assert (closed.close_intent_id, closed.close_exchange_order_id) == (close_intent_id, close_order_id)
    assert (closed.close_price, closed.realised_pnl_usd, closed.fee_usd) == (EXIT_MARK, D(pnl), D(fee))
    assert closed.closed_at is not None and closed.closed_at >= opened.opened_at
    # The entry stays as it was: the audit trail of what was asked and what executed.
    assert (closed.requested_size_usd, closed.size_usd, closed.executed_qty, closed.avg_entry_price) == (
        opened.requested_size_usd,
        opened.size_usd,
        opened.executed_qty,
        opened.avg_entry_price,
    )


async def test_paper_a_buy_signal_opens_the_executed_size_and_an_exit_signal_closes_it(
    create_bot, gateway, ledger_api, ledger_runtime, executor, producer
):
    bot, secret = await create_bot("paper", f"paper-{uuid.uuid4().hex[:8]}", default_order_size_usd="10")
    await paper_mark_price(producer, executor, "ETHUSDT", ENTRY_MARK)

    opening = await post_signal(gateway, bot, secret, "buy")

    opened = await position_in(ledger_runtime, bot["bot_id"], "open")
    assert (opened.symbol, opened.side, opened.exchange, opened.open_intent_id) == ("ETHUSDT", "long", "paper", opening)
    assert opened.requested_size_usd == D("10")
    # $10 at 2942.67 is 0.0033983 ETH; the step of 0.001 leaves 0.003 ETH, worth 8.82801.
    assert (opened.executed_qty, opened.avg_entry_price, opened.size_usd) == (D("0.003"), ENTRY_MARK, D("8.82801"))
    assert opened.fee_usd == D("0.00353120")  # 0.04 % taker
    intent = await intent_row(executor.runtime, opening)
    assert (intent.status, intent.client_order_id, intent.order_qty) == ("filled", client_order_id(opening), D("0.003"))
    (entry,) = await paper_orders(executor, bot["exchange_account"])
    assert (entry.client_order_id, entry.side, entry.reduce_only, entry.status) == (
        intent.client_order_id,
        "BUY",
        False,
        "FILLED",
    )
    assert opened.open_exchange_order_id == str(entry.order_id)
    assert await budget(ledger_api, bot) == {
        "initial_usd": D("100"),
        "reserved_open_usd": D("8.82801"),
        "reserved_opening_usd": D("0"),
        "available_usd": D("91.17199"),
    }
    (listed,) = (await ledger_api.get(f"/v1/bots/{bot['bot_id']}/positions")).json()
    assert (listed["status"], listed["size_usd"], listed["requested_size_usd"]) == ("open", "8.82801", "10")

    await paper_mark_price(producer, executor, "ETHUSDT", EXIT_MARK)
    closing = await post_signal(gateway, bot, secret, "exit")

    closed = await position_in(ledger_runtime, bot["bot_id"], "closed")
    _, exit_order = await paper_orders(executor, bot["exchange_account"])
    assert (exit_order.client_order_id, exit_order.side, exit_order.reduce_only, exit_order.executed_qty) == (
        client_order_id(closing),
        "SELL",
        True,
        D("0.003"),
    )
    assert_closed_with_every_close_fact(
        closed, opened, closing, str(exit_order.order_id), pnl="0.17199", fee=str(D("0.00353120") + D("0.00360000"))
    )
    assert await budget(ledger_api, bot) == {
        "initial_usd": D("100"),
        "reserved_open_usd": D("0"),
        "reserved_opening_usd": D("0"),
        "available_usd": D("100"),
    }


async def test_binance_a_buy_signal_places_one_signed_market_order_and_an_exit_signal_closes_it(
    create_bot, gateway, ledger_api, ledger_runtime, executor, binance
):
    binance.set_mark_price("ETHUSDT", ENTRY_MARK)
    # Binance's ETHUSDT minimum notional is 20 USDT, which $10 would not reach.
    bot, secret = await create_bot("binance_usdm", BINANCE_ACCOUNT, default_order_size_usd="25")

    opening = await post_signal(gateway, bot, secret, "buy")

    opened = await position_in(ledger_runtime, bot["bot_id"], "open")
    assert (opened.exchange, opened.exchange_account, opened.open_intent_id) == (
        "binance_usdm",
        BINANCE_ACCOUNT,
        opening,
    )
    assert opened.requested_size_usd == D("25")
    # $25 at 2942.67 is 0.0084957 ETH; the venue's step of 0.001 leaves 0.008 ETH, worth 23.54136.
    assert (opened.executed_qty, opened.avg_entry_price, opened.size_usd) == (D("0.008"), ENTRY_MARK, D("23.54136"))
    assert opened.fee_usd == D("0.01177068")  # the venue's trade commission, 0.05 % taker
    (entry,) = binance.orders(BINANCE_KEY)
    assert (entry.client_order_id, entry.type, entry.side, entry.reduce_only, entry.status, entry.executed_qty) == (
        client_order_id(opening),
        "MARKET",
        "BUY",
        False,
        "FILLED",
        D("0.008"),
    )
    assert opened.open_exchange_order_id == str(entry.order_id)
    (sent,) = binance.requests("POST", "/fapi/v1/order")  # signed, accepted once, never resent
    assert (sent.api_key, sent.status, sent.params["newClientOrderId"], sent.params["quantity"]) == (
        BINANCE_KEY,
        200,
        client_order_id(opening),
        "0.008",
    )
    assert await budget(ledger_api, bot) == {
        "initial_usd": D("100"),
        "reserved_open_usd": D("23.54136"),
        "reserved_opening_usd": D("0"),
        "available_usd": D("76.45864"),
    }

    binance.set_mark_price("ETHUSDT", EXIT_MARK)
    closing = await post_signal(gateway, bot, secret, "exit")

    closed = await position_in(ledger_runtime, bot["bot_id"], "closed")
    _, exit_order = binance.orders(BINANCE_KEY)
    assert (exit_order.client_order_id, exit_order.type, exit_order.side, exit_order.reduce_only) == (
        client_order_id(closing),
        "MARKET",
        "SELL",
        True,
    )
    assert binance.position(BINANCE_KEY, "ETHUSDT").amount == 0  # flat, never short
    assert_closed_with_every_close_fact(
        closed, opened, closing, str(exit_order.order_id), pnl="0.45864", fee=str(D("0.01177068") + D("0.012"))
    )
    assert (await budget(ledger_api, bot))["available_usd"] == D("100")
