"""Everything the checker reads after a trial, gathered from where each service keeps it.

The trial's database is fresh, so every row in it is the trial's: the router's
decisions, the executor's intents, pending records and paper venue, the ledger's
positions and bots, every schema's outbox. The Binance server's own log of each
trial account, the ledger's budget API, and Kafka's dead-letter and ledger-event
topics since the trial began complete it. Nothing here judges: checks.py does.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from decimal import Decimal

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from checks import Budget, DeadLetter, Decision, Evidence, Intent, Order, Position, Post
from pydantic import ValidationError

from egis_common.topics import ALL_TOPICS, DEAD_LETTER_PARTITIONS, DEAD_LETTER_TOPIC, LEDGER_EVENTS

SCHEMAS = ("signal_router", "executor", "ledger", "reconciler")
TOPICS = {topic.name: topic for topic in ALL_TOPICS}
Offsets = dict[TopicPartition, int]


# --------------------------------------------------------------------------- Kafka windows


async def end_offsets(bootstrap: str, topics: list[str], login: dict | None = None) -> Offsets:
    """`login`: aiokafka's options for a secure broker (the harness reads as the super user)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10000, **(login or {})
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(partitions_of(t))]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def read_window(
    bootstrap: str, start: Offsets, end: Offsets | None = None, timeout_s: float = 30, login: dict | None = None
) -> list:
    """Every record from `start` up to `end` (default: the ends now), in partition order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10000, **(login or {})
    )
    await consumer.start()
    try:
        end = end if end is not None else await consumer.end_offsets(list(start))
        wanted = {tp: offset for tp, offset in end.items() if offset > start.get(tp, 0)}
        if not wanted:
            return []
        consumer.assign(list(wanted))
        for tp in wanted:
            consumer.seek(tp, start.get(tp, 0))
        records = []
        async with asyncio.timeout(timeout_s):
            while [tp for tp, offset in wanted.items() if await consumer.position(tp) < offset]:
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    records += [r for r in batch if r.offset < wanted[tp]]
        return records
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- gathering


async def gather(
    *,
    dsn: str,
    bootstrap: str,
    posts: list[Post],
    binance_control,
    binance_accounts: dict[str, str],
    account_venue: dict[str, str],
    ledger_url: str | None,
    token: str,
    start_offsets: Offsets,
    kafka_login: dict | None = None,
) -> Evidence:
    """`binance_accounts`: exchange account -> API key on the Binance server."""
    e = Evidence(posts=posts, account_venue=account_venue)
    connection = await asyncpg.connect(dsn)
    try:
        await _database(connection, e)
    finally:
        await connection.close()
    await asyncio.to_thread(_binance, binance_control, binance_accounts, e)
    if ledger_url:
        e.reported_budgets = await asyncio.to_thread(_reported_budgets, ledger_url, token, list(e.initial_budgets))
    await _kafka(bootstrap, start_offsets, e, kafka_login)
    return e


async def _database(c: asyncpg.Connection, e: Evidence) -> None:
    for row in await c.fetch("SELECT signal_id, outcome, intent_id, skip_reason FROM signal_router.signals"):
        e.decisions[str(row["signal_id"])] = Decision(
            str(row["signal_id"]), row["outcome"], _text(row["intent_id"]), row["skip_reason"]
        )
    for row in await c.fetch(
        "SELECT intent_id, bot_id, kind, symbol, status, client_order_id, skip_reason FROM executor.intents"
    ):
        e.intents[str(row["intent_id"])] = Intent(
            str(row["intent_id"]),
            str(row["bot_id"]),
            row["kind"],
            row["symbol"],
            row["status"],
            row["client_order_id"],
            row["skip_reason"],
        )
    e.unresolved_pending = [
        str(r["intent_id"])
        for r in await c.fetch("SELECT intent_id FROM executor.pending_reconciliations WHERE resolved_at IS NULL")
    ]
    e.positions = [
        Position(
            str(r["position_id"]),
            str(r["bot_id"]),
            r["symbol"],
            r["side"],
            r["status"],
            r["exchange_account"],
            str(r["open_intent_id"]),
            r["requested_size_usd"],
            r["size_usd"],
            r["executed_qty"],
            r["avg_entry_price"],
            _text(r["close_intent_id"]),
            r["close_exchange_order_id"],
            r["close_price"],
            r["closed_at"],
            r["realised_pnl_usd"],
        )
        for r in await c.fetch("SELECT * FROM ledger.positions")
    ]
    e.initial_budgets = {
        str(r["bot_id"]): r["initial_budget_usd"]
        for r in await c.fetch("SELECT bot_id, initial_budget_usd FROM ledger.bots")
    }
    e.orders += [
        Order(
            "paper",
            r["account"],
            r["symbol"],
            str(r["order_id"]),
            r["client_order_id"],
            r["side"],
            r["status"],
            r["executed_qty"],
        )
        for r in await c.fetch("SELECT * FROM executor.paper_orders")
    ]
    for r in await c.fetch("SELECT account, symbol, qty FROM executor.paper_positions"):
        if r["qty"]:
            e.venue_positions[("paper", r["account"], r["symbol"])] = r["qty"]
    for schema in SCHEMAS:
        e.unpublished_outbox[schema] = await c.fetchval(
            f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
        )


def _binance(control, accounts: dict[str, str], e: Evidence) -> None:
    for account, api_key in accounts.items():
        shown = control("GET", f"/_control/accounts/{api_key}")
        e.orders += [
            Order(
                "binance",
                account,
                o["symbol"],
                str(o["orderId"]),
                o["clientOrderId"],
                o["side"],
                o["status"],
                Decimal(o["executedQty"]),
            )
            for o in shown["orders"]
        ]
        for symbol, held in shown["positions"].items():
            e.venue_positions[("binance", account, symbol)] = Decimal(held["amount"])


def _reported_budgets(ledger_url: str, token: str, bot_ids: list[str]) -> dict[str, Budget]:
    reported = {}
    for bot_id in bot_ids:
        request = urllib.request.Request(
            f"{ledger_url}/v1/bots/{bot_id}/budget", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
        reported[bot_id] = Budget(
            *(Decimal(body[k]) for k in ("initial_usd", "reserved_open_usd", "reserved_opening_usd", "available_usd"))
        )
    return reported


async def _kafka(bootstrap: str, start: Offsets, e: Evidence, login: dict | None) -> None:
    dead_letters = {tp: o for tp, o in start.items() if tp.topic == DEAD_LETTER_TOPIC}
    for record in await read_window(bootstrap, dead_letters, login=login):
        headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
        origin = headers.get("x-dlq-topic", "?")
        e.dead_letters.append(
            DeadLetter(
                origin,
                int(headers.get("x-dlq-partition", -1)),
                int(headers.get("x-dlq-offset", -1)),
                headers.get("x-dlq-error", ""),
                _parses(origin, record.value),
            )
        )
    events = await read_window(
        bootstrap, {tp: o for tp, o in start.items() if tp.topic == LEDGER_EVENTS.name}, login=login
    )
    for record in events:  # partition order: a bot's events are keyed by bot id, so its last one is its latest
        if b'"type":"BudgetChanged"' in record.value:
            m = LEDGER_EVENTS.decode(record.value)
            e.last_budget_events[str(m.bot_id)] = Budget(
                m.initial_usd, m.reserved_open_usd, m.reserved_opening_usd, m.available_usd
            )


def partitions_of(topic: str) -> int:
    return DEAD_LETTER_PARTITIONS if topic == DEAD_LETTER_TOPIC else TOPICS[topic].partitions


def _parses(topic: str, payload: bytes | None) -> bool:
    try:
        TOPICS[topic].decode(payload or b"")
        return True
    except (KeyError, ValidationError):
        return False


def _text(value) -> str | None:
    return None if value is None else str(value)
