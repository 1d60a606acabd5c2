"""Builders of exchange facts and signed admin commands, shared by the reconciler's tests."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from egis_common import contracts as c
from egis_common.admin_client import assembled
from egis_common.topics import encode, key_for, topic_for
from egis_localinfra.pytest_plugin import admin_publish
from egis_localinfra.testing import eventually
from reconciler import auth

OPERATOR_ID = "ops-alice"
OPERATOR_KEY = "test-operator-key-" + uuid.uuid4().hex
BINANCE_ACCOUNT, BINANCE_KEY, BINANCE_SECRET = "binance-main", "local-key-1", "local-secret-1"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def base(account: str, symbol: str = "ETHUSDT", seconds: int = 0) -> dict:
    return {
        "exchange": c.ExchangeName.PAPER,
        "exchange_account": account,
        "symbol": symbol,
        "event_time": T0 + timedelta(seconds=seconds),
    }


def order_fact(
    account: str,
    order_id: str,
    client_id: str,
    status: str = "FILLED",
    qty: str = "0.003",
    executed: str | None = None,
    price: str = "3000",
    side: str = "SELL",
    seconds: int = 0,
    reduce_only: bool = True,
) -> c.ExchangeOrderFact:
    return c.ExchangeOrderFact(
        **base(account, seconds=seconds),
        exchange_order_id=order_id,
        client_order_id=client_id,
        status=status,
        side=side,
        order_type="MARKET",
        reduce_only=reduce_only,
        orig_qty=Decimal(qty),
        executed_qty=Decimal(qty if executed is None else executed),
        avg_price=Decimal(price),
    )


def algo_fact(
    account: str,
    algo_id: str,
    client_algo_id: str,
    status: str,
    spawned: str | None = None,
    kind: str = "TAKE_PROFIT_MARKET",
    trigger: str = "3000",
) -> c.ExchangeAlgoOrderFact:
    return c.ExchangeAlgoOrderFact(
        **base(account),
        algo_id=algo_id,
        client_algo_id=client_algo_id,
        status=status,
        order_type=kind,
        side="SELL",
        trigger_price=Decimal(trigger),
        spawned_order_id=spawned,
    )


def trade_fact(
    account: str,
    trade_id: str,
    order_id: str,
    price: str,
    qty: str,
    pnl: str = "0",
    commission: str = "0.0018",
    seconds: int = 0,
    asset: str = "USDT",
) -> c.ExchangeTradeFact:
    return c.ExchangeTradeFact(
        **base(account, seconds=seconds),
        trade_id=trade_id,
        exchange_order_id=order_id,
        side="SELL",
        price=Decimal(price),
        qty=Decimal(qty),
        realised_pnl_usd=Decimal(pnl),
        commission=Decimal(commission),
        commission_asset=asset,
    )


def admin_command(
    name: c.AdminCommandName,
    *,
    confirm: bool = False,
    bot_id=None,
    operator_id: str = OPERATOR_ID,
    key: str | None = OPERATOR_KEY,
) -> c.AdminCommand:
    command = c.AdminCommand(
        request_id=uuid.uuid4(), command=name, confirm=confirm, bot_id=bot_id, operator_id=operator_id, signature=""
    )
    return auth.signed(command, key) if key is not None else command


async def publish(runtime, *messages: c.Message) -> None:
    for message in messages:
        # As the service that owns the topic would (a venue, the ledger, an operator): not as the reconciler.
        await admin_publish(topic_for(message).name, encode(message), key_for(message))


def unique_id() -> str:
    return str(uuid.uuid4().int % 10**12)


async def ask(runtime, messages, command: c.AdminCommand) -> c.AdminReply:
    """Send an admin command; its reply, matched by request id, its parts joined."""
    await publish(runtime, command)
    return assembled(await eventually(lambda: reply_parts(messages, command.request_id), what="admin reply"))


async def reply_parts(messages, request_id) -> list[c.AdminReply] | None:
    """Every part of the (first) reply to this request, once all are in."""
    found = await messages.matching(lambda m: isinstance(m, c.AdminReply) and m.request_id == request_id)
    parts = {m.part: m for m in found}
    return list(parts.values()) if found and len(parts) == found[0].parts else None


class HeldVenue:
    """A venue that answers a look-up only once the test releases it."""

    def __init__(self, outcome) -> None:
        self.outcome, self.asked, self.release, self.calls = outcome, asyncio.Event(), asyncio.Event(), 0

    async def find_order(self, account: str, symbol: str, client_order_id: str, not_after=None):
        self.calls += 1
        self.asked.set()
        async with asyncio.timeout(30):
            await self.release.wait()
        return self.outcome
