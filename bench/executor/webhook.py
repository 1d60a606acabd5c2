"""`--from-webhook`: signals POSTed to the signal_router's gateway instead of intents published to Kafka.

The bots are published to egis.ledger.bots.v1 first (playing the ledger's
snapshots), so the router knows them when it starts. Each POST leaves on its
schedule whether or not earlier ones were answered (open loop); the intent id
each signal becomes is derived exactly as the gateway and the router derive it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
from aiokafka import AIOKafkaProducer
from load import Planned
from system import BOT_SECRET, Bot

from egis_common.contracts import BotSnapshot, ExchangeName, SignalAction
from egis_common.ids import intent_id_for, signal_dedup_key, signal_id_for
from egis_common.topics import BOTS, encode

# The gateway's default symbol list (signal_router.settings.DEFAULT_SYMBOLS): one round of bots per symbol.
ROUTER_SYMBOLS = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "BNBUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "AVAXUSDT",
    "LINKUSDT",
    "LTCUSDT",
)


async def publish_bots(bootstrap: str, bots: list[Bot]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for bot in bots:
            snapshot = BotSnapshot(
                bot_id=bot.bot_id,
                version=1,
                owner_id=bot.bot_id,
                name="bench",
                signal_key=bot.signal_key,
                webhook_secret_hash=bot.secret_hash,
                exchange=ExchangeName.PAPER,
                exchange_account=bot.account,
                initial_budget_usd=Decimal("100000000"),
                default_order_size_usd=Decimal("10"),
                paused=False,
                deleted=False,
            )
            await producer.send(BOTS.name, encode(snapshot), key=str(bot.bot_id).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def wait_for_gateway(url: str, timeout: float = 60) -> None:
    """Until the gateway answers (metrics are served before its HTTP starts); any answer will do."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with session.post(url, json={}) as response:
                    await response.read()
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise SystemExit(f"the gateway at {url} did not answer within {timeout}s")


class WebhookSender:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session: aiohttp.ClientSession | None = None
        self.tasks: list[asyncio.Task] = []
        self.answers: Counter = Counter()
        self.refused: set[uuid.UUID] = set()  # signals the gateway did not accept: they never become intents

    def plan(self, bot: Bot, symbol: str) -> Planned:
        client_id = uuid.uuid4().hex
        dedup_key = signal_dedup_key(bot.signal_key, SignalAction.OPEN_LONG.value, symbol, None, client_id)
        body = {
            "signal_key": bot.signal_key,
            "secret": BOT_SECRET,
            "action": "buy",
            "symbol": symbol,
            "signal_id": client_id,
        }
        return Planned(intent_id_for(signal_id_for(dedup_key)), bot.bot_id, symbol, body)

    async def send(self, planned: Planned) -> None:
        if self.session is None:
            connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=60)
            self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
        self.tasks.append(asyncio.create_task(self._post(planned)))

    async def _post(self, planned: Planned) -> None:
        body = {**planned.payload, "timestamp": datetime.now(UTC).isoformat()}
        try:
            async with self.session.post(self.url, json=body) as response:
                outcome = response.status
                detail = "" if outcome == 202 else (await response.text())[:300]
        except Exception as error:  # counted, and shown once per kind: the run goes on
            outcome, detail = type(error).__name__, repr(error)
        self.answers[outcome] += 1
        if outcome != 202:
            self.refused.add(planned.intent_id)
            if self.answers[outcome] == 1:
                print(f"gateway: {outcome} {detail}", flush=True)

    async def settle(self) -> dict:
        await asyncio.gather(*self.tasks)
        self.tasks.clear()
        answers, self.answers = dict(self.answers), Counter()
        return {"http_answers": {str(k): v for k, v in answers.items()}}

    def not_sent(self) -> set[uuid.UUID]:
        refused, self.refused = self.refused, set()
        return refused

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
